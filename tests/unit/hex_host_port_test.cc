// The one hex codec (common/util/hex.h) and the one HOST:PORT parser (common/util/host_port.h):
// table-driven.
#include <optional>
#include <string>
#include <string_view>

#include "common/util/hash.h"
#include "common/util/hex.h"
#include "common/util/host_port.h"
#include "gtest/gtest.h"

namespace poplar {
namespace {

TEST(Hex, EncodeDecodeTable) {
  struct Case {
    std::string_view name;
    std::string bytes;
    std::string_view hex;
  };
  const Case kCases[] = {
      {"empty", "", ""},
      {"nul", std::string(1, '\0'), "00"},
      {"every_nibble", "\x01\x23\x45\x67\x89\xab\xcd\xef", "0123456789abcdef"},
      {"high_bytes", "\xff\x80\x7f", "ff807f"},
      {"text", "Poplar", "506f706c6172"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(HexEncode(c.bytes), c.hex);
    EXPECT_EQ(HexDecode(c.hex), std::optional<std::string>(c.bytes));
  }
}

TEST(Hex, DecodeRefusesWhatIsNotHex) {
  struct Case {
    std::string_view name;
    std::string_view hex;
    std::optional<std::string> want;
  };
  const Case kCases[] = {
      {"uppercase_accepted", "ABcd", std::string("\xab\xcd")},
      {"odd_length", "abc", std::nullopt},
      {"non_digit", "0g", std::nullopt},
      {"space", "0 ", std::nullopt},
      {"prefix", "0x01", std::nullopt},
      {"sign", "+1", std::nullopt},
      {"nul", std::string_view("0\0", 2), std::nullopt},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(HexDecode(c.hex), c.want);
  }
}

TEST(Hex, DigitValues) {
  EXPECT_EQ(HexDigitValue('0'), 0);
  EXPECT_EQ(HexDigitValue('9'), 9);
  EXPECT_EQ(HexDigitValue('a'), 10);
  EXPECT_EQ(HexDigitValue('F'), 15);
  EXPECT_EQ(HexDigitValue('g'), -1);
  EXPECT_EQ(HexDigitValue('/'), -1);
}

TEST(Hex, Hash128UsesTheSameCodec) {
  const Hash128 h{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  EXPECT_EQ(h.Hex(), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(h.Hex(), HexEncode(h.Bytes()));
  Hash128 back;
  ASSERT_TRUE(Hash128::FromHex("0123456789ABCDEFfedcba9876543210", &back));
  EXPECT_EQ(back, h);
  EXPECT_FALSE(Hash128::FromHex("0123456789abcdeffedcba987654321", &back));    // 31 digits
  EXPECT_FALSE(Hash128::FromHex("0123456789abcdeffedcba987654321x", &back));   // not hex
  EXPECT_FALSE(Hash128::FromHex("0123456789abcdeffedcba98765432100", &back));  // 33 digits
}

TEST(HostPort, SplitTable) {
  struct Case {
    std::string_view name;
    std::string_view text;
    bool ok;
    std::string_view host = "";
    uint16_t port = 0;
  };
  const Case kCases[] = {
      {"v4", "127.0.0.1:110", true, "127.0.0.1", 110},
      {"name", "mail.example.org:995", true, "mail.example.org", 995},
      {"port_zero", "0.0.0.0:0", true, "0.0.0.0", 0},
      {"port_max", "h:65535", true, "h", 65535},
      {"v6", "[::1]:995", true, "::1", 995},
      {"v6_any", "[::]:110", true, "::", 110},
      {"bracketed_name", "[localhost]:1", true, "localhost", 1},
      {"leading_zeros", "h:00110", true, "h", 110},
      {"empty", "", false},
      {"no_port", "127.0.0.1", false},
      {"empty_port", "127.0.0.1:", false},
      {"empty_host", ":110", false},
      {"port_too_big", "h:65536", false},
      {"port_six_digits", "h:000001", false},
      {"signed_port", "h:+5", false},
      {"negative_port", "h:-1", false},
      {"space_in_port", "h: 5", false},
      {"port_name", "h:pop3", false},
      {"v6_unbracketed", "::1:110", false},
      {"v6_no_port", "[::1]", false},
      {"v6_no_colon", "[::1]995", false},
      {"v6_empty", "[]:110", false},
      {"v6_unclosed", "[::1:110", false},
      {"two_colons", "a:b:1", false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const std::optional<HostPort> hp = SplitHostPort(c.text);
    ASSERT_EQ(hp.has_value(), c.ok);
    if (!hp) continue;
    EXPECT_EQ(hp->host, c.host);
    EXPECT_EQ(hp->port, c.port);
  }
}

TEST(HostPort, JoinBracketsIpv6AndRoundTrips) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 110), "127.0.0.1:110");
  EXPECT_EQ(JoinHostPort("mail.example.org", 995), "mail.example.org:995");
  EXPECT_EQ(JoinHostPort("::1", 995), "[::1]:995");
  EXPECT_EQ(JoinHostPort("2001:db8::1", 0), "[2001:db8::1]:0");
  for (std::string_view text : {"127.0.0.1:110", "[::1]:995", "h:0", "[2001:db8::1]:65535"}) {
    SCOPED_TRACE(text);
    const std::optional<HostPort> hp = SplitHostPort(text);
    ASSERT_TRUE(hp.has_value());
    EXPECT_EQ(JoinHostPort(hp->host, hp->port), text);
  }
}

}  // namespace
}  // namespace poplar
