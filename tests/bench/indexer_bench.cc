// poplar_indexer_bench MBOX [--sessions N]: the indexer's targets from design §9 on one mailbox.
//
//  1. full index: a fresh database, a full scan of MBOX (copied into a temp spool), MB/s;
//  2. session snapshot over the unix socket: OpenSession -> Snapshot -> close, N times, median
//     and p99 (the index is current, as in production);
//  3. delivery to index: append one message under a dotlock, remove the lock, and time until
//     the index shows it (the event thread's inotify path), N times, median and max;
//  4. the same snapshot after that delivery (catch-up already done by inotify);
//  5. the process's peak RSS.
// Prints a small table; not part of the test suite.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "indexer/daemon.h"
#include "poplar/admin.grpc.pb.h"
#include "poplar/maildrop.grpc.pb.h"
#include "tests/component/temp_dir.h"

namespace {

using poplar::indexer::Daemon;
namespace v1 = poplar::v1;

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

long PeakRssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

absl::Duration OpenAndClose(v1::Maildrop::Stub* stub, uint32_t* count) {
  absl::Time t0 = absl::Now();
  grpc::ClientContext ctx;
  auto stream = stub->Sessions(&ctx);  // one session (tag 1) on a stream of its own
  v1::SessionsRequest req;
  req.set_tag(1);
  req.mutable_open()->set_user("bench");
  stream->Write(req);
  v1::SessionsEvent ev;
  if (!stream->Read(&ev) || !ev.has_snapshot()) {
    std::cerr << "no snapshot: "
              << (ev.has_error() ? ev.error().message() : stream->Finish().error_message()) << "\n";
    std::exit(1);
  }
  absl::Duration d = absl::Now() - t0;
  *count = ev.snapshot().count();
  stream->WritesDone();
  while (stream->Read(&ev)) {
  }
  stream->Finish();
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: poplar_indexer_bench MBOX [--sessions N]\n";
    return 2;
  }
  std::string source = argv[1];
  int n = 20;
  if (argc >= 4 && std::string(argv[2]) == "--sessions") n = std::atoi(argv[3]);

  std::string dir =
      std::filesystem::temp_directory_path() / absl::StrCat("poplar-bench-", ::getpid());
  std::filesystem::create_directories(dir + "/spool");
  const std::string mbox = dir + "/spool/bench";
  std::filesystem::copy_file(source, mbox);
  const uint64_t size = std::filesystem::file_size(mbox);
  {  // page cache warm, as on a live spool host
    std::ifstream in(mbox, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
    }
  }

  poplar::config::IndexerConfig c;
  c.add_spools()->set_directory(dir + "/spool");
  c.set_database_path(dir + "/index.sqlite");
  c.mutable_check_owner()->set_spool_owner(poplar::testing::CurrentUserName());
  c.mutable_listen()->set_unix_socket(dir + "/indexer.sock");
  absl::Time t0 = absl::Now();
  auto daemon = Daemon::Start(c);  // includes the full scan of the spool
  if (!daemon.ok()) {
    std::cerr << daemon.status() << "\n";
    return 1;
  }
  absl::Duration index_time = absl::Now() - t0;

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);  // as popd: a big mailbox's snapshot exceeds 4 MB
  if (std::getenv("POPLAR_BENCH_LOOKAHEAD")) {
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                std::atoi(std::getenv("POPLAR_BENCH_LOOKAHEAD")));
  }
  auto channel = grpc::CreateCustomChannel("unix:" + dir + "/indexer.sock",
                                           grpc::InsecureChannelCredentials(), args);
  auto admin = v1::Admin::NewStub(channel);
  auto maildrop = v1::Maildrop::NewStub(channel);
  {
    grpc::ClientContext ctx;
    v1::AddAccountRequest add;
    add.set_user("bench");
    add.set_password("benchpw");
    v1::Account a;
    if (!admin->AddAccount(&ctx, add, &a).ok()) return 1;
  }

  uint32_t count = 0;
  OpenAndClose(maildrop.get(), &count);  // connect the channel
  std::vector<double> snap;
  for (int i = 0; i < n; ++i) snap.push_back(Ms(OpenAndClose(maildrop.get(), &count)));

  std::vector<double> visible;
  for (int i = 0; i < n; ++i) {
    std::string msg =
        absl::StrCat("From bench@example.org  Thu Nov 26 12:00:00 2026\nSubject: new ", i,
                     "\nMessage-ID: <new", i, "@bench>\n\nhello\n\n");
    { std::ofstream(mbox + ".lock") << getpid() << "\n"; }
    { std::ofstream(mbox, std::ios::app | std::ios::binary) << msg; }
    absl::Time unlocked = absl::Now();
    ::unlink((mbox + ".lock").c_str());
    const uint32_t want = count + 1 + static_cast<uint32_t>(i);
    while (true) {
      grpc::ClientContext ctx;
      v1::MailboxList boxes;
      admin->ListMailboxes(&ctx, v1::Empty(), &boxes);
      if (boxes.mailboxes_size() == 1 && boxes.mailboxes(0).messages() >= want) break;
      if (absl::Now() - unlocked > absl::Seconds(10)) {
        std::cerr << "delivery not indexed within 10 s\n";
        return 1;
      }
    }
    visible.push_back(Ms(absl::Now() - unlocked));
  }
  std::vector<double> snap_after;
  for (int i = 0; i < n; ++i) snap_after.push_back(Ms(OpenAndClose(maildrop.get(), &count)));

  std::cout << absl::StrFormat("mailbox: %s, %.1f MB, %u messages\n", source, size / 1e6, count);
  std::cout << absl::StrFormat("%-44s %12s\n", "measure", "value");
  std::cout << absl::StrFormat("%-44s %9.0f ms  (%.0f MB/s)\n", "full index (fresh database)",
                               Ms(index_time), size / 1e6 / absl::ToDoubleSeconds(index_time));
  std::cout << absl::StrFormat("%-44s %9.2f ms  (p99 %.2f)\n", "session snapshot, median",
                               Percentile(snap, 0.5), Percentile(snap, 0.99));
  std::cout << absl::StrFormat("%-44s %9.2f ms  (max %.2f)\n",
                               "delivery visible after unlock, median", Percentile(visible, 0.5),
                               Percentile(visible, 1.0));
  std::cout << absl::StrFormat("%-44s %9.2f ms  (p99 %.2f)\n",
                               "session snapshot after a delivery, median",
                               Percentile(snap_after, 0.5), Percentile(snap_after, 0.99));
  std::cout << absl::StrFormat("%-44s %9.1f MB\n", "peak RSS of the process (indexer + client)",
                               PeakRssKb() / 1024.0);
  (*daemon)->Shutdown(absl::Seconds(1));
  std::filesystem::remove_all(dir);
  return 0;
}
