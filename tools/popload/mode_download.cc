// download mode: each connection logs in, STATs and RETRs every message with up to --window
// commands in flight, then QUITs. Throughput of decoded and wire bytes; with --mbox (unless
// --no-verify) every message is compared byte for byte with the scanner's split of the file.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tools/popload/mapped_mbox.h"
#include "tools/popload/modes.h"
#include "tools/popload/proc_stats.h"

namespace poplar::popload {

namespace {

constexpr long kStat = -1, kQuit = -2;  // tags; a RETR's tag is its message number

// One run: the connections' state and the totals. The engine calls back into it.
class Download {
 public:
  Download(const Options& o, Engine& engine, const MappedMbox* mbox)
      : o_(o), engine_(engine), mbox_(mbox) {
    engine_.on_ready = [this](Conn& c) { engine_.Send(c, "STAT", false, false, kStat); };
    engine_.on_response = [this](Conn& c, const Response& r) { OnResponse(c, r); };
    engine_.on_error = [this](Conn&, const std::string& why) {
      errors_.Add(why);
      ++finished_;
    };
  }

  // Opens every connection and waits until each has QUIT or failed (or --timeout).
  void Run() {
    std::vector<Conn> conns(static_cast<size_t>(o_.conns));
    cpu_.Start();
    for (size_t i = 0; i < conns.size(); ++i) {
      conns[i].index = static_cast<int>(i);
      engine_.Open(conns[i]);
    }
    engine_.Loop(Now() + o_.timeout_s, [&] { return finished_ == o_.conns; });
    cpu_text_ = cpu_.Report();
    if (finished_ != o_.conns) errors_.Add("timeout");
    for (Conn& c : conns) engine_.Close(c);
  }

  // The result line; the exit code.
  int Report() const {
    const double secs = std::max(1e-9, last_byte_ - first_retr_);
    std::printf(
        "%s conns=%d window=%d msgs=%llu bytes=%llu wire_bytes=%llu secs=%.3f MBps=%.1f "
        "wire_MBps=%.1f verify=%s exact=%llu mismatch=%llu errors=%ld %s\n",
        Prefix(o_).c_str(), o_.conns, o_.window, static_cast<unsigned long long>(messages_),
        static_cast<unsigned long long>(bytes_), static_cast<unsigned long long>(wire_), secs,
        static_cast<double>(bytes_) / 1e6 / secs, static_cast<double>(wire_) / 1e6 / secs,
        o_.verify ? "on" : "off", static_cast<unsigned long long>(exact_),
        static_cast<unsigned long long>(mismatch_), errors_.total(), cpu_text_.c_str());
    errors_.Print();
    const bool complete = messages_ == count_total_ && count_total_ > 0;
    return complete && errors_.total() == 0 && mismatch_ == 0 ? 0 : 1;
  }

 private:
  void OnResponse(Conn& c, const Response& r) {
    if (!r.ok) {
      errors_.Add("-ERR " + std::string(r.text) + " (tag " + std::to_string(r.tag) + ")");
      if (r.tag < 0) return Finish(c);
      ++c.next_recv;
      return SendMore(c);
    }
    if (r.tag == kStat) return OnStat(c, r);
    if (r.tag == kQuit) return Finish(c);
    OnRetr(r);
    ++c.next_recv;
    SendMore(c);
  }

  void OnStat(Conn& c, const Response& r) {
    const std::optional<StatReply> stat = ParseStat(r.text);
    if (!stat) {
      errors_.Add("bad STAT reply");
      return Finish(c);
    }
    c.count = stat->count;
    count_total_ += stat->count;
    if (mbox_ != nullptr && stat->count != mbox_->messages().size()) {
      errors_.Add("STAT says " + std::to_string(stat->count) + " messages, the mbox has " +
                  std::to_string(mbox_->messages().size()));
    }
    if (first_retr_ == 0) first_retr_ = Now();
    c.next_send = c.next_recv = 1;
    SendMore(c);
  }

  // A RETR's answer: counted, and with --mbox compared with the message it names.
  void OnRetr(const Response& r) {
    last_byte_ = Now();
    ++messages_;
    bytes_ += r.body_bytes;
    wire_ += r.wire_bytes;
    if (r.malformed) errors_.Add("malformed multi-line response");
    if (mbox_ == nullptr) return;
    const size_t i = static_cast<size_t>(r.tag) - 1;
    const std::optional<size_t> diff = i < mbox_->messages().size()
                                           ? FirstDifference(*r.body, mbox_->messages()[i])
                                           : std::optional<size_t>(0);
    if (!diff) {
      ++exact_;
    } else if (++mismatch_ <= 3) {
      std::fprintf(stderr, "popload: RETR %ld differs from the mbox at byte %zu (got %zu bytes)\n",
                   r.tag, *diff, r.body->size());
    }
  }

  // Keeps --window RETRs in flight; QUIT after the last answer.
  void SendMore(Conn& c) {
    while (c.next_send <= c.count && c.next_send - c.next_recv < static_cast<uint64_t>(o_.window)) {
      engine_.Send(c, "RETR " + std::to_string(c.next_send), true, o_.verify,
                   static_cast<long>(c.next_send));
      ++c.next_send;
    }
    if (c.next_recv > c.count) engine_.Send(c, "QUIT", false, false, kQuit);
  }

  void Finish(Conn& c) {
    engine_.Close(c);
    ++finished_;
  }

  const Options& o_;
  Engine& engine_;
  const MappedMbox* mbox_;  // null: --no-verify
  CpuWindow cpu_{o_.server_pids};
  std::string cpu_text_;
  Errors errors_;
  double first_retr_ = 0, last_byte_ = 0;
  uint64_t bytes_ = 0, wire_ = 0, messages_ = 0, exact_ = 0, mismatch_ = 0, count_total_ = 0;
  int finished_ = 0;
};

}  // namespace

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
  Download download(o, *engine, mbox.get());
  download.Run();
  return download.Report();
}

}  // namespace poplar::popload
