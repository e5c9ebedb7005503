// The one IP address type (common/net/ip_address.h) that popd and the PROXY header parser share:
// parse/format of both families, v4-mapped normalisation, loopback, prefix match. Table-driven.
#include "common/net/ip_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace poplar::net {
namespace {

TEST(IpAddress, ParseAndFormatTable) {
  struct Case {
    std::string_view name;
    std::string_view text;
    bool ok;
    bool v4 = false;
    std::string_view canonical = "";
  };
  const Case kCases[] = {
      {"v4", "192.0.2.1", true, true, "192.0.2.1"},
      {"v4_any", "0.0.0.0", true, true, "0.0.0.0"},
      {"v6_loopback", "::1", true, false, "::1"},
      {"v6_long_form", "2001:0db8:0:0:0:0:0:1", true, false, "2001:db8::1"},
      {"v6_upper", "2001:DB8::A", true, false, "2001:db8::a"},
      // Text keeps its family: a mapped address written as IPv6 stays IPv6 until Unmapped().
      {"v4_mapped_text", "::ffff:192.0.2.1", true, false, "::ffff:192.0.2.1"},
      {"empty", "", false},
      {"name", "localhost", false},
      {"v4_short", "192.0.2", false},
      {"v4_octet_too_big", "192.0.2.256", false},
      {"v4_leading_zero", "192.0.2.01", false},
      {"bracketed", "[::1]", false},
      {"with_port", "192.0.2.1:110", false},
      {"zone", "fe80::1%eth0", false},
      {"too_long", std::string_view("0000:0000:0000:0000:0000:0000:0000:0000:0000:0000"), false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<IpAddress> a = IpAddress::Parse(c.text);
    ASSERT_EQ(a.ok(), c.ok) << a.status();
    if (!a.ok()) continue;
    EXPECT_EQ(a->is_v4(), c.v4);
    EXPECT_EQ(a->ToString(), c.canonical);
  }
}

TEST(IpAddress, OneFamilyParsers) {
  EXPECT_TRUE(IpAddress::ParseV4("198.51.100.1").has_value());
  EXPECT_FALSE(IpAddress::ParseV4("2001:db8::1").has_value());
  EXPECT_TRUE(IpAddress::ParseV6("2001:db8::1").has_value());
  EXPECT_FALSE(IpAddress::ParseV6("198.51.100.1").has_value());
  // Both forms of an IPv4 address share the 16-byte key (per-IP caps count them together).
  EXPECT_EQ(IpAddress::ParseV4("198.51.100.1")->bytes(),
            IpAddress::ParseV6("::ffff:198.51.100.1")->bytes());
}

TEST(IpAddress, UnmappedNormalisesOnlyMappedAddresses) {
  const IpAddress mapped = *IpAddress::ParseV6("::ffff:127.0.0.1");
  EXPECT_FALSE(mapped.is_v4());
  EXPECT_FALSE(mapped.IsLoopback());  // the indexer's TCP rule refuses it as written
  const IpAddress v4 = mapped.Unmapped();
  EXPECT_TRUE(v4.is_v4());
  EXPECT_EQ(v4.ToString(), "127.0.0.1");
  EXPECT_TRUE(v4.IsLoopback());
  EXPECT_EQ(v4, *IpAddress::ParseV4("127.0.0.1"));
  const IpAddress v6 = *IpAddress::ParseV6("2001:db8::1");
  EXPECT_EQ(v6.Unmapped(), v6);
  // IPv4-compatible (::a.b.c.d, deprecated) is not mapped.
  EXPECT_FALSE(IpAddress::ParseV6("::127.0.0.1")->Unmapped().is_v4());
}

TEST(IpAddress, LoopbackTable) {
  for (std::string_view yes : {"127.0.0.1", "127.255.255.254", "::1"}) {
    EXPECT_TRUE(IpAddress::Parse(yes)->IsLoopback()) << yes;
  }
  for (std::string_view no : {"128.0.0.1", "0.0.0.0", "::", "::2", "::ffff:127.0.0.1"}) {
    EXPECT_FALSE(IpAddress::Parse(no)->IsLoopback()) << no;
  }
}

TEST(IpAddress, RawBytesAndSockaddrs) {
  const uint8_t v4[4] = {192, 0, 2, 9};
  const IpAddress a = IpAddress::FromV4(v4);
  EXPECT_EQ(a.ToString(), "192.0.2.9");
  sockaddr_storage sa{};
  ASSERT_EQ(a.ToSockaddr(110, &sa), sizeof(sockaddr_in));
  EXPECT_EQ(sa.ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&sa)->sin_port), 110);
  EXPECT_EQ(IpAddress::FromSockaddr(sa), a);

  const IpAddress b = *IpAddress::ParseV6("2001:db8::7");
  ASSERT_EQ(b.ToSockaddr(995, &sa), sizeof(sockaddr_in6));
  EXPECT_EQ(sa.ss_family, AF_INET6);
  EXPECT_EQ(IpAddress::FromSockaddr(sa), b);
  EXPECT_EQ(IpAddress::FromV6(b.bytes().data()), b);

  // A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d: FromSockaddr unmaps it.
  const IpAddress mapped = *IpAddress::ParseV6("::ffff:192.0.2.9");
  mapped.ToSockaddr(1, &sa);
  EXPECT_EQ(IpAddress::FromSockaddr(sa), a);

  sockaddr_storage unix_sa{};
  unix_sa.ss_family = AF_UNIX;
  EXPECT_EQ(IpAddress::FromSockaddr(unix_sa), IpAddress());
}

TEST(Network, ParseTable) {
  struct Case {
    std::string_view text;
    bool ok;
    int prefix = 0;
  };
  const Case kCases[] = {
      {"10.0.0.0/8", true, 8},   {"10.1.2.3", true, 32},      {"::1", true, 128},
      {"0.0.0.0/0", true, 0},    {"2001:db8::/32", true, 32}, {"10.0.0.1/8", false},
      {"10.0.0.0/33", false},    {"::/129", false},           {"10.0.0.0/", false},
      {"10.0.0.0/+8", false},    {"10.0.0.0/08x", false},     {"example.org", false},
      {"2001:db8::1/32", false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<Network> n = Network::Parse(c.text);
    ASSERT_EQ(n.ok(), c.ok) << n.status();
    if (n.ok()) {
      EXPECT_EQ(n->prefix, c.prefix);
    }
  }
}

TEST(Network, ContainsTable) {
  struct Case {
    std::string_view network;
    std::string_view address;
    bool inside;
  };
  const Case kCases[] = {
      {"127.0.0.0/8", "127.0.0.1", true},
      {"127.0.0.0/8", "128.0.0.1", false},
      {"192.168.0.0/23", "192.168.1.200", true},
      {"192.168.0.0/23", "192.168.2.1", false},
      {"0.0.0.0/0", "192.0.2.1", true},
      {"0.0.0.0/0", "::1", false},  // families never mix
      {"::/0", "192.0.2.1", false},
      {"::1/128", "::1", true},
      {"2001:db8::/32", "2001:db8:ffff::1", true},
      {"2001:db8::/32", "2001:db9::1", false},
      {"10.0.0.0/8", "::ffff:10.0.0.1", false},  // as written: IPv6
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(c.network) + " " + std::string(c.address));
    absl::StatusOr<Network> n = Network::Parse(c.network);
    ASSERT_TRUE(n.ok());
    absl::StatusOr<IpAddress> a = IpAddress::Parse(c.address);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(n->Contains(*a), c.inside);
  }
  // ... and an IPv4 client once normalised.
  EXPECT_TRUE(
      Network::Parse("10.0.0.0/8")->Contains(IpAddress::Parse("::ffff:10.0.0.1")->Unmapped()));
}

}  // namespace
}  // namespace poplar::net
