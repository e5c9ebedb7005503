// download mode: each connection logs in, STATs and RETRs every message with up to --window
// commands in flight, then QUITs. Throughput of decoded and wire bytes; with --mbox (unless
// --no-verify) every message is compared byte for byte with the scanner's split of the file.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/popload/mapped_mbox.h"
#include "tools/popload/modes.h"
#include "tools/popload/proc_stats.h"

namespace poplar::popload {

int RunDownload(const Options& o, SSL_CTX* ctx) {
  std::unique_ptr<MappedMbox> mbox;
  if (o.verify) {
    absl::StatusOr<std::unique_ptr<MappedMbox>> mapped = MappedMbox::Map(o.mbox);
    if (!mapped.ok()) {
      std::fprintf(stderr, "popload: cannot map %s: %s\n", o.mbox.c_str(),
                   mapped.status().ToString().c_str());
      return 2;
    }
    mbox = *std::move(mapped);
    mbox->Scan();
  }
  std::unique_ptr<Engine> engine = MakeEngine(o, ctx);
  if (!engine) return 2;
  std::vector<Conn> conns(static_cast<size_t>(o.conns));
  CpuWindow cpu(o.server_pids);
  Errors errors;
  double first_retr = 0, last_byte = 0;
  uint64_t bytes = 0, wire = 0, messages = 0, exact = 0, mismatch = 0, count_total = 0;
  int finished = 0;
  auto send_more = [&](Conn& c) {
    while (c.next_send <= c.count && c.next_send - c.next_recv < static_cast<uint64_t>(o.window)) {
      engine->Send(c, "RETR " + std::to_string(c.next_send), true, o.verify,
                   static_cast<long>(c.next_send));
      ++c.next_send;
    }
    if (c.next_recv > c.count) engine->Send(c, "QUIT", false, false, -2);
  };
  engine->on_ready = [&](Conn& c) { engine->Send(c, "STAT", false, false, -1); };
  engine->on_response = [&](Conn& c, const Response& r) {
    if (!r.ok) {
      errors.Add("-ERR " + std::string(r.text) + " (tag " + std::to_string(r.tag) + ")");
      if (r.tag < 0) {
        engine->Close(c);
        ++finished;
        return;
      }
      ++c.next_recv;
      return send_more(c);
    }
    if (r.tag == -1) {
      auto stat = ParseStat(r.text);
      if (!stat) {
        errors.Add("bad STAT reply");
        engine->Close(c);
        ++finished;
        return;
      }
      c.count = stat->count;
      count_total += stat->count;
      if (o.verify && stat->count != mbox->messages().size()) {
        errors.Add("STAT says " + std::to_string(stat->count) + " messages, the mbox has " +
                   std::to_string(mbox->messages().size()));
      }
      if (first_retr == 0) first_retr = Now();
      c.next_send = c.next_recv = 1;
      return send_more(c);
    }
    if (r.tag == -2) {
      engine->Close(c);
      ++finished;
      return;
    }
    last_byte = Now();
    ++messages;
    bytes += r.body_bytes;
    wire += r.wire_bytes;
    if (r.malformed) errors.Add("malformed multi-line response");
    if (o.verify) {
      size_t i = static_cast<size_t>(r.tag) - 1;
      std::optional<size_t> diff = i < mbox->messages().size()
                                       ? FirstDifference(*r.body, mbox->messages()[i])
                                       : std::optional<size_t>(0);
      if (diff) {
        if (++mismatch <= 3) {
          std::fprintf(stderr,
                       "popload: RETR %ld differs from the mbox at byte %zu (got %zu bytes)\n",
                       r.tag, *diff, r.body->size());
        }
      } else {
        ++exact;
      }
    }
    ++c.next_recv;
    send_more(c);
  };
  engine->on_error = [&](Conn&, const std::string& why) {
    errors.Add(why);
    ++finished;
  };
  cpu.Start();
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].index = static_cast<int>(i);
    engine->Open(conns[i]);
  }
  double deadline = Now() + o.timeout_s;
  engine->Loop(deadline, [&] { return finished == o.conns; });
  std::string cpu_text = cpu.Report();
  if (finished != o.conns) errors.Add("timeout");
  for (Conn& c : conns) engine->Close(c);
  double secs = std::max(1e-9, last_byte - first_retr);
  std::printf(
      "%s conns=%d window=%d msgs=%llu bytes=%llu wire_bytes=%llu secs=%.3f MBps=%.1f "
      "wire_MBps=%.1f "
      "verify=%s exact=%llu mismatch=%llu errors=%ld %s\n",
      Prefix(o).c_str(), o.conns, o.window, static_cast<unsigned long long>(messages),
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(wire), secs,
      static_cast<double>(bytes) / 1e6 / secs, static_cast<double>(wire) / 1e6 / secs,
      o.verify ? "on" : "off", static_cast<unsigned long long>(exact),
      static_cast<unsigned long long>(mismatch), errors.total(), cpu_text.c_str());
  errors.Print();
  bool complete = messages == count_total && count_total > 0;
  return complete && errors.total() == 0 && mismatch == 0 ? 0 : 1;
}

}  // namespace poplar::popload
