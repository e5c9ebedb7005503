#include "indexer/lease_manager.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace poplar::indexer {
namespace {

LeaseInfo Info(const std::string& mailbox, const std::string& user = "alice") {
  LeaseInfo i;
  i.mailbox = mailbox;
  i.user = user;
  i.client_address = "192.0.2.1";
  i.front_end = "popd-test";
  return i;
}

TEST(LeaseManager, SecondLoginIsInUseAtOnce) {
  LeaseManager m;
  auto a = m.Acquire(Info("/spool/alice"), nullptr);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->session_id.empty());
  auto b = m.Acquire(Info("/spool/alice"), nullptr);
  EXPECT_TRUE(absl::IsResourceExhausted(b.status())) << b.status();
  auto c = m.Acquire(Info("/spool/bob", "bob"), nullptr);
  EXPECT_TRUE(c.ok());
  EXPECT_NE(a->session_id, c->session_id);
  EXPECT_EQ(m.size(), 2u);
  m.Release(a->session_id);
  EXPECT_FALSE(m.IsLeased("/spool/alice"));
  EXPECT_TRUE(m.Acquire(Info("/spool/alice"), nullptr).ok());
  m.Release("no-such-session");  // harmless
  EXPECT_EQ(m.size(), 2u);
}

TEST(LeaseManager, RevokeAsksTheSessionAndKeepsTheLeaseUntilRelease) {
  LeaseManager m;
  int revoked = 0;
  auto a = m.Acquire(Info("/spool/alice"), [&] { ++revoked; });
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(m.Revoke(a->session_id).ok());
  EXPECT_EQ(revoked, 1);
  EXPECT_TRUE(m.IsLeased("/spool/alice"));  // until the stream really ends
  m.Release(a->session_id);
  EXPECT_TRUE(absl::IsNotFound(m.Revoke(a->session_id)));
}

TEST(LeaseManager, ListShowsSessions) {
  LeaseManager m;
  auto a = m.Acquire(Info("/spool/alice"), nullptr);
  auto b = m.Acquire(Info("/spool/bob", "bob"), nullptr);
  auto list = m.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].user, "alice");
  EXPECT_EQ(list[0].client_address, "192.0.2.1");
  EXPECT_EQ(list[1].user, "bob");
}

TEST(LeaseManager, ExactlyOneWinnerUnderContention) {
  LeaseManager m;
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto l = m.Acquire(Info("/spool/shared"), nullptr);
        if (l.ok()) {
          EXPECT_EQ(winners.fetch_add(1) + 1, 1);  // nobody else holds it right now
          winners.fetch_sub(1);
          m.Release(l->session_id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.size(), 0u);
}

// ---- waiting for a holder that may be ending (AcquireAsync) ----

// One AcquireAsync's outcome, as its completion delivered it.
struct Outcome {
  absl::Notification done;
  absl::StatusOr<LeaseInfo> lease = absl::UnknownError("not yet");
  std::thread::id thread;
  LeaseManager::AcquireDone Done() {
    return [this](absl::StatusOr<LeaseInfo> l) {
      lease = std::move(l);
      thread = std::this_thread::get_id();
      done.Notify();
    };
  }
  bool WaitFor(absl::Duration d) { return done.WaitForNotificationWithTimeout(d); }
};

// A holder whose check hook answers `answer` and counts the questions.
struct Holder {
  explicit Holder(Liveness a) : answer(a) {}
  Liveness answer;
  std::atomic<int> asked{0};
  std::string asked_about;
  LeaseHooks Hooks() {
    LeaseHooks h;
    h.check = [this](const std::string& id) {
      asked_about = id;
      ++asked;
      return answer;
    };
    return h;
  }
};

TEST(LeaseManagerWait, AWaiterIsWokenByTheReleaseAndGetsTheLease) {
  LeaseManager m;
  Holder holder{Liveness::kEnding};
  auto a = m.Acquire(Info("/spool/alice"), holder.Hooks());
  ASSERT_TRUE(a.ok());
  Outcome b;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), b.Done());
  // Returned without an answer and without a thread waiting: the login is a queue entry.
  EXPECT_FALSE(b.done.HasBeenNotified());
  EXPECT_EQ(m.waiting(), 1u);
  EXPECT_EQ(holder.asked, 1);
  EXPECT_EQ(holder.asked_about, a->session_id);
  m.Release(a->session_id);
  ASSERT_TRUE(b.WaitFor(absl::Seconds(10)));
  ASSERT_TRUE(b.lease.ok()) << b.lease.status();
  EXPECT_NE(b.lease->session_id, a->session_id);
  // Granted in the release's step, completed on the manager's thread, not the releaser's.
  EXPECT_NE(b.thread, std::this_thread::get_id());
  EXPECT_TRUE(m.IsLeased("/spool/alice"));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.waiting(), 0u);
}

TEST(LeaseManagerWait, AWaiterGetsInUseAsSoonAsTheHolderAnswersAlive) {
  LeaseManager m;
  Holder holder{Liveness::kAsked};
  auto a = m.Acquire(Info("/spool/alice"), holder.Hooks());
  ASSERT_TRUE(a.ok());
  const absl::Time start = absl::Now();
  Outcome b, c;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), b.Done());
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), c.Done());
  EXPECT_EQ(holder.asked, 1);  // one probe answers every waiter of that holder
  EXPECT_EQ(m.waiting(), 2u);
  m.Alive("no-such-session");  // harmless
  EXPECT_FALSE(b.done.HasBeenNotified());
  m.Alive(a->session_id);
  ASSERT_TRUE(b.WaitFor(absl::Seconds(10)));
  ASSERT_TRUE(c.WaitFor(absl::Seconds(10)));
  EXPECT_TRUE(absl::IsResourceExhausted(b.lease.status())) << b.lease.status();
  EXPECT_TRUE(absl::IsResourceExhausted(c.lease.status())) << c.lease.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // nowhere near the 30 s bound
  EXPECT_TRUE(m.IsLeased("/spool/alice"));
  // The holder may end later: the next login asks again.
  Outcome d;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), d.Done());
  EXPECT_EQ(holder.asked, 2);
  m.Release(a->session_id);
  ASSERT_TRUE(d.WaitFor(absl::Seconds(10)));
  EXPECT_TRUE(d.lease.ok()) << d.lease.status();
}

TEST(LeaseManagerWait, AHolderThatIsAliveOrCannotBeAskedGivesInUseAtOnce) {
  struct Case {
    const char* name;
    bool hook;
    Liveness answer;
    absl::Duration wait;
    bool inline_answer;  // answered before AcquireAsync returns
  };
  for (const Case& c :
       {Case{"no hook (old front-end)", false, Liveness::kEnding, absl::Seconds(30), true},
        Case{"no waiting configured", true, Liveness::kEnding, absl::ZeroDuration(), true},
        Case{"the hook knows it is alive", true, Liveness::kAlive, absl::Seconds(30), false}}) {
    SCOPED_TRACE(c.name);
    LeaseManager m;
    Holder holder{c.answer};
    auto a = m.Acquire(Info("/spool/alice"), c.hook ? holder.Hooks() : LeaseHooks{});
    ASSERT_TRUE(a.ok());
    const absl::Time start = absl::Now();
    Outcome b;
    m.AcquireAsync(Info("/spool/alice"), {}, c.wait, b.Done());
    if (c.inline_answer) {
      EXPECT_TRUE(b.done.HasBeenNotified());
    }
    ASSERT_TRUE(b.WaitFor(absl::Seconds(10)));
    EXPECT_TRUE(absl::IsResourceExhausted(b.lease.status())) << b.lease.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    EXPECT_EQ(m.waiting(), 0u);
  }
}

TEST(LeaseManagerWait, TheWaitIsBounded) {
  LeaseManager m;
  Holder holder{Liveness::kAsked};  // a probe nobody answers (an old front-end, a hung one)
  auto a = m.Acquire(Info("/spool/alice"), holder.Hooks());
  ASSERT_TRUE(a.ok());
  const absl::Time start = absl::Now();
  Outcome b;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Milliseconds(200), b.Done());
  ASSERT_TRUE(b.WaitFor(absl::Seconds(10)));
  const absl::Duration waited = absl::Now() - start;
  EXPECT_TRUE(absl::IsResourceExhausted(b.lease.status())) << b.lease.status();
  EXPECT_GE(waited, absl::Milliseconds(200));
  EXPECT_LT(waited, absl::Seconds(5));
  EXPECT_EQ(m.waiting(), 0u);
  EXPECT_TRUE(m.IsLeased("/spool/alice"));
  // After the timeout the holder is asked again by the next login.
  Outcome c;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Milliseconds(50), c.Done());
  EXPECT_EQ(holder.asked, 2);
  ASSERT_TRUE(c.WaitFor(absl::Seconds(10)));
}

TEST(LeaseManagerWait, AWaitingLoginHoldsUpNoOtherMailbox) {
  LeaseManager m;
  Holder holder{Liveness::kEnding};
  auto a = m.Acquire(Info("/spool/alice"), holder.Hooks());
  ASSERT_TRUE(a.ok());
  Outcome waiting;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), waiting.Done());
  // Other users' logins, inline or waiting, go through meanwhile, on this very thread.
  Outcome bob;
  m.AcquireAsync(Info("/spool/bob", "bob"), {}, absl::Seconds(30), bob.Done());
  ASSERT_TRUE(bob.done.HasBeenNotified());
  ASSERT_TRUE(bob.lease.ok());
  m.Release(bob.lease->session_id);
  EXPECT_FALSE(waiting.done.HasBeenNotified());
  // The second of two waiters faces the first, which got the lease and is alive: [IN-USE].
  Outcome second;
  m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), second.Done());
  EXPECT_EQ(holder.asked, 1);
  m.Release(a->session_id);
  ASSERT_TRUE(waiting.WaitFor(absl::Seconds(10)));
  ASSERT_TRUE(second.WaitFor(absl::Seconds(10)));
  EXPECT_TRUE(waiting.lease.ok()) << waiting.lease.status();
  EXPECT_TRUE(absl::IsResourceExhausted(second.lease.status())) << second.lease.status();
}

TEST(LeaseManagerWait, ShutdownEndsTheWaiters) {
  Outcome b;
  {
    LeaseManager m;
    Holder holder{Liveness::kEnding};
    ASSERT_TRUE(m.Acquire(Info("/spool/alice"), holder.Hooks()).ok());
    m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), b.Done());
    m.Shutdown();
    EXPECT_TRUE(b.done.HasBeenNotified());
    Outcome late;
    m.AcquireAsync(Info("/spool/alice"), {}, absl::Seconds(30), late.Done());
    EXPECT_TRUE(absl::IsUnavailable(late.lease.status())) << late.lease.status();
  }
  EXPECT_TRUE(absl::IsUnavailable(b.lease.status())) << b.lease.status();
}

}  // namespace
}  // namespace poplar::indexer
