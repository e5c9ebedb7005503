// SpoolWatcher against real directories and real inotify in a temp dir.
#include "indexer/spool_watcher.h"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/util/fault.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::poplar::testing::AppendFile;
using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;
using ::testing::Contains;
using ::testing::UnorderedElementsAre;

config::Spool MakeSpool(const std::string& dir, config::SpoolLayout layout) {
  config::Spool s;
  s.set_directory(dir);
  s.set_layout(layout);
  return s;
}

// Waits until the watcher has something to say (or 2 s), then drains all of it.
SpoolWatcher::Events WaitAndDrain(SpoolWatcher& w) {
  SpoolWatcher::Events all;
  struct pollfd p {
    w.fd(), POLLIN, 0
  };
  if (::poll(&p, 1, 2000) <= 0) return all;
  ::usleep(20000);  // let related events arrive together
  auto ev = w.Drain();
  EXPECT_TRUE(ev.ok()) << ev.status();
  return ev.ok() ? *ev : all;
}

std::set<std::string> Users(const SpoolWatcher::Events& ev) {
  std::set<std::string> out;
  for (const MailboxFile& m : ev.changed) out.insert(m.user);
  return out;
}

TEST(SpoolWatcher, MailboxNamesAndPaths) {
  for (const char* bad : {"", ".hidden", "alice.lock", "alice~", "x.tmp", "a/b"}) {
    EXPECT_FALSE(IsMailboxName(bad)) << bad;
  }
  EXPECT_TRUE(IsMailboxName("alice"));
  EXPECT_EQ(MailboxPathFor(MakeSpool("/var/mail", config::SPOOL_FLAT), "alice"), "/var/mail/alice");
  EXPECT_EQ(MailboxPathFor(MakeSpool("/s", config::SPOOL_HASHED_1), "alice"), "/s/a/alice");
  EXPECT_EQ(MailboxPathFor(MakeSpool("/s", config::SPOOL_HASHED_2), "alice"), "/s/a/l/alice");
  EXPECT_EQ(MailboxPathFor(MakeSpool("/s", config::SPOOL_HASHED_2), "b"), "/s/b/b/b");
  // Qpopper's hash-spool = 1: 'a' + (sum of the first five bytes) mod 26 (genpath.c method 1).
  const config::Spool qpopper = MakeSpool("/s", config::SPOOL_HASHED_QPOPPER);
  EXPECT_EQ(MailboxPathFor(qpopper, "alice"), "/s/q/alice");                  // 510 % 26 = 16
  EXPECT_EQ(MailboxPathFor(qpopper, "bob"), "/s/v/bob");                      // 307 % 26 = 21
  EXPECT_EQ(MailboxPathFor(qpopper, "x"), "/s/q/x");                          // 120 % 26 = 16
  EXPECT_EQ(MailboxPathFor(qpopper, "averylongname"), "/s/f/averylongname");  // "avery": 551
  config::Spool home = MakeSpool("/home", config::SPOOL_HOME);
  EXPECT_EQ(MailboxPathFor(home, "alice"), "/home/alice/Mail/inbox");
  EXPECT_EQ(MailboxPathFor(home, ".."), "");
}

TEST(SpoolWatcher, FlatSpoolListsAndReportsChanges) {
  TempDir dir;
  WriteFile(dir.File("alice"), "x");
  WriteFile(dir.File("bob"), "y");
  WriteFile(dir.File("bob.lock"), "");
  WriteFile(dir.File(".hidden"), "");
  ::symlink(dir.File("alice").c_str(), dir.File("mallory").c_str());  // never a mailbox
  auto w = SpoolWatcher::Create({MakeSpool(dir.path(), config::SPOOL_FLAT)});
  ASSERT_TRUE(w.ok());
  auto all = (*w)->ListAll();
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, UnorderedElementsAre(MailboxFile{dir.File("alice"), "alice"},
                                         MailboxFile{dir.File("bob"), "bob"}));

  AppendFile(dir.File("alice"), "more");
  auto ev = WaitAndDrain(**w);
  EXPECT_THAT(ev.changed, Contains(MailboxFile{dir.File("alice"), "alice"}));
  EXPECT_FALSE(ev.rescan_all);

  // The MDA removing its dotlock is the signal that bob's delivery is complete.
  ::unlink(dir.File("bob.lock").c_str());
  ev = WaitAndDrain(**w);
  EXPECT_EQ(Users(ev), std::set<std::string>{"bob"});

  WriteFile(dir.File("carol"), "new");
  ev = WaitAndDrain(**w);
  EXPECT_EQ(Users(ev), std::set<std::string>{"carol"});

  ::unlink(dir.File("carol").c_str());
  ev = WaitAndDrain(**w);
  EXPECT_EQ(Users(ev), std::set<std::string>{"carol"});  // a hint: the indexer finds it gone

  WriteFile(dir.File(".scratch"), "");
  ev = WaitAndDrain(**w);
  EXPECT_TRUE(ev.changed.empty());
}

TEST(SpoolWatcher, HashedSpoolAndNewDirectories) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("a").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.File("a/l").c_str(), 0755), 0);
  WriteFile(dir.File("a/l/alice"), "x");
  auto w = SpoolWatcher::Create({MakeSpool(dir.path(), config::SPOOL_HASHED_2)});
  ASSERT_TRUE(w.ok());
  auto all = (*w)->ListAll();
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, UnorderedElementsAre(MailboxFile{dir.File("a/l/alice"), "alice"}));
  AppendFile(dir.File("a/l/alice"), "y");
  auto ev = WaitAndDrain(**w);
  EXPECT_EQ(Users(ev), std::set<std::string>{"alice"});
  // A new hashed directory has no history: the watcher asks for a rescan.
  ASSERT_EQ(::mkdir(dir.File("b").c_str(), 0755), 0);
  ev = WaitAndDrain(**w);
  EXPECT_TRUE(ev.rescan_all);
  ASSERT_EQ(::mkdir(dir.File("b/o").c_str(), 0755), 0);
  WriteFile(dir.File("b/o/bob"), "z");
  all = (*w)->ListAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  (void)(*w)->Drain();
  AppendFile(dir.File("b/o/bob"), "more");
  ev = WaitAndDrain(**w);
  EXPECT_EQ(Users(ev), std::set<std::string>{"bob"});
}

TEST(SpoolWatcher, HomeDirectoryMail) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("alice").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.File("alice/Mail").c_str(), 0755), 0);
  WriteFile(dir.File("alice/Mail/inbox"), "x");
  WriteFile(dir.File("alice/Mail/other"), "x");
  auto w = SpoolWatcher::Create({MakeSpool(dir.path(), config::SPOOL_HOME)});
  ASSERT_TRUE(w.ok());
  auto all = (*w)->ListAll();
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, UnorderedElementsAre(MailboxFile{dir.File("alice/Mail/inbox"), "alice"}));
  AppendFile(dir.File("alice/Mail/other"), "not the inbox");
  AppendFile(dir.File("alice/Mail/inbox"), "y");
  auto ev = WaitAndDrain(**w);
  ASSERT_FALSE(ev.changed.empty());
  for (const MailboxFile& m : ev.changed)
    EXPECT_EQ(m, (MailboxFile{dir.File("alice/Mail/inbox"), "alice"}));
}

// The start-up sweep's candidates: every MAILBOX.lock where the layout puts mailboxes, with or
// without its mailbox; no other file, no directory, no symlink, nothing off the layout.
TEST(SpoolWatcher, ListDotlocksInEveryLayout) {
  TempDir dir;
  for (const char* d : {"flat", "hashed", "hashed/a", "hashed/a/l", "hashed/a/l/x.lock", "home",
                        "home/bob", "home/bob/Mail", "home/.skel", "home/.skel/Mail"}) {
    ASSERT_EQ(::mkdir(dir.File(d).c_str(), 0755), 0) << d;
  }
  for (const char* f :
       {"flat/alice", "flat/alice.lock", "flat/ghost.lock", "flat/.hidden.lock", "flat/x.tmp",
        "flat/alice.lock.tmp", "hashed/top.lock", "hashed/a/l/al.lock", "hashed/a/l/al",
        "home/bob/Mail/inbox.lock", "home/bob/Mail/other.lock", "home/bob/inbox.lock",
        "home/.skel/Mail/inbox.lock", "elsewhere.lock"}) {
    WriteFile(dir.File(f), "");
  }
  ASSERT_EQ(::symlink(dir.File("elsewhere.lock").c_str(), dir.File("flat/sym.lock").c_str()), 0);
  auto w = SpoolWatcher::Create({MakeSpool(dir.File("flat"), config::SPOOL_FLAT),
                                 MakeSpool(dir.File("hashed"), config::SPOOL_HASHED_2),
                                 MakeSpool(dir.File("home"), config::SPOOL_HOME)});
  ASSERT_TRUE(w.ok());
  EXPECT_THAT(
      (*w)->ListDotlocks(),
      UnorderedElementsAre(dir.File("flat/alice.lock"), dir.File("flat/ghost.lock"),
                           dir.File("hashed/a/l/al.lock"), dir.File("home/bob/Mail/inbox.lock")));
}

TEST(SpoolWatcher, QueueOverflowAsksForFullRescan) {
  TempDir dir;
  auto w = SpoolWatcher::Create({MakeSpool(dir.path(), config::SPOOL_FLAT)});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->ListAll().ok());
  int max_events = 16384;
  if (FILE* f = ::fopen("/proc/sys/fs/inotify/max_queued_events", "r")) {
    if (::fscanf(f, "%d", &max_events) != 1) max_events = 16384;
    ::fclose(f);
  }
  // Each create + close yields at least two events; more files than the queue holds.
  for (int i = 0; i < max_events / 2 + 2000; ++i) WriteFile(dir.File(absl::StrCat("u", i)), "");
  auto ev = (*w)->Drain();
  ASSERT_TRUE(ev.ok());
  EXPECT_TRUE(ev->rescan_all);
}

// A directory that goes away between its listing and its watch (or any failed watch: the
// inotify limit) is counted and reported once, not at every rescan, and watched again once it
// is back.
TEST(SpoolWatcher, AFailedWatchIsReportedOnceAndRetried) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.File("a").c_str(), 0755), 0);
  auto w = SpoolWatcher::Create({MakeSpool(dir.path(), config::SPOOL_HASHED_1)});
  ASSERT_TRUE(w.ok());
  int reached = 0;
  SetFaultObserverForTesting([&](std::string_view point) {
    // The spool directory is watched first, then "a": remove "a" just before its watch.
    if (point == "spool_watcher.before_watch" && ++reached == 2) ::rmdir(dir.File("a").c_str());
  });
  ASSERT_TRUE((*w)->ListAll().ok());
  SetFaultObserverForTesting(nullptr);
  EXPECT_EQ(reached, 2);
  EXPECT_EQ((*w)->unwatched(), 1u);
  ASSERT_EQ(::mkdir(dir.File("a").c_str(), 0755), 0);
  ASSERT_TRUE((*w)->ListAll().ok());
  EXPECT_EQ((*w)->unwatched(), 0u);
  // Watched now: a delivery into it is seen.
  WriteFile(dir.File("a/ann"), "x");
  auto ev = WaitAndDrain(**w);
  EXPECT_FALSE(ev.changed.empty() && !ev.rescan_all);
}

TEST(SpoolWatcher, MissingSpoolDirectoryIsAnError) {
  auto w = SpoolWatcher::Create({MakeSpool("/nonexistent/poplar-spool", config::SPOOL_FLAT)});
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition((*w)->ListAll().status()));
}

}  // namespace
}  // namespace poplar::indexer
