#include "indexer/lease_manager.h"

#include <atomic>
#include <thread>
#include <vector>

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

}  // namespace
}  // namespace poplar::indexer
