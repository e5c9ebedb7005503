// login mode: one connection runs the session script once; each step is timed (greeting,
// login, STAT, UIDL, LIST, QUIT) and --expect checks STAT's message count.
#include <cstdio>
#include <string>

#include "tools/popload/modes.h"
#include "tools/popload/proc_stats.h"

namespace poplar::popload {

int RunLogin(const Options& o, SSL_CTX* ctx) {
  std::unique_ptr<Engine> engine = MakeEngine(o, ctx);
  if (!engine) return 2;
  Conn c;
  CpuWindow cpu(o.server_pids);
  Errors errors;
  bool done = false;
  double answered[kScriptSteps + 1] = {};  // by tag: when the step's answer was complete
  uint64_t count = 0, uidl_lines = 0, list_lines = 0;
  engine->on_ready = [&](Conn& conn) { SendScriptStep(*engine, conn, kStatTag); };
  engine->on_response = [&](Conn& conn, const Response& r) {
    if (!r.ok) {
      errors.Add("-ERR " + std::string(r.text));
      engine->Close(conn);
      done = true;
      return;
    }
    answered[r.tag] = Now();
    if (r.tag == kStatTag) {
      if (auto s = ParseStat(r.text)) count = s->count;
    } else if (r.tag == kUidlTag) {
      uidl_lines = r.lines;
    } else if (r.tag == kListTag) {
      list_lines = r.lines;
    }
    if (r.tag < kQuitTag) return SendScriptStep(*engine, conn, r.tag + 1);
    engine->Close(conn);
    done = true;
  };
  engine->on_error = [&](Conn&, const std::string& why) {
    errors.Add(why);
    done = true;
  };
  cpu.Start();
  engine->Open(c);
  const double t0 = c.t_start;
  engine->Loop(Now() + o.timeout_s, [&] { return done; });
  if (!done) {
    errors.Add("timeout");
    engine->Close(c);
  }
  if (o.expect >= 0 && count != static_cast<uint64_t>(o.expect)) {
    errors.Add("STAT count " + std::to_string(count) + ", expected " + std::to_string(o.expect));
  }
  auto ms = [&](double t) { return t > 0 ? Fmt("%.2f", (t - t0) * 1000) : std::string("-"); };
  auto span = [&](long from, long to) {
    const double a = answered[from], b = answered[to];
    return a > 0 && b > 0 ? Fmt("%.2f", (b - a) * 1000) : std::string("-");
  };
  std::printf(
      "%s count=%llu uidl_lines=%llu list_lines=%llu greet_ms=%s login_ms=%s stat_ms=%s uidl_ms=%s "
      "list_ms=%s quit_ms=%s errors=%ld %s\n",
      Prefix(o).c_str(), static_cast<unsigned long long>(count),
      static_cast<unsigned long long>(uidl_lines), static_cast<unsigned long long>(list_lines),
      ms(c.t_greeting).c_str(), ms(c.t_ready).c_str(), ms(answered[kStatTag]).c_str(),
      span(kStatTag, kUidlTag).c_str(), span(kUidlTag, kListTag).c_str(),
      span(kListTag, kQuitTag).c_str(), errors.total(), cpu.Report().c_str());
  errors.Print();
  return errors.total() == 0 ? 0 : 1;
}

}  // namespace poplar::popload
