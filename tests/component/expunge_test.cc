// The expunge end to end inside one process: Indexer::Commit on real files in temp dirs, with
// real MDA lock holders (dotlockfile, a child process holding fcntl or flock locks), and the
// recovery of interrupted compactions built by hand (Expunger + IndexStore).
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/lock/dotlock.h"
#include "common/mbox/expunge_plan.h"
#include "common/mbox/scanner.h"
#include "common/util/fault.h"
#include "gtest/gtest.h"
#include "indexer/expunger.h"
#include "indexer/indexer.h"
#include "tests/component/indexer_testing.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::AppendFile;
using ::poplar::testing::ReadFile;
using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;

// Message i as stored (From_ line through its last line), with line ending `eol`.
std::string Msg(int i, std::string_view eol = "\n") {
  std::string e(eol);
  return absl::StrCat("From s", i, "@example.org  Thu Nov 26 10:00:", 10 + i % 50, " 2026", e,
                      "Subject: m", i, e, "Message-ID: <", i, "@x>", e, e, "body ", i, e,
                      "From inside the body is quoted in mboxo: no", e);
}

struct Shape {
  const char* name;
  std::string eol;
  bool trailing_blank;  // the last message is followed by a blank line
  bool final_newline;   // the file ends with a newline
};

// A mailbox as a list of segments (message + separator), so the expected result of a deletion
// is simply the file without the deleted segments.
std::vector<std::string> Segments(int n, const Shape& s) {
  std::vector<std::string> segs;
  for (int i = 1; i <= n; ++i) {
    std::string seg = Msg(i, s.eol);
    if (i < n || s.trailing_blank) seg += s.eol;
    if (i == n && !s.final_newline) seg.resize(seg.size() - s.eol.size());
    segs.push_back(seg);
  }
  return segs;
}

std::string Join(const std::vector<std::string>& segs, const std::vector<size_t>& skip = {}) {
  std::string out;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (std::find(skip.begin(), skip.end(), i) == skip.end()) out += segs[i];
  }
  return out;
}

mbox::ScanResult StrictScan(const std::string& bytes) {
  return mbox::ScanMbox(bytes, 0, mbox::ScanOptions{.final = true, .trust_content_length = false});
}

std::vector<std::string> UidlsOf(const v1::Snapshot& s) {
  if (s.count() == 0) return {};
  return absl::StrSplit(s.uidls(), '\n');
}

class ExpungeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::mkdir(dir_.File("spool").c_str(), 0755), 0); }
  std::string Mbox() const { return dir_.File("spool/alice"); }

  config::IndexerConfig Config() {
    config::IndexerConfig c = poplar::testing::TestIndexerConfig(dir_);
    c.set_lock_timeout_ms(300);
    return c;
  }
  void Start(config::IndexerConfig c) {
    absl::StatusOr<std::unique_ptr<Indexer>> idx = Indexer::Create(c);
    ASSERT_TRUE(idx.ok()) << idx.status();
    indexer_ = std::move(*idx);
    ASSERT_TRUE(poplar::testing::AddTestAccount(*indexer_, "alice", "pw").ok());
    ASSERT_TRUE(indexer_->RescanAll().ok());
  }
  void Start() { Start(Config()); }

  struct Session {
    std::string id;
    v1::Snapshot snap;
  };
  Session Open() {
    v1::OpenSession req;
    req.set_user("alice");
    absl::StatusOr<Indexer::Opened> o = indexer_->OpenSession(req, {});
    EXPECT_TRUE(o.ok()) << o.status();
    if (!o.ok()) return {};
    return {o->lease.session_id, o->snapshot};
  }
  // Commits the deletion of snapshot indices `del` and ends the session.
  absl::StatusOr<v1::CommitResult> Delete(const Session& s, const std::vector<size_t>& del) {
    v1::Commit c;
    for (size_t i : del) {
      v1::MessageRef* r = c.add_deleted();
      r->set_data_offset(s.snap.data_offsets(static_cast<int>(i)));
      r->set_content_hash(s.snap.content_hashes().substr(16 * i, 16));
    }
    absl::StatusOr<v1::CommitResult> r = indexer_->Commit(s.id, c);
    indexer_->CloseSession(s.id);
    return r;
  }
  absl::StatusOr<v1::CommitResult> DeleteNow(const std::vector<size_t>& del) {
    return Delete(Open(), del);
  }

  TempDir dir_;
  std::unique_ptr<Indexer> indexer_;
};

// Every deletion pattern that matters, in every file shape: the file afterwards is exactly the
// old one without the deleted segments, parses strictly into the survivors, keeps its inode and
// mode, and the next session sees the new numbering with the survivors' UIDLs unchanged.
TEST_F(ExpungeTest, DeletionPatternsInEveryShape) {
  const Shape shapes[] = {{"lf", "\n", true, true},
                          {"no trailing blank line", "\n", false, true},
                          {"no final newline", "\n", false, false},
                          {"crlf", "\r\n", true, true},
                          {"crlf without trailing blank line", "\r\n", false, true}};
  const std::vector<std::vector<size_t>> patterns = {{0},       {4},    {0, 1, 2, 3, 4}, {1, 2},
                                                     {0, 2, 4}, {3, 4}, {0, 1}};
  for (const Shape& shape : shapes) {
    for (const std::vector<size_t>& del : patterns) {
      SCOPED_TRACE(absl::StrCat(shape.name, ", deleting ", del.size(), " starting at ", del[0]));
      indexer_.reset();
      ::unlink(dir_.File("index.sqlite").c_str());
      const std::vector<std::string> segs = Segments(5, shape);
      WriteFile(Mbox(), Join(segs));
      ASSERT_EQ(::chmod(Mbox().c_str(), 0660), 0);
      struct stat before {};
      ASSERT_EQ(::stat(Mbox().c_str(), &before), 0);
      Start();
      Session s = Open();
      ASSERT_EQ(s.snap.count(), 5u);
      const std::vector<std::string> old_uidls = UidlsOf(s.snap);
      absl::StatusOr<v1::CommitResult> r = Delete(s, del);
      ASSERT_TRUE(r.ok()) << r.status();
      const std::string want = Join(segs, del);
      const std::string got = ReadFile(Mbox());
      EXPECT_EQ(got, want);
      EXPECT_EQ(r->deleted(), del.size());
      EXPECT_EQ(r->bytes_removed(), Join(segs).size() - want.size());
      struct stat after {};
      ASSERT_EQ(::stat(Mbox().c_str(), &after), 0);
      EXPECT_EQ(after.st_ino, before.st_ino);
      EXPECT_EQ(after.st_mode, before.st_mode);
      EXPECT_EQ(after.st_uid, before.st_uid);
      EXPECT_EQ(after.st_gid, before.st_gid);
      mbox::ScanResult parsed = StrictScan(got);
      EXPECT_TRUE(parsed.anomalies.empty());
      EXPECT_EQ(parsed.messages.size(), 5 - del.size());
      // The next session: new numbering, same UIDLs for the survivors, matching the file.
      Session next = Open();
      std::vector<std::string> want_uidls;
      for (size_t i = 0; i < 5; ++i) {
        if (std::find(del.begin(), del.end(), i) == del.end()) want_uidls.push_back(old_uidls[i]);
      }
      EXPECT_EQ(UidlsOf(next.snap), want_uidls);
      ASSERT_EQ(next.snap.count(), parsed.messages.size());
      for (size_t i = 0; i < parsed.messages.size(); ++i) {
        EXPECT_EQ(next.snap.data_offsets(static_cast<int>(i)), parsed.messages[i].data_offset);
        EXPECT_EQ(next.snap.content_hashes().substr(16 * i, 16),
                  parsed.messages[i].content_hash.Bytes());
      }
      indexer_->CloseSession(next.id);
      // A full re-index from scratch agrees with the index the expunge left (invariant 1).
      auto v = indexer_->Verify("alice");
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(v->problems_size(), 0) << v->DebugString();
    }
  }
}

TEST_F(ExpungeTest, EmptiedMailboxIsTruncatedNotRemoved) {
  WriteFile(Mbox(), Join(Segments(3, {"lf", "\n", true, true})));
  Start();
  ASSERT_TRUE(DeleteNow({0, 1, 2}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(Mbox().c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(Open().snap.count(), 0u);
}

TEST_F(ExpungeTest, OwnerGroupAndModeAreKept) {
  WriteFile(Mbox(), Join(Segments(3, {"lf", "\n", true, true})));
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(Mbox().c_str(), 4321, 8765), 0);
  }
  ASSERT_EQ(::chmod(Mbox().c_str(), 0600), 0);
  // uid 4321 is no user here: no owner check (mailbox_owner_test covers the checks).
  config::IndexerConfig c = Config();
  c.mutable_check_owner()->set_rule(config::OwnerCheck::OWNER_ANY);
  Start(c);
  ASSERT_TRUE(DeleteNow({1}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(Mbox().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 4321u);
    EXPECT_EQ(st.st_gid, 8765u);
  }
}

// Mail delivered between the snapshot and the locks is after the first deleted byte: it is in
// the post-image and stays byte-exact, and the next session lists it.
TEST_F(ExpungeTest, MailAppendedAfterTheSnapshotIsKept) {
  const std::vector<std::string> segs = Segments(3, {"lf", "\n", true, true});
  WriteFile(Mbox(), Join(segs));
  Start();
  Session s = Open();
  const std::string late = Msg(7) + "\n" + Msg(8) + "\n";
  AppendFile(Mbox(), late);
  ASSERT_TRUE(Delete(s, {0}).ok());
  EXPECT_EQ(ReadFile(Mbox()), segs[1] + segs[2] + late);
  Session next = Open();
  EXPECT_EQ(next.snap.count(), 4u);
  const std::vector<std::string> u = UidlsOf(next.snap);
  const std::vector<std::string> old = UidlsOf(s.snap);
  ASSERT_EQ(u.size(), 4u);
  EXPECT_EQ(u[0], old[1]);
  EXPECT_EQ(u[1], old[2]);
}

// Anything that is not a pure append since the snapshot: nothing deleted, UNAVAILABLE.
TEST_F(ExpungeTest, ChangedFileDeletesNothing) {
  const std::string original = Join(Segments(3, {"lf", "\n", true, true}));
  struct Change {
    const char* name;
    std::function<void(const std::string&)> apply;
  } changes[] = {
      {"a byte changed in place",
       [](const std::string& p) {
         std::string b = ReadFile(p);
         b[b.find("body 2")] = 'B';
         int fd = ::open(p.c_str(), O_WRONLY);
         ASSERT_EQ(::pwrite(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
         ::close(fd);
       }},
      {"replaced by another file (rename)",
       [](const std::string& p) {
         WriteFile(p + ".new", ReadFile(p));
         ASSERT_EQ(::rename((p + ".new").c_str(), p.c_str()), 0);
       }},
      {"truncated", [](const std::string& p) { ASSERT_EQ(::truncate(p.c_str(), 20), 0); }},
      {"a message removed by another program",
       [](const std::string& p) {
         std::vector<std::string> segs = Segments(3, {"lf", "\n", true, true});
         int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
         std::string b = segs[0] + segs[2];
         ASSERT_EQ(::write(fd, b.data(), b.size()), static_cast<ssize_t>(b.size()));
         ::close(fd);
       }},
  };
  for (const Change& ch : changes) {
    SCOPED_TRACE(ch.name);
    indexer_.reset();
    ::unlink(dir_.File("index.sqlite").c_str());
    WriteFile(Mbox(), original);
    Start();
    Session s = Open();
    ch.apply(Mbox());
    const std::string changed = ReadFile(Mbox());
    absl::StatusOr<v1::CommitResult> r = Delete(s, {0});
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
    EXPECT_EQ(ReadFile(Mbox()), changed);
  }
}

// ---------------------------------------------------------------- locks

// A child process that holds a lock on the mailbox until killed.
class LockHolder {
 public:
  enum Kind { kFcntl, kFlock };
  LockHolder(const std::string& path, Kind kind) {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[0]);
      int fd = ::open(path.c_str(), O_RDWR);
      bool ok = fd >= 0;
      if (ok && kind == kFcntl) {
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        ok = ::fcntl(fd, F_SETLK, &fl) == 0;  // a classic POSIX lock, as MDAs take
      } else if (ok) {
        ok = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
      }
      char c = ok ? '1' : '0';
      if (::write(p[1], &c, 1) != 1) ::_exit(1);
      ::pause();
      ::_exit(0);
    }
    ::close(p[1]);
    char c = 0;
    EXPECT_EQ(::read(p[0], &c, 1), 1);
    ::close(p[0]);
    EXPECT_EQ(c, '1') << "the child could not take its lock";
  }
  ~LockHolder() { Stop(); }
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

int Shell(const std::string& cmd) { return std::system(cmd.c_str()); }

class ExpungeLockTest : public ExpungeTest {
 protected:
  void SetUp() override {
    ExpungeTest::SetUp();
    segs_ = Segments(3, {"lf", "\n", true, true});
    WriteFile(Mbox(), Join(segs_));
  }
  // A commit that must give up: UNAVAILABLE, in bounded time, nothing deleted.
  void ExpectBusy() {
    const std::string before = ReadFile(Mbox());
    const absl::Time t0 = absl::Now();
    absl::StatusOr<v1::CommitResult> r = DeleteNow({0});
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
    EXPECT_LT(absl::Now() - t0, absl::Seconds(5)) << "the wait is bounded by lock_timeout_ms";
    EXPECT_EQ(ReadFile(Mbox()), before);
  }
  void ExpectDeletes() {
    absl::StatusOr<v1::CommitResult> r = DeleteNow({0});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(ReadFile(Mbox()), segs_[1] + segs_[2]);
  }
  std::vector<std::string> segs_;
};

TEST_F(ExpungeLockTest, DotlockHeldByDotlockfile) {
  Start();
  ASSERT_EQ(Shell(absl::StrCat("dotlockfile -l -r 0 ", Mbox(), ".lock")), 0);
  ExpectBusy();
  struct stat st {};
  EXPECT_EQ(::stat((Mbox() + ".lock").c_str(), &st), 0) << "a fresh MDA lock must not be broken";
  ASSERT_EQ(Shell(absl::StrCat("dotlockfile -u ", Mbox(), ".lock")), 0);
  ExpectDeletes();
  EXPECT_NE(::stat((Mbox() + ".lock").c_str(), &st), 0) << "our own dotlock is gone";
}

TEST_F(ExpungeLockTest, FcntlLockHeldByAnotherProcess) {
  Start();
  LockHolder holder(Mbox(), LockHolder::kFcntl);
  ExpectBusy();
  struct stat st {};
  EXPECT_NE(::stat((Mbox() + ".lock").c_str(), &st), 0) << "the dotlock was released on failure";
  holder.Stop();
  ExpectDeletes();
}

TEST_F(ExpungeLockTest, BothLocksHeld) {
  Start();
  // mutt's order (kernel lock, then dotlock) and the MDAs' order end the same way.
  {
    LockHolder holder(Mbox(), LockHolder::kFcntl);
    ASSERT_EQ(Shell(absl::StrCat("dotlockfile -l -r 0 ", Mbox(), ".lock")), 0);
    ExpectBusy();
    ASSERT_EQ(Shell(absl::StrCat("dotlockfile -u ", Mbox(), ".lock")), 0);
  }
  {
    ASSERT_EQ(Shell(absl::StrCat("dotlockfile -l -r 0 ", Mbox(), ".lock")), 0);
    LockHolder holder(Mbox(), LockHolder::kFcntl);
    ExpectBusy();
    holder.Stop();
    ExpectBusy();  // the dotlock alone still stops it
    ASSERT_EQ(Shell(absl::StrCat("dotlockfile -u ", Mbox(), ".lock")), 0);
  }
  ExpectDeletes();
}

TEST_F(ExpungeLockTest, FlockWhenConfigured) {
  config::IndexerConfig c = Config();
  c.add_lock_methods(config::LOCK_DOTLOCK);
  c.add_lock_methods(config::LOCK_FCNTL);
  c.add_lock_methods(config::LOCK_FLOCK);
  Start(c);
  {
    LockHolder holder(Mbox(), LockHolder::kFlock);
    ExpectBusy();
  }
  ExpectDeletes();
}

TEST_F(ExpungeLockTest, WaitsForALockReleasedWithinTheTimeout) {
  config::IndexerConfig c = Config();
  c.set_lock_timeout_ms(5000);
  Start(c);
  ASSERT_EQ(Shell(absl::StrCat("dotlockfile -l -r 0 ", Mbox(), ".lock")), 0);
  std::thread release([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::unlink((Mbox() + ".lock").c_str());
  });
  ExpectDeletes();
  release.join();
}

TEST_F(ExpungeLockTest, StaleDotlocksAreBrokenOnlyUnderTheRules) {
  Start();
  const std::string lock = Mbox() + ".lock";
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string host = lock::LocalHostName();
  auto age = [](const std::string& p, int seconds) {
    struct timespec t[2];
    t[0].tv_sec = t[1].tv_sec = ::time(nullptr) - seconds;
    t[0].tv_nsec = t[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, 0), 0);
  };
  // Kept: a live PID here; a dead PID of another host; an old lock on a fresh mailbox; a 5-min
  // old lock (younger than the 600 s rule); an old lock while a kernel lock is held.
  WriteFile(lock, absl::StrCat(::getpid(), " ", host, "\n"));
  ExpectBusy();
  WriteFile(lock, absl::StrCat(dead, " some-other-host\n"));
  ExpectBusy();
  WriteFile(lock, "0\n");
  age(lock, 3600);
  ExpectBusy();
  age(Mbox(), 300);
  age(lock, 300);
  ExpectBusy();
  {
    age(Mbox(), 3600);
    age(lock, 3600);
    LockHolder holder(Mbox(), LockHolder::kFcntl);
    ExpectBusy();
    struct stat st {};
    EXPECT_EQ(::stat(lock.c_str(), &st), 0);
  }
  // Broken: a dead PID on this host (liblockfile's rule).
  WriteFile(lock, absl::StrCat(dead, " ", host, "\n"));
  ExpectDeletes();
  // Broken: lock and mailbox untouched for longer than dotlock_stale_s.
  segs_ = {segs_[1], segs_[2]};
  WriteFile(lock, "0\n");
  age(lock, 3600);
  age(Mbox(), 3600);
  absl::StatusOr<v1::CommitResult> r = DeleteNow({0});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(ReadFile(Mbox()), segs_[1]);
}

// "Whenever it meets one": a lock that names a dead incarnation of poplar-indexer (here: this
// very PID, reused by a later process, as a restarted indexer in a container is PID 1 again)
// is broken at once by the expunge's acquire, even with its mailbox's kernel lock held by
// someone else; the same lock naming this process's live incarnation is not.
TEST_F(ExpungeLockTest, OwnDeadIncarnationIsBrokenAtOnce) {
  Start();
  const std::string lock = Mbox() + ".lock";
  const lock::Incarnation self = lock::ThisIncarnation();
  ASSERT_TRUE(self.known());
  WriteFile(lock, lock::FormatDotlockContent(::getpid(), lock::LocalHostName(), self));
  ExpectBusy();  // a live incarnation's lock (another thread of this indexer, say)
  WriteFile(lock, lock::FormatDotlockContent(::getpid(), lock::LocalHostName(),
                                             {self.boot_id, self.start_ticks + 1}));
  ExpectDeletes();  // within lock_timeout_ms (300 ms): broken, not waited out
  struct stat st {};
  EXPECT_NE(::stat(lock.c_str(), &st), 0);
}

// Start-up: the locks a killed indexer left are removed before anything else; every other
// lock stays, whatever it says.
TEST(DotlockSweepTest, StartUpRemovesOnlyLocksOfDeadPoplarIncarnations) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("spool").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.File("hashed").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.File("hashed/h").c_str(), 0755), 0);
  config::IndexerConfig c = poplar::testing::TestIndexerConfig(dir);
  config::Spool* hashed = c.add_spools();
  hashed->set_directory(dir.File("hashed"));
  hashed->set_layout(config::SPOOL_HASHED_1);
  const std::string host = lock::LocalHostName();
  const lock::Incarnation self = lock::ThisIncarnation();
  ASSERT_TRUE(self.known());
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const lock::Incarnation dead_inc{self.boot_id, self.start_ticks + 7};
  auto poplar = [&](int64_t pid, const std::string& h, const lock::Incarnation& inc) {
    return lock::FormatDotlockContent(pid, h, inc);
  };
  struct Lock {
    std::string path;  // under dir
    std::string content;
    bool removed;
  } locks[] = {
      {"spool/dead", poplar(dead, host, dead_inc), true},
      {"spool/reused", poplar(::getpid(), host, dead_inc), true},  // PID reused (containers)
      {"spool/rebooted", poplar(::getpid(), host, {"another-boot", self.start_ticks}), true},
      {"spool/ghost", poplar(dead, host, dead_inc), true},  // its mailbox is gone
      {"hashed/h/hank", poplar(dead, host, dead_inc), true},
      {"spool/live", poplar(::getpid(), host, self), false},  // a live incarnation
      {"spool/nfs", poplar(dead, "other-host", dead_inc), false},
      {"spool/old-format", absl::StrCat(dead, " ", host, "\n"), false},  // acquire's rules only
      {"spool/no-incarnation", poplar(dead, host, {}), false},
      {"spool/other-marker",
       absl::StrCat(dead, " ", host, " procmail boot=", self.boot_id,
                    " start=", dead_inc.start_ticks, "\n"),
       false},
      {"spool/liblockfile", absl::StrCat(dead, "\n"), false},
      {"spool/procmail", "", false},
  };
  for (const Lock& l : locks) {
    if (l.path != "spool/ghost") WriteFile(dir.File(l.path), "");
    WriteFile(dir.File(l.path + ".lock"), l.content);
  }
  // A real dotlockfile lock (without -p: "0"), and a symlink to a dead incarnation's lock.
  WriteFile(dir.File("spool/mda"), "");
  ASSERT_EQ(Shell(absl::StrCat("dotlockfile -l -r 0 ", dir.File("spool/mda.lock"))), 0);
  WriteFile(dir.File("outside.lock"), poplar(dead, host, dead_inc));
  WriteFile(dir.File("spool/sym"), "");
  ASSERT_EQ(::symlink(dir.File("outside.lock").c_str(), dir.File("spool/sym.lock").c_str()), 0);

  absl::StatusOr<std::unique_ptr<Indexer>> idx = Indexer::Create(c);
  ASSERT_TRUE(idx.ok()) << idx.status();
  for (const Lock& l : locks) {
    struct stat st {};
    EXPECT_EQ(::lstat(dir.File(l.path + ".lock").c_str(), &st) != 0, l.removed) << l.path;
    if (!l.removed) {
      EXPECT_EQ(ReadFile(dir.File(l.path + ".lock")), l.content) << l.path;
    }
  }
  struct stat st {};
  EXPECT_EQ(::lstat(dir.File("spool/mda.lock").c_str(), &st), 0) << "dotlockfile's lock stays";
  EXPECT_EQ(::lstat(dir.File("spool/sym.lock").c_str(), &st), 0) << "a symlink is never followed";
  EXPECT_EQ(::lstat(dir.File("outside.lock").c_str(), &st), 0);
  EXPECT_EQ(ReadFile(dir.File("spool/dead")), "") << "mailboxes untouched";
}

TEST(MailboxLockTest, TouchRefreshesTheDotlockAndReleaseRemovesOnlyOurs) {
  TempDir dir;
  const std::string mbox = dir.File("bob");
  WriteFile(mbox, "");
  absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(mbox, {});
  ASSERT_TRUE(held.ok()) << held.status();
  const std::string lock = mbox + ".lock";
  lock::DotlockOwner owner = lock::ParseDotlockContent(ReadFile(lock));
  EXPECT_EQ(owner.pid, ::getpid());
  EXPECT_EQ(owner.host, lock::LocalHostName());
  struct timespec old[2];
  old[0].tv_sec = old[1].tv_sec = ::time(nullptr) - 3600;
  old[0].tv_nsec = old[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, lock.c_str(), old, 0), 0);
  ASSERT_TRUE(held->Touch().ok());
  struct stat st {};
  ASSERT_EQ(::stat(lock.c_str(), &st), 0);
  EXPECT_GT(st.st_mtime, ::time(nullptr) - 60) << "Touch() refreshes the lock's mtime";
  // Someone broke our lock and took their own: releasing ours must leave theirs.
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  WriteFile(lock, "1 elsewhere\n");
  held->Release();
  EXPECT_EQ(ReadFile(lock), "1 elsewhere\n");
}

TEST(MailboxLockTest, MissingFileAndSymlink) {
  TempDir dir;
  EXPECT_TRUE(absl::IsNotFound(lock::MailboxLock::Acquire(dir.File("nobody"), {}).status()));
  WriteFile(dir.File("real"), "");
  ASSERT_EQ(::symlink(dir.File("real").c_str(), dir.File("link").c_str()), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(lock::MailboxLock::Acquire(dir.File("link"), {}).status()))
      << "a symlinked mailbox is never opened for writing";
}

// An indexer without write access to the spool directory cannot create MBOX.lock, so it cannot
// keep dotlocking MDAs out: the lock must fail as FAILED_PRECONDITION at once (which the expunge
// turns into "nothing deleted" and a loud log line), not time out as if someone held it. Run in
// a child that became nobody, since root ignores directory permissions.
TEST(MailboxLockTest, NoWriteAccessToTheSpoolDirectoryRefusesTheDotlock) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  TempDir dir;
  ASSERT_EQ(::chmod(dir.File("").c_str(), 0755), 0);  // nobody may enter, not create files
  const std::string mbox = dir.File("mbox");
  WriteFile(mbox, "From a@b  Thu Nov 26 10:00:00 2026\n\nbody\n");
  ASSERT_EQ(::chown(mbox.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(mbox.c_str(), 0600), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    lock::LockOptions both;
    both.methods = {lock::Method::kDotlock, lock::Method::kFcntl};
    both.timeout = absl::Seconds(5);
    const absl::Time t0 = absl::Now();
    absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(mbox, both);
    if (held.ok()) ::_exit(11);
    if (!absl::IsFailedPrecondition(held.status())) ::_exit(12);
    if (absl::Now() - t0 > absl::Seconds(2)) ::_exit(13);  // refused at once, not timed out
    lock::LockOptions kernel_only;
    kernel_only.methods = {lock::Method::kFcntl};
    if (!lock::MailboxLock::Acquire(mbox, kernel_only).ok()) ::_exit(14);  // the file is fine
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 setuid failed, 11 locked anyway, 12 wrong status, "
                                       "13 waited for the timeout, 14 fcntl alone failed";
  struct stat st {};
  EXPECT_NE(::stat((mbox + ".lock").c_str(), &st), 0) << "no lock file left behind";
  EXPECT_EQ(ReadFile(mbox), "From a@b  Thu Nov 26 10:00:00 2026\n\nbody\n");
}

// ---------------------------------------------------------------- recovery

// Interrupted compactions rebuilt by hand: the state on disk after a crash at each step, then
// Expunger::Recover.
class Crashed {
 public:
  // Runs a real compaction of messages 1 and 3 of 4 and keeps its open plan and journal.
  Crashed() {
    EXPECT_EQ(::mkdir(dir_.File("journal").c_str(), 0700), 0);
    auto st = IndexStore::Open(dir_.File("index.sqlite"));
    EXPECT_TRUE(st.ok()) << st.status();
    store_ = std::move(*st);
    expunger_ = std::make_unique<Expunger>(store_.get(), dir_.File("journal"));
    EXPECT_TRUE(expunger_->Init().ok());
    segs_ = Segments(4, {"lf", "\n", true, true});
    original_ = Join(segs_);
    final_ = Join(segs_, {0, 2});
    WriteFile(Mbox(), original_);
    mbox::ScanResult r = StrictScan(original_);
    std::vector<uint64_t> offsets;
    for (const auto& m : r.messages) offsets.push_back(m.offset);
    auto plan = mbox::PlanCompaction(offsets, original_.size(), {0, 2});
    EXPECT_TRUE(plan.ok());
    plan_ = *plan;
    Compact();
    EXPECT_EQ(ReadFile(Mbox()), final_);
    auto open = store_->OpenExpungePlans();
    EXPECT_TRUE(open.ok());
    EXPECT_EQ(open->size(), 1u);
    rec_ = (*open)[0];
  }
  void Compact() {
    auto held = lock::MailboxLock::Acquire(Mbox(), {});
    ASSERT_TRUE(held.ok()) << held.status();
    auto id = expunger_->Compact(Mbox(), *held, plan_);
    ASSERT_TRUE(id.ok()) << id.status();
  }
  std::string Mbox() const { return dir_.File("alice"); }
  // Overwrites the mailbox's bytes in place (same inode).
  void SetBytes(const std::string& bytes) {
    int fd = ::open(Mbox().c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  Expunger::RecoveryReport Recover() {
    auto open = store_->OpenExpungePlans();
    EXPECT_TRUE(open.ok());
    EXPECT_EQ(open->size(), 1u);
    if (!open.ok() || open->size() != 1) return {};
    auto r = expunger_->Recover(open->at(0), {});
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(store_->OpenExpungePlans()->empty()) << "the plan is closed";
    return r.ok() ? *r : Expunger::RecoveryReport{};
  }
  // The file part-way through the rewrite: the first `n` bytes of the image written.
  std::string PartWay(uint64_t n) {
    std::string b = original_;
    b.replace(plan_.start, n, final_.substr(plan_.start, n));
    return b;
  }
  TempDir dir_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<Expunger> expunger_;
  std::vector<std::string> segs_;
  std::string original_, final_;
  mbox::CompactionPlan plan_;
  ExpungePlanRecord rec_;
};

class RecoveryTest : public ::testing::Test, public Crashed {};

TEST_F(RecoveryTest, ReplaysFromEveryPointBeforeTheTruncate) {
  const uint64_t image = plan_.image_size();
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, image / 2, image - 1, image}) {
    SCOPED_TRACE(n);
    SetBytes(PartWay(n));
    Expunger::RecoveryReport r = Recover();
    EXPECT_EQ(r.outcome, Expunger::Recovery::kReplayed) << r.detail;
    EXPECT_EQ(ReadFile(Mbox()), final_);
    SetBytes(original_);  // crash again at the next point
    Compact();
  }
}

TEST_F(RecoveryTest, AlreadyTruncatedIsDoneAndLaterMailStays) {
  const std::string later = Msg(9) + "\n";
  SetBytes(final_ + later);  // an MDA broke the dead indexer's dotlock and delivered
  Expunger::RecoveryReport r = Recover();
  EXPECT_EQ(r.outcome, Expunger::Recovery::kAlreadyComplete) << r.detail;
  EXPECT_EQ(ReadFile(Mbox()), final_ + later);
}

TEST_F(RecoveryTest, MailDeliveredToTheUntruncatedFileIsFoldedIn) {
  const std::string later = Msg(9) + "\n" + Msg(10);
  for (uint64_t n : {uint64_t{0}, plan_.image_size() / 2, plan_.image_size()}) {
    SCOPED_TRACE(n);
    SetBytes(PartWay(n) + later);
    Expunger::RecoveryReport r = Recover();
    EXPECT_EQ(r.outcome, Expunger::Recovery::kReplayed) << r.detail;
    EXPECT_EQ(ReadFile(Mbox()), final_ + later);
    mbox::ScanResult parsed = StrictScan(ReadFile(Mbox()));
    EXPECT_EQ(parsed.messages.size(), 4u);
    // Restore the crashed state for the next round.
    SetBytes(original_);
    Compact();
  }
}

TEST(RecoveryMismatchTest, MismatchesAreMovedAsideNeverApplied) {
  struct Case {
    const char* name;
    std::function<void(Crashed*)> damage;
  } cases[] = {
      {"journal image damaged",
       [](Crashed* t) {
         std::string j = ReadFile(t->rec_.journal_path);
         j.back() ^= 1;
         WriteFile(t->rec_.journal_path, j);
       }},
      {"journal torn",
       [](Crashed* t) { ASSERT_EQ(::truncate(t->rec_.journal_path.c_str(), 40), 0); }},
      {"journal missing", [](Crashed* t) { ::unlink(t->rec_.journal_path.c_str()); }},
      {"another inode",
       [](Crashed* t) {
         WriteFile(t->Mbox() + ".new", ReadFile(t->Mbox()));
         ASSERT_EQ(::rename((t->Mbox() + ".new").c_str(), t->Mbox().c_str()), 0);
       }},
      {"shorter than the result", [](Crashed* t) { t->SetBytes(t->final_.substr(0, 10)); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Crashed t;
    t.SetBytes(t.PartWay(t.plan_.image_size() / 2));
    c.damage(&t);
    const std::string before = ReadFile(t.Mbox());
    auto open = t.store_->OpenExpungePlans();
    ASSERT_EQ(open->size(), 1u);
    auto r = t.expunger_->Recover(open->at(0), {});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outcome, Expunger::Recovery::kRejected) << r->detail;
    EXPECT_EQ(ReadFile(t.Mbox()), before) << "nothing applied";
    EXPECT_TRUE(t.store_->OpenExpungePlans()->empty());
  }
}

TEST(RecoveryPrefixTest, ChangedPrefixIsRejected) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("journal").c_str(), 0700), 0);
  auto store = IndexStore::Open(dir.File("index.sqlite"));
  ASSERT_TRUE(store.ok());
  Expunger ex(store->get(), dir.File("journal"));
  const std::vector<std::string> segs = Segments(3, {"lf", "\n", true, true});
  const std::string original = Join(segs);
  WriteFile(dir.File("alice"), original);
  mbox::ScanResult r = StrictScan(original);
  auto plan = mbox::PlanCompaction(
      {r.messages[0].offset, r.messages[1].offset, r.messages[2].offset}, original.size(), {1});
  ASSERT_TRUE(plan.ok());
  {
    auto held = lock::MailboxLock::Acquire(dir.File("alice"), {});
    ASSERT_TRUE(held.ok());
    ASSERT_TRUE(ex.Compact(dir.File("alice"), *held, *plan).ok());
  }
  std::string changed = original;
  changed[changed.find("body 1")] = 'X';  // message 1 is before the rewritten region
  {
    int fd = ::open(dir.File("alice").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_EQ(::write(fd, changed.data(), changed.size()), static_cast<ssize_t>(changed.size()));
    ::close(fd);
  }
  auto open = (*store)->OpenExpungePlans();
  ASSERT_EQ(open->size(), 1u);
  auto rep = ex.Recover(open->at(0), {});
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->outcome, Expunger::Recovery::kRejected) << rep->detail;
  EXPECT_EQ(ReadFile(dir.File("alice")), changed);
  struct stat st {};
  EXPECT_EQ(::stat((open->at(0).journal_path + ".rejected").c_str(), &st), 0) << "moved aside";
}

TEST_F(RecoveryTest, OrphanJournalsAreRemoved) {
  WriteFile(dir_.File("journal/123-456-789-1.journal"), "torn");
  auto n = expunger_->RemoveOrphanJournals();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  struct stat st {};
  EXPECT_EQ(::stat(rec_.journal_path.c_str(), &st), 0) << "the open plan's journal stays";
}

// The journal and the rewrite run without the indexer's lock: while alice's big expunge is
// paused half-way through its rewrite, bob logs in and an admin verify answers; alice's mailbox
// stays fenced (no session, no re-index of the half-written file) until the expunge is done.
TEST_F(ExpungeTest, OtherMailboxesAreServedWhileAnExpungeRewrites) {
  const std::vector<std::string> segs = Segments(6, {"lf", "\n", true, true});
  WriteFile(Mbox(), Join(segs));
  WriteFile(dir_.File("spool/bob"), Join(Segments(3, {"lf", "\n", true, true})));
  Start();
  v1::AddAccountRequest add;
  add.set_user("bob");
  add.set_password("pw");
  ASSERT_TRUE(indexer_->AddAccount(add).ok());
  std::promise<void> reached;
  std::promise<void> go;
  std::shared_future<void> go_future = go.get_future().share();
  std::atomic<int> pauses{0};
  SetFaultObserverForTesting([&](std::string_view point) {
    if (point == "expunge.mid_rewrite" && pauses.fetch_add(1) == 0) {
      reached.set_value();
      go_future.wait();
    }
  });
  Session s = Open();
  std::future<absl::StatusOr<v1::CommitResult>> commit =
      std::async(std::launch::async, [&] { return Delete(s, {0}); });
  ASSERT_EQ(reached.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);

  auto open_as = [this](const std::string& user) {
    v1::OpenSession req;
    req.set_user(user);
    return indexer_->OpenSession(req, {});
  };
  std::future<absl::StatusOr<Indexer::Opened>> bob =
      std::async(std::launch::async, [&] { return open_as("bob"); });
  const bool bob_served = bob.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  EXPECT_TRUE(bob_served) << "a login to another mailbox waited for alice's expunge";
  if (bob_served) {
    absl::StatusOr<Indexer::Opened> b = bob.get();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->snapshot.count(), 3u);
    indexer_->CloseSession(b->lease.session_id);
    // The half-rewritten mailbox is not reported as damaged, nor re-indexed.
    absl::StatusOr<v1::VerifyReply> v = indexer_->Verify("");
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->problems_size(), 0);
    ASSERT_TRUE(indexer_->RescanAll().ok());
    // Even with the deleting session's lease gone, alice stays in use until the rewrite ends.
    indexer_->CloseSession(s.id);
    absl::StatusOr<Indexer::Opened> a = open_as("alice");
    EXPECT_TRUE(absl::IsResourceExhausted(a.status())) << a.status();
  }
  go.set_value();
  absl::StatusOr<v1::CommitResult> r = commit.get();
  SetFaultObserverForTesting(nullptr);
  if (!bob_served) bob.wait();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->deleted(), 1u);
  EXPECT_EQ(ReadFile(Mbox()), Join(segs, {0}));
  Session after = Open();
  EXPECT_EQ(after.snap.count(), 5u);
  indexer_->CloseSession(after.id);
  absl::StatusOr<v1::VerifyReply> v = indexer_->Verify("alice");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->problems_size(), 0);
}

}  // namespace
}  // namespace poplar::indexer

// ---------------------------------------------------------------- deferred compaction

namespace poplar::indexer {
namespace {

class DeferredExpungeTest : public ExpungeTest {
 protected:
  config::IndexerConfig Deferred(uint64_t bytes, uint32_t delay_s) {
    config::IndexerConfig c = Config();
    c.set_deferred_expunge(true);
    c.set_deferred_expunge_bytes(bytes);
    c.set_deferred_expunge_delay_s(delay_s);
    return c;
  }
};

TEST_F(DeferredExpungeTest, HiddenAtOnceCompactedLaterInOneBatch) {
  const std::vector<std::string> segs = Segments(5, {"lf", "\n", true, true});
  const std::string original = Join(segs);
  WriteFile(Mbox(), original);
  Start(Deferred(/*bytes=*/1 << 30, /*delay_s=*/3600));
  Session s = Open();
  const std::vector<std::string> uidls = UidlsOf(s.snap);
  absl::StatusOr<v1::CommitResult> r = Delete(s, {0, 3});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->deleted(), 2u);
  EXPECT_EQ(ReadFile(Mbox()), original) << "nothing is written at QUIT";
  Session next = Open();
  EXPECT_EQ(UidlsOf(next.snap), (std::vector<std::string>{uidls[1], uidls[2], uidls[4]}))
      << "hidden messages are never served again";
  // A second session deletes another one; mail arrives meanwhile.
  AppendFile(Mbox(), Msg(9) + "\n");
  ASSERT_TRUE(Delete(next, {1}).ok());  // uidls[2]
  Session third = Open();
  ASSERT_EQ(third.snap.count(), 3u);
  indexer_->CloseSession(third.id);
  // Not due yet (threshold and delay far away).
  auto n = indexer_->CompactDue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(ReadFile(Mbox()), original + Msg(9) + "\n");
  // Not while a session holds the mailbox, even when forced.
  Session busy = Open();
  n = indexer_->CompactDue(/*force=*/true);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0);
  indexer_->CloseSession(busy.id);
  n = indexer_->CompactDue(/*force=*/true);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(ReadFile(Mbox()), segs[1] + segs[4] + Msg(9) + "\n");
  Session after = Open();
  std::vector<std::string> u = UidlsOf(after.snap);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0], uidls[1]);
  EXPECT_EQ(u[1], uidls[4]);
  indexer_->CloseSession(after.id);
  auto v = indexer_->Verify("alice");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->problems_size(), 0);
}

// Issue 15: a delivery that completes the last line ("\n", then the empty line) of a mailbox
// whose last message has no final newline does not change that message's identity. A session
// that DELEted it before the delivery commits, immediately or deferred, and the new mail stays.
TEST_F(ExpungeTest, DeleOfTheLastLineCompletedByADeliveryCommits) {
  const std::vector<std::string> segs = Segments(3, {"lf", "\n", false, false});
  WriteFile(Mbox(), Join(segs));
  Start(Config());
  Session s = Open();
  const std::vector<std::string> uidls = UidlsOf(s.snap);
  AppendFile(Mbox(), "\n\n" + Msg(9) + "\n");  // a padding MDA's delivery
  absl::StatusOr<v1::CommitResult> r = Delete(s, {2});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->deleted(), 1u);
  EXPECT_EQ(ReadFile(Mbox()), segs[0] + segs[1] + Msg(9) + "\n");
  Session next = Open();
  const std::vector<std::string> u = UidlsOf(next.snap);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0], uidls[0]);
  EXPECT_EQ(u[1], uidls[1]);
  indexer_->CloseSession(next.id);
}

TEST_F(DeferredExpungeTest, HiddenLastMessageFollowsADeliveryThatCompletesItsLine) {
  const std::vector<std::string> segs = Segments(3, {"lf", "\n", false, false});
  WriteFile(Mbox(), Join(segs));
  Start(Deferred(/*bytes=*/1 << 30, /*delay_s=*/3600));
  Session s = Open();
  const std::vector<std::string> uidls = UidlsOf(s.snap);
  ASSERT_TRUE(Delete(s, {2}).ok());
  AppendFile(Mbox(), "\n\n" + Msg(9) + "\n");
  ASSERT_TRUE(indexer_->RescanAll().ok());
  Session next = Open();
  std::vector<std::string> u = UidlsOf(next.snap);
  ASSERT_EQ(u.size(), 3u) << "the hidden message stays hidden after the delivery";
  EXPECT_EQ(u[0], uidls[0]);
  EXPECT_EQ(u[1], uidls[1]);
  indexer_->CloseSession(next.id);
  auto n = indexer_->CompactDue(/*force=*/true);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(ReadFile(Mbox()), segs[0] + segs[1] + Msg(9) + "\n");
}

// Another program rewrites the mailbox (offsets move): hidden messages stay hidden, found by
// their content hash, and the compaction still removes exactly them.
TEST_F(DeferredExpungeTest, HiddenMessagesFollowARewriteByAnotherProgram) {
  const std::vector<std::string> segs = Segments(3, {"lf", "\n", true, true});
  WriteFile(Mbox(), Join(segs));
  Start(Deferred(/*bytes=*/1 << 30, /*delay_s=*/3600));
  Session s = Open();
  const std::vector<std::string> uidls = UidlsOf(s.snap);
  ASSERT_TRUE(Delete(s, {1}).ok());
  const std::string front = Msg(7) + "\n";  // mutt-style rewrite: a message put in front
  WriteFile(Mbox() + ".new", front + Join(segs));
  ASSERT_EQ(::rename((Mbox() + ".new").c_str(), Mbox().c_str()), 0);
  ASSERT_TRUE(indexer_->RescanAll().ok());
  Session next = Open();
  std::vector<std::string> u = UidlsOf(next.snap);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[1], uidls[0]);
  EXPECT_EQ(u[2], uidls[2]);
  indexer_->CloseSession(next.id);
  auto n = indexer_->CompactDue(/*force=*/true);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(ReadFile(Mbox()), front + segs[0] + segs[2]);
}

// A hidden message counts its whole segment (From_ line to the next From_ line, or to the end
// of the file for the last one) toward deferred_expunge_bytes: exactly at the threshold it is
// due, one byte short it is not. Covers the first hide (answered from the cached snapshot) and a
// later one (answered from SQLite).
TEST_F(DeferredExpungeTest, HiddenBytesAreTheWholeSegment) {
  const std::vector<std::string> segs = Segments(4, {"lf", "\n", true, true});
  WriteFile(Mbox(), Join(segs));
  const uint64_t first = segs[1].size();
  const uint64_t both = segs[1].size() + segs[3].size();
  Start(Deferred(/*bytes=*/first + 1, /*delay_s=*/3600));
  ASSERT_TRUE(DeleteNow({1}).ok());
  auto n = indexer_->CompactDue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0) << "one byte short of the threshold";
  indexer_.reset();
  Start(Deferred(/*bytes=*/both + 1, /*delay_s=*/3600));
  ASSERT_TRUE(DeleteNow({2}).ok());  // the last message of the file: segs[3]
  n = indexer_->CompactDue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0) << "one byte short of the threshold";
  indexer_.reset();
  Start(Deferred(/*bytes=*/both, /*delay_s=*/3600));
  n = indexer_->CompactDue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1) << "exactly at the threshold";
  EXPECT_EQ(ReadFile(Mbox()), segs[0] + segs[2]);
}

TEST_F(DeferredExpungeTest, DueByBytesOrByAgeAndHiddenSurvivesARestart) {
  const std::vector<std::string> segs = Segments(4, {"lf", "\n", true, true});
  WriteFile(Mbox(), Join(segs));
  Start(Deferred(/*bytes=*/1, /*delay_s=*/3600));
  ASSERT_TRUE(DeleteNow({0}).ok());
  auto n = indexer_->CompactDue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1) << "one hidden byte reaches a threshold of 1";
  EXPECT_EQ(ReadFile(Mbox()), segs[1] + segs[2] + segs[3]);
  indexer_.reset();
  Start(Deferred(/*bytes=*/1 << 30, /*delay_s=*/0));
  ASSERT_TRUE(DeleteNow({2}).ok());
  indexer_.reset();  // a restart keeps the hidden messages hidden
  Start(Deferred(/*bytes=*/1 << 30, /*delay_s=*/3600));
  EXPECT_EQ(Open().snap.count(), 2u);
  indexer_.reset();
  Start(Deferred(/*bytes=*/1 << 30, /*delay_s=*/0));
  n = indexer_->CompactDue();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1) << "due by age";
  EXPECT_EQ(ReadFile(Mbox()), segs[1] + segs[2]);
}

}  // namespace
}  // namespace poplar::indexer
