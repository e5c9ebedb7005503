// session mode: --conns connections, each logging in, running the session script (STAT, UIDL,
// LIST, QUIT) and starting again, for --warmup then --duration seconds. Sessions per second and
// the latency of whole sessions (connect to QUIT's answer) that started inside the window.
#include <cstdio>
#include <string>
#include <vector>

#include "tools/popload/modes.h"
#include "tools/popload/proc_stats.h"

namespace poplar::popload {

int RunSession(const Options& o, SSL_CTX* ctx) {
  std::unique_ptr<Engine> engine = MakeEngine(o, ctx);
  if (!engine) return 2;
  std::vector<Conn> conns(static_cast<size_t>(o.conns));
  const double measure_from = Now() + o.warmup_s;
  const double end = measure_from + o.duration_s;
  bool measuring = o.warmup_s <= 0;
  CpuWindow cpu(o.server_pids);
  std::vector<double> latency;
  long sessions = 0;
  Errors errors;
  auto restart = [&](Conn& c) {
    if (Now() < end) engine->Open(c);
  };
  engine->on_ready = [&](Conn& c) { SendScriptStep(*engine, c, kStatTag); };
  engine->on_response = [&](Conn& c, const Response& r) {
    if (!r.ok) {
      if (measuring)
        errors.Add("-ERR " + std::string(r.text) + " (tag " + std::to_string(r.tag) + ")");
      engine->Close(c);
      return restart(c);
    }
    if (r.tag < kQuitTag) return SendScriptStep(*engine, c, r.tag + 1);
    const double t = Now();
    if (measuring && c.t_start >= measure_from && t <= end) {
      ++sessions;
      latency.push_back(t - c.t_start);
    }
    engine->Close(c);
    restart(c);
  };
  engine->on_error = [&](Conn& c, const std::string& why) {
    if (measuring) errors.Add(why);
    restart(c);
  };
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].index = static_cast<int>(i);
    engine->Open(conns[i]);
  }
  if (!measuring) {
    engine->Loop(measure_from, [] { return false; });
    measuring = true;
  }
  cpu.Start();
  engine->Loop(end, [] { return false; });
  const double secs = Now() - measure_from;
  const std::string cpu_text = cpu.Report();
  for (Conn& c : conns) engine->Close(c);
  const double p50 = Percentile(latency, 0.50) * 1000, p99 = Percentile(latency, 0.99) * 1000;
  std::printf(
      "%s conns=%d secs=%.2f sessions=%ld rate=%.1f p50_ms=%.2f p99_ms=%.2f errors=%ld %s\n",
      Prefix(o).c_str(), o.conns, secs, sessions, static_cast<double>(sessions) / secs, p50, p99,
      errors.total(), cpu_text.c_str());
  errors.Print();
  return sessions > 0 && errors.total() == 0 ? 0 : 1;
}

}  // namespace poplar::popload
