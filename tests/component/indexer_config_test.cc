// Configuration schema, loading and validation of poplar-indexer.
#include "indexer/indexer_config.h"

#include <string>

#include "common/config/textproto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/component/temp_dir.h"

namespace poplar::indexer {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"pb(
  spools { directory: "/var/mail" }
  spools { directory: "/srv/mail" layout: SPOOL_HASHED_2 poll: true poll_interval_ms: 500 }
  database_path: "/var/lib/poplar/index.sqlite"
  listen { unix_socket: "/run/poplar/indexer.sock" tcp_address: "127.0.0.1:0" }
)pb";

config::IndexerConfig Parse(const std::string& text) {
  config::IndexerConfig c;
  absl::Status s = config::ParseTextProto(text, "test", &c);
  EXPECT_TRUE(s.ok()) << s;
  ApplyDefaults(&c);
  return c;
}

TEST(IndexerConfig, GoodConfigAndDefaults) {
  config::IndexerConfig c = Parse(kGood);
  EXPECT_TRUE(Validate(c).ok()) << Validate(c);
  EXPECT_EQ(c.reconcile_interval_s(), 60u);
  EXPECT_EQ(c.lease_grace_ms(), 2000u);
  EXPECT_EQ(c.lease_wait_ms(), 2000u);
  EXPECT_EQ(c.uidl().scheme(), "poplar");
  EXPECT_TRUE(c.uidl().reuse_x_uidl());
  ASSERT_EQ(c.lock_methods_size(), 2);
  EXPECT_EQ(c.lock_methods(0), config::LOCK_DOTLOCK);
  EXPECT_EQ(c.lock_methods(1), config::LOCK_FCNTL);
  EXPECT_EQ(c.scram_iterations(), 4096u);
  EXPECT_EQ(c.lock_timeout_ms(), 10000u);
  EXPECT_EQ(c.dotlock_stale_s(), 600u);
  EXPECT_FALSE(c.deferred_expunge());
}

TEST(IndexerConfig, UnknownFieldAndSyntaxErrorsNameTheLine) {
  config::IndexerConfig c;
  absl::Status s =
      config::ParseTextProto("spools { directory: \"/x\" }\nbogus_field: 3\n", "f.conf", &c);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("f.conf:2"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("bogus_field"));
  s = config::ParseTextProto("spools { directory: ", "f.conf", &c);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  s = config::ParseTextProto("reconcile_interval_s: \"ten\"", "f.conf", &c);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
}

TEST(IndexerConfig, EveryProblemIsReportedAtOnce) {
  struct Case {
    const char* name;
    std::string text;
    const char* want;
  };
  const Case cases[] = {
      {"no spools", "database_path: \"/x.db\"", "at least one spools"},
      {"relative spool", "spools { directory: \"var/mail\" }", "spools[0].directory"},
      {"dotdot spool", "spools { directory: \"/var/../etc\" }", "spools[0].directory"},
      {"duplicate spool", "spools { directory: \"/a\" } spools { directory: \"/a\" }",
       "listed twice"},
      {"poll interval", "spools { directory: \"/a\" poll: true poll_interval_ms: 1 }",
       "poll_interval_ms"},
      {"home escape", "spools { directory: \"/home\" layout: SPOOL_HOME home_mailbox: \"../x\" }",
       "home_mailbox"},
      {"relative db", "spools { directory: \"/a\" } database_path: \"index.db\"", "database_path"},
      {"no listener", "spools { directory: \"/a\" } listen { unix_socket: \"\" }", "listen needs"},
      {"bad tcp", "spools { directory: \"/a\" } listen { tcp_address: \"nohost\" }", "tcp_address"},
      // The one host:port rule (common/util/host_port.h): an unbracketed IPv6 host and a signed
      // port were accepted here before.
      {"tcp v6 without brackets",
       "spools { directory: \"/a\" } listen { tcp_address: \"::1:7070\" }", "must be host:port"},
      {"tcp signed port", "spools { directory: \"/a\" } listen { tcp_address: \"[::1]:+1\" }",
       "must be host:port"},
      {"dup lock", "spools { directory: \"/a\" } lock_methods: LOCK_FCNTL lock_methods: LOCK_FCNTL",
       "twice"},
      {"reconcile", "spools { directory: \"/a\" } reconcile_interval_s: 0", "reconcile_interval_s"},
      {"lease grace", "spools { directory: \"/a\" } lease_grace_ms: 600000", "lease_grace_ms"},
      {"lease wait", "spools { directory: \"/a\" } lease_wait_ms: 30001", "lease_wait_ms"},
      {"sessions per stream", "spools { directory: \"/a\" } max_sessions_per_stream: 0",
       "max_sessions_per_stream"},
      {"scheme", "spools { directory: \"/a\" } uidl { scheme: \"uw\" }", "uidl.scheme"},
      {"scram", "spools { directory: \"/a\" } scram_iterations: 1000", "scram_iterations"},
      {"lock timeout", "spools { directory: \"/a\" } lock_timeout_ms: 0", "lock_timeout_ms"},
      {"stale dotlock", "spools { directory: \"/a\" } dotlock_stale_s: 60", "dotlock_stale_s"},
      {"journal dir", "spools { directory: \"/a\" } expunge_journal_dir: \"j\"",
       "expunge_journal_dir"},
      {"deferred delay", "spools { directory: \"/a\" } deferred_expunge_delay_s: 99999999",
       "deferred_expunge_delay_s"},
      {"owner name", "spools { directory: \"/a\" } check_owner { spool_owner: \"../root\" }",
       "check_owner.spool_owner"},
      {"owner rule", "spools { directory: \"/a\" } check_owner { rule: OWNER_SPOOL_OWNER }",
       "needs check_owner.spool_owner"},
      {"pam service", "spools { directory: \"/a\" } pam { service: \"../etc/passwd\" }",
       "pam.service"},
      {"pam threads", "spools { directory: \"/a\" } pam { threads: 0 }", "pam.threads"},
      {"pam waiting", "spools { directory: \"/a\" } pam { max_waiting: 0 }", "pam.max_waiting"},
      {"run_as root", "spools { directory: \"/a\" } run_as { user: \"root\" }", "run_as.user"},
      {"run_as cap",
       "spools { directory: \"/a\" } run_as { user: \"x\" keep_capabilities: \"CAP_SETUID\" }",
       "CAP_SETUID cannot be kept"},
      {"pam dir", "spools { directory: \"/a\" } pam { config_dir: \"pam.d\" }", "pam.config_dir"},
      // Issue 15: no unauthenticated TCP listener that other hosts can reach.
      {"tcp wildcard v4", "spools { directory: \"/a\" } listen { tcp_address: \"0.0.0.0:7070\" }",
       "must be a loopback address"},
      {"tcp wildcard v6", "spools { directory: \"/a\" } listen { tcp_address: \"[::]:7070\" }",
       "must be a loopback address"},
      {"tcp private net", "spools { directory: \"/a\" } listen { tcp_address: \"10.0.0.5:7070\" }",
       "must be a loopback address"},
      {"tcp host name",
       "spools { directory: \"/a\" } listen { tcp_address: \"mail.example:7070\" }",
       "must be a loopback address"},
      {"tcp v4-mapped",
       "spools { directory: \"/a\" } listen { tcp_address: \"[::ffff:127.0.0.1]:1\" }",
       "must be a loopback address"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::Status s = Validate(Parse(c.text));
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.want));
  }
  // Several mistakes: all of them in one message.
  absl::Status s = Validate(Parse("database_path: \"x\" reconcile_interval_s: 0"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("at least one spools"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("database_path"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("reconcile_interval_s"));
}

TEST(IndexerConfig, TcpOnLoopbackIsAccepted) {
  for (const char* address : {"127.0.0.1:0", "127.1.2.3:7070", "localhost:7070", "[::1]:7070"}) {
    SCOPED_TRACE(address);
    absl::Status s = Validate(Parse(
        absl::StrCat("spools { directory: \"/a\" } listen { tcp_address: \"", address, "\" }")));
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST(IndexerConfig, LoadFromFile) {
  poplar::testing::TempDir dir;
  poplar::testing::WriteFile(dir.File("indexer.conf"), kGood);
  auto c = LoadIndexerConfig(dir.File("indexer.conf"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->spools_size(), 2);
  EXPECT_TRUE(absl::IsNotFound(LoadIndexerConfig(dir.File("missing.conf")).status()));
  poplar::testing::WriteFile(dir.File("bad.conf"), "spools { directory: \"rel\" }");
  auto bad = LoadIndexerConfig(dir.File("bad.conf"));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bad.conf"));
}

}  // namespace
}  // namespace poplar::indexer
