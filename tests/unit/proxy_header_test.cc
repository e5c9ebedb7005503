// common/proxy: the PROXY protocol header, v1 and v2, table-driven (spec:
// haproxy.org/download/2.8/doc/proxy-protocol.txt), plus every prefix of a valid header being
// kNeedMore and the client's bytes after it left alone.
#include "common/proxy/proxy_header.h"

#include <arpa/inet.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace poplar::proxy {
namespace {

std::string V2(uint8_t ver_cmd, uint8_t fam, const std::string& payload) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(fam));
  h.push_back(static_cast<char>(payload.size() >> 8));
  h.push_back(static_cast<char>(payload.size() & 0xff));
  return h + payload;
}

std::string V4Payload() {  // 192.0.2.7:54321 -> 198.51.100.1:110
  return std::string("\xc0\x00\x02\x07\xc6\x33\x64\x01\xd4\x31\x00\x6e", 12);
}

std::string V6Payload() {  // 2001:db8::7:40000 -> 2001:db8::1:995
  std::string p(36, '\0');
  inet_pton(AF_INET6, "2001:db8::7", p.data());
  inet_pton(AF_INET6, "2001:db8::1", p.data() + 16);
  p[32] = '\x9c';
  p[33] = '\x40';
  p[34] = '\x03';
  p[35] = '\xe3';
  return p;
}

std::string Ip(const Address& a) { return a.ip.ToString(); }

struct Case {
  const char* name;
  std::string bytes;
  ParseStatus want;
  int version = 0;
  bool has_address = false;
  std::string source = "";  // "ip:port"
  std::string destination = "";
  size_t length = 0;
};

TEST(ProxyHeader, Table) {
  const std::string tlv = std::string("\x04\x00\x03xyz", 6);  // a NOOP TLV
  const std::vector<Case> cases = {
      {"v1 tcp4", "PROXY TCP4 192.0.2.7 198.51.100.1 54321 110\r\n", ParseStatus::kComplete, 1,
       true, "192.0.2.7:54321", "198.51.100.1:110", 45},
      {"v1 tcp4 with client bytes after", "PROXY TCP4 192.0.2.7 198.51.100.1 54321 110\r\nCAPA\r\n",
       ParseStatus::kComplete, 1, true, "192.0.2.7:54321", "198.51.100.1:110", 45},
      {"v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 40000 995\r\n", ParseStatus::kComplete, 1,
       true, "2001:db8::7:40000", "2001:db8::1:995", 46},
      {"v1 unknown", "PROXY UNKNOWN\r\n", ParseStatus::kComplete, 1, false, "", "", 15},
      {"v1 unknown with addresses", "PROXY UNKNOWN ffff:f...f 0 0\r\n", ParseStatus::kComplete, 1,
       false, "", "", 30},
      {"v1 port 0 and 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 0 65535\r\n", ParseStatus::kComplete, 1,
       true, "1.2.3.4:0", "5.6.7.8:65535", 36},
      {"v1 partial", "PROXY TCP4 192.0.2.7 198.5", ParseStatus::kNeedMore},
      {"v1 cr without lf yet", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", ParseStatus::kNeedMore},
      {"v1 prefix", "PRO", ParseStatus::kNeedMore},
      {"v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", ParseStatus::kInvalid},
      {"v1 leading zero port", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", ParseStatus::kInvalid},
      {"v1 v6 address as TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n", ParseStatus::kInvalid},
      {"v1 v4 address as TCP6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", ParseStatus::kInvalid},
      {"v1 double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", ParseStatus::kInvalid},
      {"v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", ParseStatus::kInvalid},
      {"v1 six fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", ParseStatus::kInvalid},
      {"v1 four fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ParseStatus::kInvalid},
      {"v1 udp", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", ParseStatus::kInvalid},
      {"v1 bare lf", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ParseStatus::kInvalid},
      {"v1 lowercase", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ParseStatus::kInvalid},
      {"v1 too long", "PROXY UNKNOWN " + std::string(100, 'x'), ParseStatus::kInvalid},
      {"v1 nul", std::string("PROXY TCP4 1.2.3.4\0", 19), ParseStatus::kInvalid},
      {"pop3 command", "USER alice\r\n", ParseStatus::kInvalid},
      {"tls client hello", std::string("\x16\x03\x01\x02\x00", 5), ParseStatus::kInvalid},
      {"empty", "", ParseStatus::kNeedMore},
      {"v2 tcp4", V2(0x21, 0x11, V4Payload()), ParseStatus::kComplete, 2, true, "192.0.2.7:54321",
       "198.51.100.1:110", 28},
      {"v2 tcp4 with tlvs and client bytes", V2(0x21, 0x11, V4Payload() + tlv) + "\x16\x03\x01",
       ParseStatus::kComplete, 2, true, "192.0.2.7:54321", "198.51.100.1:110", 34},
      {"v2 tcp6", V2(0x21, 0x21, V6Payload()), ParseStatus::kComplete, 2, true, "2001:db8::7:40000",
       "2001:db8::1:995", 52},
      {"v2 local", V2(0x20, 0x00, ""), ParseStatus::kComplete, 2, false, "", "", 16},
      {"v2 local with addresses", V2(0x20, 0x11, V4Payload()), ParseStatus::kComplete, 2, false, "",
       "", 28},
      {"v2 unspec", V2(0x21, 0x00, ""), ParseStatus::kComplete, 2, false, "", "", 16},
      {"v2 signature prefix", std::string("\r\n\r\n\0\r", 6), ParseStatus::kNeedMore},
      {"v2 payload pending", V2(0x21, 0x11, V4Payload()).substr(0, 20), ParseStatus::kNeedMore},
      {"v2 udp4", V2(0x21, 0x12, V4Payload()), ParseStatus::kInvalid},
      {"v2 unix", V2(0x21, 0x31, std::string(216, 'a')), ParseStatus::kInvalid},
      {"v2 version 1", V2(0x11, 0x11, V4Payload()), ParseStatus::kInvalid},
      {"v2 command 2", V2(0x22, 0x11, V4Payload()), ParseStatus::kInvalid},
      {"v2 ipv4 truncated", V2(0x21, 0x11, V4Payload().substr(0, 11)), ParseStatus::kInvalid},
      {"v2 ipv6 truncated", V2(0x21, 0x21, V6Payload().substr(0, 35)), ParseStatus::kInvalid},
      {"v2 too long", V2(0x21, 0x11, std::string(kMaxV2Payload + 1, 'a')).substr(0, 16),
       ParseStatus::kInvalid},
      {"v2 bad signature", std::string("\r\n\r\n\0\r\nQUIT\r", 12), ParseStatus::kInvalid},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ParseResult r = Parse(c.bytes);
    ASSERT_EQ(r.status, c.want) << r.error;
    if (c.want == ParseStatus::kInvalid) {
      EXPECT_FALSE(r.error.empty());
      continue;
    }
    if (c.want != ParseStatus::kComplete) continue;
    EXPECT_EQ(r.header.version, c.version);
    EXPECT_EQ(r.header.length, c.length);
    EXPECT_EQ(r.header.has_address, c.has_address);
    if (c.has_address) {
      EXPECT_EQ(Ip(r.header.source) + ":" + std::to_string(r.header.source.port), c.source);
      EXPECT_EQ(Ip(r.header.destination) + ":" + std::to_string(r.header.destination.port),
                c.destination);
    }
  }
}

TEST(ProxyHeader, EveryPrefixOfAHeaderNeedsMore) {
  for (const std::string& h : {std::string("PROXY TCP6 2001:db8::7 2001:db8::1 40000 995\r\n"),
                               V2(0x21, 0x21, V6Payload() + std::string("\x04\x00\x01z", 4))}) {
    for (size_t n = 0; n < h.size(); ++n) {
      SCOPED_TRACE(n);
      EXPECT_EQ(Parse(h.substr(0, n)).status, ParseStatus::kNeedMore);
    }
    ParseResult whole = Parse(h);
    ASSERT_EQ(whole.status, ParseStatus::kComplete);
    EXPECT_EQ(whole.header.length, h.size());
  }
}

}  // namespace
}  // namespace poplar::proxy

namespace poplar::proxy {
namespace {

// The header carries the address as sent (net::IpAddress); a v4 client behind a dual-stack
// balancer arrives in an INET6 block as ::ffff:a.b.c.d, and Unmapped() (what popd applies) makes
// it the IPv4 client it is.
TEST(ProxyHeader, MappedV6SourceIsAnIpv4ClientOnceUnmapped) {
  std::string p(36, '\0');
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:192.0.2.7", p.data()), 1);
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", p.data() + 16), 1);
  p[33] = 110;
  p[35] = 110;
  const ParseResult r = Parse(V2(0x21, 0x21, p));
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.error;
  ASSERT_TRUE(r.header.has_address);
  EXPECT_FALSE(r.header.source.ip.is_v4());
  EXPECT_EQ(r.header.source.ip.Unmapped().ToString(), "192.0.2.7");
  EXPECT_TRUE(r.header.source.ip.Unmapped().is_v4());
  EXPECT_EQ(r.header.source.ip.Unmapped(), *net::IpAddress::ParseV4("192.0.2.7"));
  const ParseResult v1 = Parse("PROXY TCP4 192.0.2.7 198.51.100.1 54321 110\r\n");
  ASSERT_EQ(v1.status, ParseStatus::kComplete);
  EXPECT_EQ(v1.header.source.ip, r.header.source.ip.Unmapped());
}

}  // namespace
}  // namespace poplar::proxy
