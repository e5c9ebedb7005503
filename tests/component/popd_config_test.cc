// poplar-popd's configuration (schema, validation, settings) and its address/network parsing.
#include "popd/popd_config.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/config/textproto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "popd/net.h"

namespace poplar::popd {
namespace {

using ::testing::HasSubstr;

config::PopdConfig Parse(const std::string& text) {
  config::PopdConfig c;
  absl::Status s = config::ParseTextProto(text, "test", &c);
  EXPECT_TRUE(s.ok()) << s;
  return c;
}

TEST(PopdConfig, DefaultsAreValidAndSafe) {
  const config::PopdConfig c = Parse("");
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  EXPECT_EQ(c.listen().address(), "127.0.0.1:110");
  EXPECT_EQ(c.indexer().target(), "unix:/run/poplar/indexer.sock");
  EXPECT_EQ(c.limits().autologout_s(), 600u);
  const Settings s = MakeSettings(c, "popd@test:1");
  EXPECT_EQ(s.front_end_name, "popd@test:1");
  // No network listed: plaintext logins are refused from everywhere, loopback included.
  EXPECT_FALSE(s.PlaintextAllowedFrom(*IpAddress::Parse("127.0.0.1")));
  EXPECT_EQ(s.autologout.count(), 600);
}

TEST(PopdConfig, EveryBadValueIsReportedAtOnce) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {R"(listen { address: "localhost:110" })", "listen.address"},
      {R"(listen { address: "127.0.0.1:70000" })", "listen.address"},
      {R"(listen { address: "127.0.0.1" })", "listen.address"},
      {R"(indexer { target: "unix:relative.sock" })", "indexer.target"},
      {R"(indexer { target: "host" })", "indexer.target"},
      // The one host:port rule (common/util/host_port.h): a port over 65535 and an unbracketed
      // IPv6 host were accepted here before.
      {R"(indexer { target: "indexer.example:70000" })", "indexer.target"},
      {R"(indexer { target: "::1:7070" })", "indexer.target"},
      {R"(indexer { login_timeout_ms: 10 })", "login_timeout_ms"},
      {R"(indexer { commit_timeout_ms: 10 })", "commit_timeout_ms"},
      {R"(limits { autologout_s: 599 })", "at least 600"},
      {R"(limits { preauth_timeout_s: 1 })", "preauth_timeout_s"},
      {R"(limits { max_bad_commands: 0 })", "max_bad_commands"},
      {R"(limits { output_high_water_bytes: 10 })", "output_high_water_bytes"},
      {R"(limits { max_connections: 0 })", "max_connections"},
      {R"(threads: 1000)", "threads"},
      {R"(plaintext_auth_networks: "10.0.0.1/8")", "host bits"},
      {R"(plaintext_auth_networks: "10.0.0.0/33")", "prefix"},
      {R"(plaintext_auth_networks: "example.org")", "plaintext_auth_networks[0]"},
      {R"(listen { implicit_tls_address: "127.0.0.1:995" })", "needs a tls"},
      {R"(listen { implicit_tls_address: "127.0.0.1" } tls { certificate_chain_file: "/c" private_key_file: "/k" })",
       "implicit_tls_address"},
      {R"(tls { private_key_file: "/k" })", "certificate_chain_file"},
      {R"(tls { certificate_chain_file: "c.pem" private_key_file: "/k" })", "absolute"},
      {R"(tls { certificate_chain_file: "/c" private_key_file: "/k" min_version: "TLSv1.1" })",
       "min_version"},
      {R"(listen { proxy_protocol: true })", "needs proxy_trusted_networks"},
      {R"(listen { proxy_protocol: true proxy_trusted_networks: "10.0.0.1/8" })",
       "proxy_trusted_networks"},
      {R"(listen { proxy_header_timeout_ms: 10 })", "proxy_header_timeout_ms"},
  };
  for (const Case& c : cases) {
    const absl::Status s = Validate(Parse(c.text));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.error)) << c.text;
  }
  const absl::Status both = Validate(Parse(R"(limits { autologout_s: 1 } threads: 999)"));
  EXPECT_THAT(std::string(both.message()), HasSubstr("autologout_s"));
  EXPECT_THAT(std::string(both.message()), HasSubstr("threads"));
}

TEST(PopdConfig, TlsFilesAreLoadedOrRefusedClearly) {
  // Validation is pure; LoadSettings reads the files and names the one that is wrong.
  const config::PopdConfig c = Parse(
      R"(tls { certificate_chain_file: "/nonexistent/cert.pem" private_key_file: "/nonexistent/key.pem" })");
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  absl::StatusOr<Settings> s = LoadSettings(c, "x");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("/nonexistent/cert.pem"));
  // Without tls { } there is no context and nothing is read.
  absl::StatusOr<Settings> plain = LoadSettings(Parse(""), "x");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->tls, nullptr);
}

TEST(PopdConfig, UnknownFieldsAreSyntaxErrors) {
  config::PopdConfig c;
  EXPECT_FALSE(config::ParseTextProto("listen { adress: \"x\" }", "test", &c).ok());
}

TEST(Net, Endpoints) {
  struct Case {
    const char* text;
    bool ok;
    const char* canonical;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.1:110", true, "127.0.0.1:110"},
                                         {"0.0.0.0:0", true, "0.0.0.0:0"},
                                         {"[::1]:995", true, "[::1]:995"},
                                         {"[::]:110", true, "[::]:110"},
                                         {"::1:110", false, ""},
                                         {"127.0.0.1:", false, ""},
                                         {"127.0.0.1:-1", false, ""},
                                         {"127.0.0.1:65536", false, ""},
                                         {"127.0.0.1:+5", false, ""},
                                         {"[::1]995", false, ""},
                                         {"mail.example.org:110", false, ""},
                                         {"", false, ""}}) {
    absl::StatusOr<Endpoint> e = Endpoint::Parse(c.text);
    EXPECT_EQ(e.ok(), c.ok) << c.text;
    if (e.ok()) {
      EXPECT_EQ(e->ToString(), c.canonical);
    }
  }
}

TEST(Net, NetworksContain) {
  struct Case {
    const char* network;
    const char* address;
    bool inside;
  };
  for (const Case& c : std::vector<Case>{{"127.0.0.0/8", "127.0.0.1", true},
                                         {"127.0.0.0/8", "127.255.255.254", true},
                                         {"127.0.0.0/8", "128.0.0.1", false},
                                         {"10.1.2.3", "10.1.2.3", true},
                                         {"10.1.2.3", "10.1.2.4", false},
                                         {"0.0.0.0/0", "192.0.2.1", true},
                                         {"0.0.0.0/0", "::1", false},  // families never mix
                                         {"::1/128", "::1", true},
                                         {"::1/128", "127.0.0.1", false},
                                         {"2001:db8::/32", "2001:db8:ffff::1", true},
                                         {"2001:db8::/32", "2001:db9::1", false},
                                         {"192.168.0.0/23", "192.168.1.200", true},
                                         {"192.168.0.0/23", "192.168.2.1", false}}) {
    absl::StatusOr<Network> n = Network::Parse(c.network);
    ASSERT_TRUE(n.ok()) << c.network;
    absl::StatusOr<IpAddress> a = IpAddress::Parse(c.address);
    ASSERT_TRUE(a.ok()) << c.address;
    EXPECT_EQ(n->Contains(*a), c.inside) << c.network << " " << c.address;
  }
}

TEST(Net, MappedV4PeerCountsAsV4) {
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
  sockaddr_storage sa{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
  in6->sin6_family = AF_INET6;
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  std::memcpy(&in6->sin6_addr, mapped, 16);
  const IpAddress a = IpAddress::FromSockaddr(sa);
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.ToString(), "127.0.0.1");
  EXPECT_TRUE(Network::Parse("127.0.0.0/8")->Contains(a));
}

}  // namespace
}  // namespace poplar::popd
