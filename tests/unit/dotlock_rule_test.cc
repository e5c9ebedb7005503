// The pure parts of mailbox locking and fault injection: the stale-dotlock rule (reliability.md
// §1.4), lock file contents, and POPLAR_FAULT parsing.
#include "common/lock/dotlock.h"
#include "common/util/fault.h"
#include "gtest/gtest.h"

namespace poplar::lock {
namespace {

StaleFacts Fresh() {
  StaleFacts f;
  f.this_host = "spool1";
  f.owner = {4242, "spool1"};
  f.pid_alive = true;
  f.lock_age_s = 5;
  f.mailbox_age_s = 5;
  return f;
}

TEST(DotlockRuleTest, StaleRule) {
  struct Case {
    const char* name;
    void (*change)(StaleFacts&);
    bool stale;
  } cases[] = {
      {"fresh lock of a live process", [](StaleFacts&) {}, false},
      {"dead pid on this host", [](StaleFacts& f) { f.pid_alive = false; }, true},
      {"dead pid but a kernel lock is held",
       [](StaleFacts& f) {
         f.pid_alive = false;
         f.kernel_lock_held = true;
       },
       false},
      {"dead pid on another host (NFS: means nothing)",
       [](StaleFacts& f) {
         f.pid_alive = false;
         f.owner.host = "spool2";
       },
       false},
      {"dead pid, no host written",
       [](StaleFacts& f) {
         f.pid_alive = false;
         f.owner.host = "";
       },
       false},
      {"pid 0 (dotlockfile without -p)",
       [](StaleFacts& f) {
         f.owner = {0, ""};
         f.pid_alive = false;
       },
       false},
      {"old lock, old mailbox",
       [](StaleFacts& f) {
         f.lock_age_s = 600;
         f.mailbox_age_s = 600;
       },
       true},
      {"old lock, mailbox written recently",
       [](StaleFacts& f) {
         f.lock_age_s = 3600;
         f.mailbox_age_s = 30;
       },
       false},
      {"old lock, old mailbox, kernel lock held",
       [](StaleFacts& f) {
         f.lock_age_s = 3600;
         f.mailbox_age_s = 3600;
         f.kernel_lock_held = true;
       },
       false},
      {"599 s (just under the rule)",
       [](StaleFacts& f) {
         f.lock_age_s = 599;
         f.mailbox_age_s = 9999;
       },
       false},
      {"5 min (liblockfile would break it; Poplar waits longer)",
       [](StaleFacts& f) {
         f.lock_age_s = 300;
         f.mailbox_age_s = 300;
       },
       false},
      {"future mtime (clock skew) is fresh",
       [](StaleFacts& f) {
         f.lock_age_s = -100000;
         f.mailbox_age_s = 100000;
       },
       false},
  };
  for (const Case& c : cases) {
    StaleFacts f = Fresh();
    c.change(f);
    EXPECT_EQ(DotlockIsStale(f), c.stale) << c.name;
  }
  StaleFacts f = Fresh();
  f.lock_age_s = 120;
  f.mailbox_age_s = 120;
  EXPECT_TRUE(DotlockIsStale(f, /*stale_after_s=*/120));
}

TEST(DotlockRuleTest, LockFileContents) {
  EXPECT_EQ(FormatDotlockContent(123, "spool1"), "123 spool1\n");
  DotlockOwner o = ParseDotlockContent("123 spool1\n");
  EXPECT_EQ(o.pid, 123);
  EXPECT_EQ(o.host, "spool1");
  o = ParseDotlockContent("4567\n");  // liblockfile -p
  EXPECT_EQ(o.pid, 4567);
  EXPECT_EQ(o.host, "");
  o = ParseDotlockContent("");  // procmail
  EXPECT_EQ(o.pid, 0);
  o = ParseDotlockContent("garbage");
  EXPECT_EQ(o.pid, 0);
  o = ParseDotlockContent("99999999999999999999 h\n");  // absurd pid: unknown
  EXPECT_EQ(o.pid, 0);
}

TEST(FaultSpecTest, Parse) {
  FaultSpec s;
  ASSERT_TRUE(ParseFaultSpec("expunge.mid_rewrite:3", &s));
  EXPECT_EQ(s.point, "expunge.mid_rewrite");
  EXPECT_EQ(s.hit, 3);
  ASSERT_TRUE(ParseFaultSpec("expunge.after_journal", &s));
  EXPECT_EQ(s.hit, 1);
  EXPECT_FALSE(ParseFaultSpec("", &s));
  EXPECT_FALSE(ParseFaultSpec("x:0", &s));
  EXPECT_FALSE(ParseFaultSpec("x:y", &s));
  EXPECT_FALSE(ParseFaultSpec(":2", &s));
  FaultPoint("not.armed");  // inert without POPLAR_FAULT naming it: the test survives
}

}  // namespace
}  // namespace poplar::lock
