// The pure parts of mailbox locking and fault injection: the stale-dotlock rule (reliability.md
// §1.4), lock file contents, and POPLAR_FAULT parsing.
#include <unistd.h>

#include "common/lock/dotlock.h"
#include "common/util/fault.h"
#include "gtest/gtest.h"

namespace poplar::lock {
namespace {

StaleFacts Fresh() {
  StaleFacts f;
  f.this_host = "spool1";
  f.owner.pid = 4242;
  f.owner.host = "spool1";
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
         f.owner = DotlockOwner();
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
  EXPECT_EQ(FormatDotlockContent(123, "spool1", {"b00t-1d", 4711}),
            "123 spool1 poplar-indexer boot=b00t-1d start=4711\n");
  EXPECT_EQ(FormatDotlockContent(123, "spool1", {}), "123 spool1 poplar-indexer\n")
      << "no /proc: the marker without an incarnation (judged by the old rules)";
  struct Case {
    const char* content;
    int64_t pid;
    const char* host;
    bool poplar;
    const char* boot_id;
    uint64_t start_ticks;
  } cases[] = {
      {"123 spool1 poplar-indexer boot=b00t-1d start=4711\n", 123, "spool1", true, "b00t-1d", 4711},
      {"1 spool1 poplar-indexer boot=b start=99", 1, "spool1", true, "b", 99},  // no newline
      {"123 spool1 poplar-indexer\n", 123, "spool1", true, "", 0},
      {"123 spool1 poplar-indexer start=x boot=\n", 123, "spool1", true, "", 0},  // bad values
      {"123 spool1\n", 123, "spool1", false, "", 0},  // Poplar before the marker
      {"123 spool1 procmail boot=b start=5\n", 123, "spool1", false, "", 0},  // another marker
      {"123 spool1 poplar-indexerX boot=b start=5\n", 123, "spool1", false, "", 0},
      {"123 spool1\npoplar-indexer boot=b start=5\n", 123, "spool1", false, "", 0},  // 2nd line
      {"4567\n", 4567, "", false, "", 0},  // liblockfile -p
      {"", 0, "", false, "", 0},           // procmail
      {"0", 0, "", false, "", 0},          // dotlockfile without -p
      {"garbage", 0, "", false, "", 0},
      {"99999999999999999999 h\n", 0, "h", false, "", 0},  // absurd pid: unknown
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.content);
    DotlockOwner o = ParseDotlockContent(c.content);
    EXPECT_EQ(o.pid, c.pid);
    EXPECT_EQ(o.host, c.host);
    EXPECT_EQ(o.poplar, c.poplar);
    EXPECT_EQ(o.incarnation.boot_id, c.boot_id);
    EXPECT_EQ(o.incarnation.start_ticks, c.start_ticks);
  }
  // What we write, we read back.
  DotlockOwner o = ParseDotlockContent(FormatDotlockContent(77, "h-1.example", {"id", 5}));
  EXPECT_EQ(o.pid, 77);
  EXPECT_EQ(o.host, "h-1.example");
  EXPECT_TRUE(o.poplar);
  EXPECT_TRUE(o.incarnation.known());
}

// Poplar's own locks: our marker, our host, and that exact process incarnation gone.
StaleFacts Ours() {
  StaleFacts f;
  f.this_host = "spool1";
  f.this_boot_id = "boot-A";
  f.owner.pid = 1;  // a restarted indexer in a container is PID 1 again
  f.owner.host = "spool1";
  f.owner.poplar = true;
  f.owner.incarnation = {"boot-A", 1000};
  f.pid_alive = true;
  f.pid_start_ticks = 1000;  // the writer itself is running
  f.lock_age_s = 5;
  f.mailbox_age_s = 5;
  return f;
}

TEST(DotlockRuleTest, OwnDeadIncarnation) {
  struct Case {
    const char* name;
    void (*change)(StaleFacts&);
    bool gone;
  } cases[] = {
      {"the writer is running", [](StaleFacts&) {}, false},
      {"no process with that PID", [](StaleFacts& f) { f.pid_alive = false; }, true},
      {"PID reused by a later process (container restart, wrap-around)",
       [](StaleFacts& f) { f.pid_start_ticks = 2000; }, true},
      {"PID alive, start time unreadable (hidepid): cannot tell",
       [](StaleFacts& f) { f.pid_start_ticks = 0; }, false},
      {"written before a reboot", [](StaleFacts& f) { f.owner.incarnation.boot_id = "boot-B"; },
       true},
      {"this host's boot id unknown: cannot tell",
       [](StaleFacts& f) {
         f.this_boot_id = "";
         f.pid_start_ticks = 2000;
       },
       false},
      {"dead, but another host (NFS)",
       [](StaleFacts& f) {
         f.pid_alive = false;
         f.owner.host = "spool2";
       },
       false},
      {"reused PID, but another host",
       [](StaleFacts& f) {
         f.pid_start_ticks = 2000;
         f.owner.host = "spool2";
       },
       false},
      {"another program's lock (no marker), PID reused",
       [](StaleFacts& f) {
         f.owner.poplar = false;
         f.owner.incarnation = {};
         f.pid_start_ticks = 2000;
       },
       false},
      {"marker without incarnation (no /proc when written), PID reused",
       [](StaleFacts& f) {
         f.owner.incarnation = {};
         f.pid_start_ticks = 2000;
       },
       false},
      {"marker without start time, PID reused",
       [](StaleFacts& f) {
         f.owner.incarnation.start_ticks = 0;
         f.pid_start_ticks = 2000;
       },
       false},
      {"PID 0",
       [](StaleFacts& f) {
         f.owner.pid = 0;
         f.pid_alive = false;
       },
       false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    StaleFacts f = Ours();
    c.change(f);
    EXPECT_EQ(DotlockWriterGone(f), c.gone);
    EXPECT_EQ(DotlockIsStale(f), c.gone) << "fresh lock and mailbox: only this rule can apply";
    // Our dead writer holds no kernel lock: whoever does, the dotlock protects nothing.
    f.kernel_lock_held = true;
    EXPECT_EQ(DotlockIsStale(f), c.gone);
  }
  // Old-format rules still apply to Poplar's locks: a live writer's old lock on an old mailbox
  // is broken by age (a live indexer touches its lock, so this is a hung one).
  StaleFacts f = Ours();
  f.lock_age_s = f.mailbox_age_s = 600;
  EXPECT_FALSE(DotlockWriterGone(f));
  EXPECT_TRUE(DotlockIsStale(f));
}

TEST(DotlockRuleTest, ProcStatStartTicks) {
  struct Case {
    const char* name;
    const char* stat;
    uint64_t want;
  } cases[] = {
      {"plain",
       "4242 (poplar-indexer) S 1 4242 4242 0 -1 4194560 1 0 0 0 1 2 0 0 20 0 5 0 987654 1 2 3\n",
       987654},
      {"spaces and parentheses in the command",
       "7 (a) b) (c d) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 31337 0 0\n", 31337},
      {"truncated before field 22", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0", 0},
      {"no command", "7 x R 1", 0},
      {"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 abc 0\n", 0},
      {"empty", "", 0},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseProcStatStartTicks(c.stat), c.want) << c.name;
}

// The I/O behind the facts, on this Linux machine.
TEST(DotlockRuleTest, ThisIncarnationOnLinux) {
  Incarnation self = ThisIncarnation();
  ASSERT_TRUE(self.known()) << "boot id '" << self.boot_id << "', start " << self.start_ticks;
  EXPECT_EQ(self.boot_id.size(), 36u) << self.boot_id;  // a UUID
  EXPECT_EQ(ProcessStartTicks(::getpid()), self.start_ticks);
  EXPECT_EQ(ThisIncarnation().boot_id, self.boot_id);
  EXPECT_EQ(ProcessStartTicks(0), 0u);
  EXPECT_EQ(ProcessStartTicks(-5), 0u);
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
