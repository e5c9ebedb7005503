#include "common/util/fault.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>

namespace poplar {

bool ParseFaultSpec(std::string_view text, FaultSpec* out) {
  if (text.empty()) return false;
  size_t colon = text.rfind(':');
  FaultSpec s;
  s.point = text.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view n = text.substr(colon + 1);
    int v = 0;
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
    if (ec != std::errc() || end != n.data() + n.size() || v < 1) return false;
    s.hit = v;
  }
  if (s.point.empty()) return false;
  *out = s;
  return true;
}

void FaultPoint(std::string_view point) {
  static const char* env = std::getenv("POPLAR_FAULT");
  if (env == nullptr) return;
  static FaultSpec spec;
  static const bool valid = ParseFaultSpec(env, &spec);
  if (!valid || spec.point != point) return;
  static std::atomic<int> hits{0};
  if (hits.fetch_add(1) + 1 == spec.hit) ::kill(::getpid(), SIGKILL);
}

}  // namespace poplar
