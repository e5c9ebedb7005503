// common/metrics: the label rules, the address rule, and the endpoint served over real HTTP.
#include "common/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace poplar::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, VerbsAreFoldedIntoAFixedSet) {
  const struct {
    std::string_view in, out;
  } cases[] = {{"RETR", "RETR"},   {"retr", "RETR"}, {"Top", "TOP"},     {"AUTH", "AUTH"},
               {"XYZZY", "other"}, {"", "other"},    {"RETRX", "other"}, {"user", "USER"}};
  for (const auto& c : cases) EXPECT_EQ(NormalizeVerb(c.in), c.out) << c.in;
}

TEST(MetricsTest, MechanismsAreFoldedIntoAFixedSet) {
  const struct {
    std::string_view in, out;
  } cases[] = {{"plain", "PLAIN"},       {"SCRAM-SHA-256", "SCRAM-SHA-256"},
               {"cram-md5", "CRAM-MD5"}, {"USER", "USER"},
               {"GSSAPI", "other"},      {"bob", "other"}};
  for (const auto& c : cases) EXPECT_EQ(NormalizeMechanism(c.in), c.out) << c.in;
}

TEST(MetricsTest, ListenAddressMustBeNumeric) {
  EXPECT_TRUE(ValidateListenAddress("127.0.0.1:9110").ok());
  EXPECT_TRUE(ValidateListenAddress("[::1]:0").ok());
  EXPECT_TRUE(ValidateListenAddress("0.0.0.0:9111").ok());
  EXPECT_FALSE(ValidateListenAddress("localhost:9110").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1").ok());
  EXPECT_FALSE(ValidateListenAddress("::1:9110").ok());
  EXPECT_FALSE(ValidateListenAddress("").ok());
  EXPECT_FALSE(ValidateListenAddress("127.0.0.1:99999").ok());
}

// GET /metrics over a plain socket, as Prometheus does; returns the whole response.
std::string Scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

TEST(MetricsTest, EndpointServesCountersAndRefreshedGauges) {
  int refreshes = 0;
  absl::StatusOr<std::unique_ptr<Endpoint>> e = Endpoint::StartPopd("127.0.0.1:0", [&refreshes] {
    ++refreshes;
    return PopdGauges{.connections_open = 7};
  });
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_GT((*e)->port(), 0);
  PopdCommand("retr");
  PopdCommand("retr");
  PopdCommand("bogus");
  PopdLoginFailure("plain", "bad_credentials");
  PopdBytesSent(1234);
  const std::string body = Scrape((*e)->port());
  EXPECT_THAT(body, HasSubstr("200 OK"));
  EXPECT_THAT(body, HasSubstr("poplar_popd_commands_total{verb=\"RETR\"} 2"));
  EXPECT_THAT(body, HasSubstr("poplar_popd_commands_total{verb=\"other\"} 1"));
  EXPECT_THAT(body, HasSubstr("poplar_popd_login_failures_total{mechanism=\"PLAIN\",reason=\"bad_"
                              "credentials\"} 1"));
  EXPECT_THAT(body, HasSubstr("poplar_popd_sent_bytes_total 1234"));
  EXPECT_THAT(body, HasSubstr("poplar_popd_connections_open 7"));
  EXPECT_THAT(body, HasSubstr("poplar_popd_sessions_total{result=\"quit\"} 0"));
  EXPECT_EQ(refreshes, 1);
}

TEST(MetricsTest, ABadOrBusyAddressFailsToStart) {
  EXPECT_FALSE(Endpoint::StartIndexer("localhost:0", nullptr).ok());
  absl::StatusOr<std::unique_ptr<Endpoint>> first = Endpoint::StartIndexer("127.0.0.1:0", nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string busy = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_FALSE(Endpoint::StartIndexer(busy, nullptr).ok());
}

}  // namespace
}  // namespace poplar::metrics
