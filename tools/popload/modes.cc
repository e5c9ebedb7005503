#include "tools/popload/modes.h"

#include <cstdio>

#include "common/util/check.h"

namespace poplar::popload {

static_assert(kSessionScript[kStatTag - 1].command == "STAT" &&
              kSessionScript[kUidlTag - 1].command == "UIDL" &&
              kSessionScript[kListTag - 1].command == "LIST" &&
              kSessionScript[kQuitTag - 1].command == "QUIT" && kScriptSteps == kQuitTag);

void SendScriptStep(Engine& engine, Conn& c, long tag) {
  POPLAR_CHECK(tag >= 1 && tag <= kScriptSteps, "a script step's tag is 1..kScriptSteps");
  const ScriptStep& step = kSessionScript[tag - 1];
  engine.Send(c, step.command, step.multi, /*keep=*/false, tag);
}

void Errors::Add(const std::string& why) {
  ++total_;
  if (by_reason_.size() < 20 || by_reason_.count(why) != 0) ++by_reason_[why];
}

void Errors::Print() const {
  for (const auto& [why, n] : by_reason_)
    std::fprintf(stderr, "popload: error x%ld: %s\n", n, why.c_str());
}

std::string Prefix(const Options& o) {
  std::string s = std::string("mode=") + ModeName(o.mode);
  if (!o.label.empty()) s += " label=" + o.label;
  s += std::string(" tls=") + TlsName(o.tls);
  return s;
}

std::unique_ptr<Engine> MakeEngine(const Options& o, SSL_CTX* ctx) {
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(o, ctx);
  if (!engine.ok()) {
    std::fprintf(stderr, "popload: %s\n", engine.status().ToString().c_str());
    return nullptr;
  }
  return *std::move(engine);
}

}  // namespace poplar::popload
