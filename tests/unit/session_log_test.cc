// popd/session_log: the one log line per POP3 session, field by field (issue 14).
#include "popd/session_log.h"

#include <string>

#include "gtest/gtest.h"

namespace poplar::popd {
namespace {

TEST(SessionLogTest, EveryFieldInItsPlace) {
  SessionRecord r;
  r.user = "alice";
  r.client = "192.0.2.7";
  r.tls = "TLSv1.3";
  r.mechanism = "PLAIN";
  r.retrieved = 2;
  r.retrieved_bytes = 5120;
  r.deleted = 1;
  r.deleted_bytes = 2048;
  r.sent_bytes = 5301;
  r.duration_s = 0.4124;
  r.end = "quit";
  r.reason = "quit, deleted 1 (2048 bytes)";
  EXPECT_EQ(FormatSessionLine(r),
            "session user=alice client=192.0.2.7 tls=TLSv1.3 mech=PLAIN retrieved=2 "
            "retrieved_bytes=5120 deleted=1 deleted_bytes=2048 sent_bytes=5301 duration_s=0.412 "
            "end=quit reason=\"quit, deleted 1 (2048 bytes)\"");
}

TEST(SessionLogTest, NoLoginAndPlaintextHaveFixedPlaceholders) {
  SessionRecord r;
  r.client = "::1";
  r.end = "no_login";
  r.reason = "closed";
  EXPECT_EQ(FormatSessionLine(r),
            "session user=- client=::1 tls=none mech=- retrieved=0 retrieved_bytes=0 deleted=0 "
            "deleted_bytes=0 sent_bytes=0 duration_s=0.000 end=no_login reason=closed");
}

TEST(SessionLogTest, ValuesThatWouldBreakTheFormatAreQuoted) {
  const struct {
    std::string user, expected;
  } cases[] = {
      {"bob", "user=bob "},
      {"a b", "user=\"a b\" "},
      {"a=b", "user=\"a=b\" "},
      {"q\"x", "user=\"q\\\"x\" "},
      {"back\\slash", "user=\"back\\\\slash\" "},
      {std::string("nl\nx", 4), "user=\"nl\\x0ax\" "},
      {"caf\xc3\xa9", "user=\"caf\xc3\xa9\" "},
  };
  for (const auto& c : cases) {
    SessionRecord r;
    r.user = c.user;
    const std::string line = FormatSessionLine(r);
    EXPECT_NE(line.find(c.expected), std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  }
}

TEST(SessionLogTest, ResultTokens) {
  const struct {
    std::string_view reason;
    bool logged_in;
    std::string_view result;
  } cases[] = {
      {"quit, deleted 0 (0 bytes)", true, "quit"},
      {"quit, deleted 3 (900 bytes)", true, "quit"},
      {"quit, commit failed: mailbox changed", true, "commit_failed"},
      {"quit, commit timed out", true, "commit_failed"},
      {"client disconnected", true, "client_disconnected"},
      {"client disconnected", false, "no_login"},
      {"closed", false, "no_login"},
      {"pre-login timeout", false, "timeout"},
      {"autologout", true, "autologout"},
      {"server shutdown", true, "shutdown"},
      {"server shutdown", false, "shutdown"},
      {"maildrop session ended by the indexer: revoked", true, "lease_lost"},
      {"mailbox changed during RETR", true, "error"},
      {"epoll error", true, "error"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(SessionResult(c.reason, c.logged_in), c.result) << c.reason;
  }
}

TEST(SessionLogTest, MechanismsAndVerbsNeverCopyCredentials) {
  EXPECT_EQ(MechanismOfCommand("USER alice"), "USER");
  EXPECT_EQ(MechanismOfCommand("user alice"), "USER");
  EXPECT_EQ(MechanismOfCommand("APOP alice 0123456789abcdef0123456789abcdef"), "APOP");
  EXPECT_EQ(MechanismOfCommand("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), "PLAIN");
  EXPECT_EQ(MechanismOfCommand("AUTH scram-sha-256"), "SCRAM-SHA-256");
  EXPECT_EQ(MechanismOfCommand("AUTH X-SECRET-MECH"), "other");
  EXPECT_EQ(MechanismOfCommand("AUTH"), "");
  EXPECT_EQ(MechanismOfCommand("PASS secret"), "");
  EXPECT_EQ(MechanismOfCommand("RETR 1"), "");
  EXPECT_EQ(VerbOf("RETR 1"), "RETR");
  EXPECT_EQ(VerbOf("QUIT"), "QUIT");
}

}  // namespace
}  // namespace poplar::popd
