// idle mode: --conns connections opened (--concurrency at a time) and logged in (or held after
// the greeting with --no-login), then left idle for --duration; the server trees' RSS and PSS
// before and after give the memory per connection. Then each must still answer (NOOP, or CAPA
// before login) and QUIT.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/popload/modes.h"
#include "tools/popload/proc_stats.h"

namespace poplar::popload {

int RunIdle(const Options& o, SSL_CTX* ctx) {
  std::unique_ptr<Engine> engine = MakeEngine(o, ctx);
  if (!engine) return 2;
  std::vector<Conn> conns(static_cast<size_t>(o.conns));
  Errors errors;
  TreeMemory before = MeasureTree(o.server_pids);
  CpuWindow cpu(o.server_pids);
  cpu.Start();
  int next = 0, in_flight = 0, opened = 0, settled = 0;
  long answered = 0, alive = 0, closed = 0;
  int stage = 0;  // 0 opening, 1 NOOP, 2 QUIT
  auto open_more = [&] {
    while (in_flight < o.concurrency && next < o.conns) {
      Conn& c = conns[static_cast<size_t>(next)];
      c.index = next++;
      ++in_flight;
      engine->Open(c);
    }
  };
  engine->on_ready = [&](Conn&) {
    ++opened;
    ++settled;
    --in_flight;
    open_more();
  };
  engine->on_response = [&](Conn& c, const Response& r) {
    if (r.tag == 1) {
      ++answered;
      if (r.ok) ++alive;
    } else {
      ++closed;
      engine->Close(c);
    }
  };
  engine->on_error = [&](Conn&, const std::string& why) {
    errors.Add(why);
    if (stage == 0) {
      ++settled;
      --in_flight;
      open_more();
    } else {
      ++answered;
      ++closed;
    }
  };
  double t0 = Now();
  open_more();
  engine->Loop(t0 + o.timeout_s, [&] { return settled == o.conns; });
  double open_secs = Now() - t0;
  engine->Loop(Now() + o.duration_s, [] { return false; });
  TreeMemory after = MeasureTree(o.server_pids);
  stage = 1;
  for (Conn& c : conns) {
    if (c.phase != Phase::kReady) continue;
    // NOOP is for sessions; before login CAPA is the harmless command (RFC 2449).
    if (o.no_login) {
      engine->Send(c, "CAPA", true, false, 1);
    } else {
      engine->Send(c, "NOOP", false, false, 1);
    }
  }
  engine->Loop(Now() + 60, [&] { return answered >= opened; });
  stage = 2;
  for (Conn& c : conns) {
    if (c.phase == Phase::kReady) engine->Send(c, "QUIT", false, false, 2);
  }
  engine->Loop(Now() + 60, [&] { return closed >= opened; });
  for (Conn& c : conns) engine->Close(c);
  double n = std::max(1, opened);
  std::printf(
      "%s login=%s conns=%d opened=%d alive=%ld open_secs=%.2f rss_before_kb=%llu "
      "rss_after_kb=%llu "
      "pss_before_kb=%llu pss_after_kb=%llu procs_before=%d procs_after=%d rss_per_conn_kb=%.1f "
      "pss_per_conn_kb=%.1f errors=%ld %s\n",
      Prefix(o).c_str(), o.no_login ? "no" : "yes", o.conns, opened, alive, open_secs,
      static_cast<unsigned long long>(before.rss_kb), static_cast<unsigned long long>(after.rss_kb),
      static_cast<unsigned long long>(before.pss_kb), static_cast<unsigned long long>(after.pss_kb),
      before.processes, after.processes,
      (static_cast<double>(after.rss_kb) - static_cast<double>(before.rss_kb)) / n,
      (static_cast<double>(after.pss_kb) - static_cast<double>(before.pss_kb)) / n, errors.total(),
      cpu.Report().c_str());
  errors.Print();
  return opened == o.conns && alive == opened && errors.total() == 0 ? 0 : 1;
}

}  // namespace poplar::popload
