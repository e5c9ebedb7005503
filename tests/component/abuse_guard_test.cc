// popd's abuse limits: connections per address, failed logins per address and per name in a
// sliding window, bounded memory. The clock is passed in: no sleeping.
#include "popd/abuse_guard.h"

#include <string>

#include "gtest/gtest.h"

namespace poplar::popd {
namespace {

using Clock = AbuseGuard::Clock;
using std::chrono::seconds;

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

AbuseGuard::Limits Small() {
  AbuseGuard::Limits l;
  l.max_connections_per_ip = 3;
  l.max_failures_per_ip = 5;
  l.max_failures_per_user = 8;
  l.window = seconds(60);
  return l;
}

TEST(AbuseGuard, ConnectionsPerAddressAreCapped) {
  AbuseGuard g(Small());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(g.Connected(Ip("192.0.2.1")));
  EXPECT_FALSE(g.Connected(Ip("192.0.2.1")));
  EXPECT_TRUE(g.Connected(Ip("192.0.2.2")));  // another address is not affected
  EXPECT_TRUE(g.Connected(Ip("::ffff:192.0.2.9")));
  g.Disconnected(Ip("192.0.2.1"));
  EXPECT_TRUE(g.Connected(Ip("192.0.2.1")));  // a slot freed
  EXPECT_FALSE(g.Connected(Ip("192.0.2.1")));
}

TEST(AbuseGuard, FailuresPerAddressBlockThenExpire) {
  AbuseGuard g(Small());
  const Clock::time_point t0 = Clock::now();
  const IpAddress bad = Ip("198.51.100.7");
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(g.LoginAllowed(bad, "user" + std::to_string(i), t0 + seconds(i))) << i;
    g.LoginFailed(bad, "user" + std::to_string(i), t0 + seconds(i));
  }
  // Refused for any name, even one never tried; other addresses are fine.
  EXPECT_FALSE(g.LoginAllowed(bad, "alice", t0 + seconds(10)));
  EXPECT_TRUE(g.LoginAllowed(Ip("198.51.100.8"), "alice", t0 + seconds(10)));
  // The window slides: after the first failure is 60 s old, one more try is allowed.
  EXPECT_FALSE(g.LoginAllowed(bad, "alice", t0 + seconds(59)));
  EXPECT_TRUE(g.LoginAllowed(bad, "alice", t0 + seconds(60)));
  EXPECT_TRUE(g.LoginAllowed(bad, "alice", t0 + seconds(200)));
}

TEST(AbuseGuard, FailuresPerUserBlockFromEveryAddress) {
  AbuseGuard g(Small());
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 8; ++i) {
    const IpAddress from = Ip(("203.0.113." + std::to_string(i + 1)).c_str());
    g.LoginFailed(from, "alice", t0);
  }
  EXPECT_FALSE(g.LoginAllowed(Ip("203.0.113.200"), "alice", t0 + seconds(1)));
  EXPECT_TRUE(g.LoginAllowed(Ip("203.0.113.200"), "bob", t0 + seconds(1)));
  EXPECT_TRUE(g.LoginAllowed(Ip("203.0.113.200"), "alice", t0 + seconds(61)));
}

TEST(AbuseGuard, MemoryStaysBounded) {
  AbuseGuard::Limits l = Small();
  l.max_tracked = 100;
  AbuseGuard g(l);
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < 5000; ++i) {
    const std::string ip = "10." + std::to_string(i / 65536 % 256) + "." +
                           std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
    g.LoginFailed(Ip(ip.c_str()), "name" + std::to_string(i), t0);
    EXPECT_LE(g.tracked(), 100u);
  }
  // Open connections are never forgotten by the trimming.
  AbuseGuard g2(l);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(g2.Connected(Ip("192.0.2.50")));
  for (int i = 0; i < 500; ++i)
    g2.LoginFailed(Ip(("10.1.1." + std::to_string(i % 250)).c_str()), "n" + std::to_string(i), t0);
  EXPECT_FALSE(g2.Connected(Ip("192.0.2.50")));
}

TEST(AbuseGuard, NewLimitsApply) {
  AbuseGuard g(Small());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(g.Connected(Ip("192.0.2.1")));
  EXPECT_FALSE(g.Connected(Ip("192.0.2.1")));
  AbuseGuard::Limits more = Small();
  more.max_connections_per_ip = 4;
  g.set_limits(more);
  EXPECT_TRUE(g.Connected(Ip("192.0.2.1")));
}

}  // namespace
}  // namespace poplar::popd
