// poplar_expunge_bench MBOX: the expunge against design §9's target (≤ 2× a sequential copy of
// the file). For each case the mailbox is copied into a temp spool (that copy, read + write +
// fsync, is the baseline, timed), indexed (untimed), and one session commits the deletion of
// the first message, the last message, or every message; the Commit is timed (locks,
// re-verification, journal, rewrite, truncate, fsyncs, index update).
// Prints a small table; not part of the test suite.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "indexer/indexer.h"
#include "tests/component/temp_dir.h"

namespace {

namespace v1 = poplar::v1;

// A plain sequential copy with fsync: what "cp FILE SPOOL && sync" costs.
absl::Duration Copy(const std::string& from, const std::string& to) {
  absl::Time t0 = absl::Now();
  int in = ::open(from.c_str(), O_RDONLY);
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (in < 0 || out < 0) {
    std::perror("open");
    std::exit(1);
  }
  std::vector<char> buf(4 << 20);
  ssize_t n;
  while ((n = ::read(in, buf.data(), buf.size())) > 0) {
    if (::write(out, buf.data(), static_cast<size_t>(n)) != n) {
      std::perror("write");
      std::exit(1);
    }
  }
  ::fsync(out);
  ::close(in);
  ::close(out);
  return absl::Now() - t0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: poplar_expunge_bench MBOX [--deferred] [first|last|all ...]\n";
    return 2;
  }
  const std::string source = argv[1];
  std::vector<std::string> cases;
  // --deferred: the site option deferred_expunge. The timed Commit (what QUIT waits for) only
  // hides the messages; the compaction that follows is timed separately.
  bool deferred = false;
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--deferred") {
      deferred = true;
    } else {
      cases.push_back(argv[i]);
    }
  }
  if (cases.empty()) cases = {"first", "last", "all"};
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "poplar-expunge-bench-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  std::filesystem::create_directory(dir + "/spool");
  const std::string mbox = dir + "/spool/bench";
  if (deferred) {
    std::printf("%-8s %10s %10s %12s %14s %12s\n", "case", "messages", "copy s", "QUIT ms",
                "compaction s", "bytes moved");
  } else {
    std::printf("%-8s %10s %10s %10s %8s %12s\n", "case", "messages", "copy s", "expunge s",
                "ratio", "bytes moved");
  }
  for (const std::string& c : cases) {
    std::filesystem::remove(dir + "/index.sqlite");
    const absl::Duration copy = Copy(source, mbox);
    poplar::config::IndexerConfig cfg;
    cfg.add_spools()->set_directory(dir + "/spool");
    cfg.set_database_path(dir + "/index.sqlite");
    cfg.set_deferred_expunge(deferred);
    cfg.mutable_check_owner()->set_spool_owner(poplar::testing::CurrentUserName());
    auto idx = poplar::indexer::Indexer::Create(cfg);
    if (!idx.ok()) {
      std::cerr << idx.status() << "\n";
      return 1;
    }
    v1::AddAccountRequest add;
    add.set_user("bench");
    add.set_password("bench");
    if (auto a = (*idx)->AddAccount(add); !a.ok()) {
      std::cerr << a.status() << "\n";
      return 1;
    }
    if (auto s = (*idx)->RescanAll(); !s.ok()) {
      std::cerr << s << "\n";
      return 1;
    }
    v1::OpenSession open;
    open.set_user("bench");
    auto o = (*idx)->OpenSession(open, {});
    if (!o.ok()) {
      std::cerr << o.status() << "\n";
      return 1;
    }
    const v1::Snapshot& snap = o->snapshot;
    v1::Commit commit;
    auto add_ref = [&](int i) {
      v1::MessageRef* r = commit.add_deleted();
      r->set_data_offset(snap.data_offsets(i));
      r->set_content_hash(snap.content_hashes().substr(16 * static_cast<size_t>(i), 16));
    };
    if (c == "first") {
      add_ref(0);
    } else if (c == "last") {
      add_ref(snap.data_offsets_size() - 1);
    } else {
      for (int i = 0; i < snap.data_offsets_size(); ++i) add_ref(i);
    }
    ::sync();
    const absl::Time t0 = absl::Now();
    auto r = (*idx)->Commit(o->lease.session_id, commit);
    const absl::Duration took = absl::Now() - t0;
    (*idx)->CloseSession(o->lease.session_id);
    if (!r.ok()) {
      std::cerr << c << ": " << r.status() << "\n";
      return 1;
    }
    if (deferred) {
      const absl::Time c0 = absl::Now();
      absl::StatusOr<int> compacted = (*idx)->CompactDue(/*force=*/true);
      const absl::Duration compaction = absl::Now() - c0;
      if (!compacted.ok() || *compacted != 1) {
        std::cerr << c << ": deferred compaction did not run: "
                  << (compacted.ok() ? absl::StrCat(*compacted, " compacted")
                                     : compacted.status().ToString())
                  << "\n";
        return 1;
      }
      std::printf("%-8s %10u %10.2f %12.2f %14.2f %12llu\n", c.c_str(), snap.count(),
                  absl::ToDoubleSeconds(copy), absl::ToDoubleMilliseconds(took),
                  absl::ToDoubleSeconds(compaction),
                  static_cast<unsigned long long>(r->bytes_removed()));
      continue;
    }
    std::printf("%-8s %10u %10.2f %10.2f %8.2f %12llu\n", c.c_str(), snap.count(),
                absl::ToDoubleSeconds(copy), absl::ToDoubleSeconds(took),
                absl::ToDoubleSeconds(took) / absl::ToDoubleSeconds(copy),
                static_cast<unsigned long long>(r->bytes_removed()));
  }
  std::filesystem::remove_all(dir);
  return 0;
}
