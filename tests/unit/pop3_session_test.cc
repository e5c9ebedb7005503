// The POP3 Session state machine (common/pop3/session.h): every command in every state, every
// error reply, pipelining across the waits, commits, limits.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "common/pop3/session.h"
#include "common/sasl/base64.h"
#include "common/sasl/challenge.h"
#include "common/sasl/scram.h"
#include "gtest/gtest.h"

namespace poplar::pop3 {
namespace {

// Action kinds, as variant indexes.
enum Kind : size_t {
  kNone = 0,
  kAuth = 1,
  kRetr = 2,
  kCommit = 3,
  kClose = 4,
  kTls = 5,
  kScram = 6
};

Maildrop FakeMaildrop() {
  Maildrop m;
  m.count = 3;
  m.octets = {100, 200, 300};
  m.uidls = {"u1", "u2", "u3"};
  m.total_octets = 600;
  return m;
}

// What the client sees for a step: the reply, then a RETR/TOP's +OK line once the I/O layer
// has found the message servable.
std::string Wire(const Step& step) {
  if (const auto* r = std::get_if<RetrRequest>(&step.action)) return step.reply + r->ok_line;
  return step.reply;
}

Session::Options Plaintext() {
  Session::Options o;
  o.allow_plaintext = true;
  return o;
}

// A session in TRANSACTION with FakeMaildrop().
Session LoggedIn(Session::Options options = Plaintext()) {
  Session s(options);
  EXPECT_EQ(s.OnLine("USER bob").reply, "+OK\r\n");
  Step pass = s.OnLine("PASS secret");
  EXPECT_EQ(pass.action.index(), kAuth);
  Step ok = s.OnAuthResult(absl::OkStatus(), FakeMaildrop());
  EXPECT_EQ(ok.reply, "+OK maildrop has 3 messages (600 octets)\r\n");
  EXPECT_EQ(s.state(), State::kTransaction);
  return s;
}

// Brings a fresh session into `state`.
Session InState(State state) {
  switch (state) {
    case State::kAuthorization:
      return Session(Plaintext());
    case State::kWaitAuth: {
      Session s(Plaintext());
      s.OnLine("USER bob");
      s.OnLine("PASS secret");
      return s;
    }
    case State::kTransaction:
      return LoggedIn();
    case State::kWaitRetr: {
      Session s = LoggedIn();
      s.OnLine("RETR 1");
      return s;
    }
    case State::kWaitCommit: {
      Session s = LoggedIn();
      s.OnLine("QUIT");
      return s;
    }
    case State::kWaitScram: {
      Session s(Plaintext());
      s.OnLine("AUTH SCRAM-SHA-256 biwsbj1ib2Iscj1jbGllbnRub25jZQ==");  // n,,n=bob,r=clientnonce
      return s;
    }
    case State::kSasl: {
      Session s(Plaintext());
      s.OnLine("AUTH PLAIN");
      return s;
    }
    case State::kWaitTls: {
      Session::Options o = Plaintext();
      o.tls_available = true;
      Session s(o);
      s.OnLine("STLS");
      return s;
    }
    case State::kClosed: {
      Session s(Plaintext());
      s.OnLine("QUIT");
      return s;
    }
  }
  return Session();
}

constexpr std::string_view kWrongState = "-ERR Command not valid in this state\r\n";
constexpr std::string_view kUnknown = "-ERR Unknown command\r\n";

struct Expect {
  std::string reply;
  size_t action;
  State next;
};

struct CommandCase {
  std::string line;
  Expect authorization;
  Expect transaction;
};

const std::string kCapaAuth =
    "+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN "
    "LOGIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
    "PIPELINING\r\n.\r\n";
const std::string kCapaTrans =
    "+OK Capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
    "PIPELINING\r\nIMPLEMENTATION Poplar\r\n.\r\n";

std::vector<CommandCase> CommandTable() {
  const std::string ws(kWrongState);
  const State A = State::kAuthorization, T = State::kTransaction;
  return {
      {"USER bob", {"+OK\r\n", kNone, A}, {ws, kNone, T}},
      {"PASS x", {"-ERR USER first\r\n", kNone, A}, {ws, kNone, T}},
      {"APOP bob 0123456789abcdef",
       {"-ERR APOP not available on this server\r\n", kNone, A},
       {ws, kNone, T}},
      {"AUTH", {"+OK\r\nSCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n", kNone, A}, {ws, kNone, T}},
      {"AUTH PLAIN AGJvYgBwdw==", {"", kAuth, State::kWaitAuth}, {ws, kNone, T}},
      {"AUTH X-UNKNOWN",
       {"-ERR Unrecognized authentication mechanism\r\n", kNone, A},
       {ws, kNone, T}},
      {"STLS", {"-ERR STLS not available on this server\r\n", kNone, A}, {ws, kNone, T}},
      {"CAPA", {kCapaAuth, kNone, A}, {kCapaTrans, kNone, T}},
      {"QUIT",
       {"+OK Poplar signing off\r\n", kClose, State::kClosed},
       {"", kCommit, State::kWaitCommit}},
      {"STAT", {ws, kNone, A}, {"+OK 3 600\r\n", kNone, T}},
      {"LIST",
       {ws, kNone, A},
       {"+OK 3 messages (600 octets)\r\n1 100\r\n2 200\r\n3 300\r\n.\r\n", kNone, T}},
      {"LIST 2", {ws, kNone, A}, {"+OK 2 200\r\n", kNone, T}},
      {"RETR 1", {ws, kNone, A}, {"+OK 100 octets\r\n", kRetr, State::kWaitRetr}},
      {"DELE 1", {ws, kNone, A}, {"+OK message 1 deleted\r\n", kNone, T}},
      {"NOOP", {ws, kNone, A}, {"+OK\r\n", kNone, T}},
      {"RSET", {ws, kNone, A}, {"+OK maildrop has 3 messages (600 octets)\r\n", kNone, T}},
      {"TOP 1 0", {ws, kNone, A}, {"+OK\r\n", kRetr, State::kWaitRetr}},
      {"UIDL", {ws, kNone, A}, {"+OK\r\n1 u1\r\n2 u2\r\n3 u3\r\n.\r\n", kNone, T}},
      {"UIDL 3", {ws, kNone, A}, {"+OK 3 u3\r\n", kNone, T}},
      {"XYZZY", {std::string(kUnknown), kNone, A}, {std::string(kUnknown), kNone, T}},
      {"noop", {ws, kNone, A}, {"+OK\r\n", kNone, T}},
      {"uidl 1", {ws, kNone, A}, {"+OK 1 u1\r\n", kNone, T}},
  };
}

TEST(SessionTest, EveryCommandInEveryState) {
  for (const CommandCase& c : CommandTable()) {
    SCOPED_TRACE(c.line);
    for (State state : {State::kAuthorization, State::kWaitAuth, State::kTransaction,
                        State::kWaitRetr, State::kWaitCommit, State::kWaitTls, State::kClosed}) {
      SCOPED_TRACE(std::string(StateName(state)));
      Session s = InState(state);
      ASSERT_EQ(s.state(), state);
      const Step step = s.OnLine(c.line);
      if (state == State::kAuthorization || state == State::kTransaction) {
        const Expect& e = state == State::kAuthorization ? c.authorization : c.transaction;
        EXPECT_EQ(Wire(step), e.reply);
        EXPECT_EQ(step.action.index(), e.action);
        EXPECT_EQ(s.state(), e.next);
      } else if (state == State::kClosed || state == State::kWaitTls) {
        // Nothing more is answered or done after Close; plaintext after STLS is discarded.
        EXPECT_EQ(step.reply, "");
        EXPECT_EQ(step.action.index(), kNone);
        EXPECT_EQ(s.queued_lines(), 0u);
      } else {
        // Waiting: queued, answered later.
        EXPECT_EQ(step.reply, "");
        EXPECT_EQ(step.action.index(), kNone);
        EXPECT_EQ(s.state(), state);
        EXPECT_EQ(s.queued_lines(), 1u);
      }
    }
  }
}

// Every reply is +OK/-ERR and CRLF-terminated; multi-line ones end with ".\r\n".
TEST(SessionTest, RepliesAreWellFormed) {
  for (const CommandCase& c : CommandTable()) {
    for (const Expect* e : {&c.authorization, &c.transaction}) {
      if (e->reply.empty()) continue;
      EXPECT_TRUE(e->reply.rfind("+OK", 0) == 0 || e->reply.rfind("-ERR", 0) == 0) << e->reply;
      EXPECT_EQ(e->reply.substr(e->reply.size() - 2), "\r\n");
    }
  }
}

TEST(SessionTest, MessageNumberErrors) {
  struct Case {
    std::string line;
    std::string reply;
  };
  const std::string no_such = "-ERR No such message\r\n";
  const std::string bad = "-ERR Invalid number\r\n";
  const std::string syntax = "-ERR Syntax error\r\n";
  std::vector<Case> cases;
  for (const std::string verb : {"LIST", "RETR", "DELE", "UIDL"}) {
    cases.push_back({verb + " 0", no_such});
    cases.push_back({verb + " 4", no_such});
    cases.push_back({verb + " 4294967295", no_such});
    cases.push_back({verb + " 4294967297", bad});
    cases.push_back({verb + " -1", bad});
    cases.push_back({verb + " +1", bad});
    cases.push_back({verb + " 1x", bad});
    cases.push_back({verb + " 1 2", syntax});
  }
  cases.push_back({"RETR", syntax});
  cases.push_back({"DELE", syntax});
  cases.push_back({"RETR ", syntax});
  cases.push_back({"TOP 1", syntax});
  cases.push_back({"TOP", syntax});
  cases.push_back({"TOP 0 1", no_such});
  cases.push_back({"TOP 4 1", no_such});
  cases.push_back({"TOP -1 1", bad});
  cases.push_back({"TOP +1 1", bad});
  cases.push_back({"TOP 4294967297 1", bad});
  cases.push_back({"TOP 1 -1", bad});
  cases.push_back({"TOP 1 +1", bad});
  cases.push_back({"TOP 1 1x", bad});
  cases.push_back({"TOP 1 1 1", syntax});
  cases.push_back({"STAT 1", syntax});
  cases.push_back({"NOOP x", syntax});
  cases.push_back({"RSET 1", syntax});
  cases.push_back({"QUIT now", syntax});
  for (const Case& c : cases) {
    Session s = LoggedIn();
    const Step step = s.OnLine(c.line);
    EXPECT_EQ(step.reply, c.reply) << c.line;
    EXPECT_EQ(step.action.index(), kNone) << c.line;
    EXPECT_EQ(s.state(), State::kTransaction) << c.line;
  }
}

TEST(SessionTest, TopLineCountZeroAndHugeClamp) {
  Session s = LoggedIn();
  Step step = s.OnLine("TOP 2 0");
  ASSERT_EQ(step.action.index(), kRetr);
  EXPECT_EQ(std::get<RetrRequest>(step.action).message_index, 1u);
  EXPECT_EQ(std::get<RetrRequest>(step.action).top_lines, 0u);
  s.OnRetrDone(absl::OkStatus());
  step = s.OnLine("TOP 3 999999999999999999999999999");
  ASSERT_EQ(step.action.index(), kRetr);
  EXPECT_EQ(std::get<RetrRequest>(step.action).message_index, 2u);
  EXPECT_EQ(std::get<RetrRequest>(step.action).top_lines, UINT64_MAX);
  step = s.OnRetrDone(absl::OkStatus());
  EXPECT_EQ(step.reply, "");
  EXPECT_EQ(s.state(), State::kTransaction);
  step = s.OnLine("RETR 3");
  ASSERT_EQ(step.action.index(), kRetr);
  EXPECT_EQ(step.reply, "");
  EXPECT_EQ(std::get<RetrRequest>(step.action).ok_line, "+OK 300 octets\r\n");
  EXPECT_EQ(std::get<RetrRequest>(step.action).top_lines, std::nullopt);
}

TEST(SessionTest, DeletedMessages) {
  Session s = LoggedIn();
  EXPECT_EQ(s.OnLine("DELE 2").reply, "+OK message 2 deleted\r\n");
  const std::string gone = "-ERR message 2 already deleted\r\n";
  for (const char* line : {"LIST 2", "RETR 2", "TOP 2 1", "DELE 2", "UIDL 2"}) {
    EXPECT_EQ(s.OnLine(line).reply, gone) << line;
    EXPECT_EQ(s.state(), State::kTransaction) << line;
  }
  EXPECT_EQ(s.OnLine("STAT").reply, "+OK 2 400\r\n");
  EXPECT_EQ(s.OnLine("LIST").reply, "+OK 2 messages (400 octets)\r\n1 100\r\n3 300\r\n.\r\n");
  EXPECT_EQ(s.OnLine("UIDL").reply, "+OK\r\n1 u1\r\n3 u3\r\n.\r\n");
  EXPECT_EQ(s.OnLine("LIST 3").reply, "+OK 3 300\r\n");
  EXPECT_EQ(s.OnLine("RSET").reply, "+OK maildrop has 3 messages (600 octets)\r\n");
  EXPECT_EQ(s.OnLine("STAT").reply, "+OK 3 600\r\n");
  EXPECT_EQ(s.OnLine("LIST 2").reply, "+OK 2 200\r\n");
}

TEST(SessionTest, CommitRequests) {
  struct Case {
    std::vector<std::string> lines;
    std::vector<uint32_t> deleted;
  };
  const Case cases[] = {
      {{}, {}},
      {{"DELE 1", "DELE 3"}, {0, 2}},
      {{"DELE 3", "DELE 1"}, {0, 2}},
      {{"DELE 1", "DELE 3", "RSET"}, {}},
      {{"DELE 1", "DELE 3", "RSET", "DELE 2"}, {1}},
      {{"DELE 1", "DELE 1", "DELE 4", "DELE 0"}, {0}},
      {{"DELE 1", "DELE 2", "DELE 3"}, {0, 1, 2}},
  };
  for (const Case& c : cases) {
    Session s = LoggedIn();
    for (const std::string& line : c.lines) s.OnLine(line);
    const Step quit = s.OnLine("QUIT");
    EXPECT_EQ(quit.reply, "");  // the reply waits for the commit's answer
    ASSERT_EQ(quit.action.index(), kCommit);
    EXPECT_EQ(std::get<CommitRequest>(quit.action).deleted, c.deleted);
    EXPECT_EQ(s.state(), State::kWaitCommit);
    const Step done = s.OnCommitResult(absl::OkStatus());
    EXPECT_EQ(done.reply, "+OK Poplar signing off\r\n");
    EXPECT_EQ(done.action.index(), kClose);
    EXPECT_EQ(s.state(), State::kClosed);
  }
}

TEST(SessionTest, FailedCommitIsSysTempAndCloses) {
  for (const absl::Status& st :
       {absl::UnavailableError("indexer down"), absl::AbortedError("lease lost"),
        absl::DeadlineExceededError("slow")}) {
    Session s = LoggedIn();
    s.OnLine("DELE 1");
    s.OnLine("QUIT");
    const Step done = s.OnCommitResult(st);
    EXPECT_EQ(done.reply, "-ERR [SYS/TEMP] Temporary server failure, try again later\r\n");
    EXPECT_EQ(done.action.index(), kClose);
    EXPECT_EQ(s.state(), State::kClosed);
    EXPECT_EQ(s.OnLine("NOOP").reply, "");
  }
}

TEST(SessionTest, ErrorLineMapping) {
  struct Case {
    absl::Status status;
    std::string prefix;
  };
  const Case cases[] = {
      {absl::UnauthenticatedError("no such user bob"), "-ERR [AUTH] "},
      {absl::ResourceExhaustedError("locked"), "-ERR [IN-USE] "},
      {absl::UnavailableError("x"), "-ERR [SYS/TEMP] "},
      {absl::AbortedError("x"), "-ERR [SYS/TEMP] "},
      {absl::DeadlineExceededError("x"), "-ERR [SYS/TEMP] "},
      {absl::InternalError("x"), "-ERR [SYS/PERM] "},
      {absl::DataLossError("x"), "-ERR [SYS/PERM] "},
      {absl::FailedPreconditionError("x"), "-ERR [SYS/PERM] "},
      {absl::InvalidArgumentError("x"), "-ERR [SYS/PERM] "},
  };
  for (const Case& c : cases) {
    const std::string line = ErrorLine(c.status);
    EXPECT_EQ(line.rfind(c.prefix, 0), 0u) << line;
    EXPECT_EQ(line.substr(line.size() - 2), "\r\n");
    EXPECT_EQ(line.find(std::string(c.status.message())), std::string::npos) << line;
  }
}

TEST(SessionTest, AuthFailuresLookTheSame) {
  std::vector<std::string> replies;
  for (const absl::Status& st :
       {absl::UnauthenticatedError("wrong password"), absl::NotFoundError("no such user"),
        absl::PermissionDeniedError("account disabled")}) {
    Session s = InState(State::kWaitAuth);
    const Step step = s.OnAuthResult(st, Maildrop{});
    EXPECT_EQ(step.action.index(), kNone);
    EXPECT_EQ(s.state(), State::kAuthorization);
    replies.push_back(step.reply);
    // USER must be given again.
    EXPECT_EQ(s.OnLine("PASS secret").reply, "-ERR USER first\r\n");
  }
  EXPECT_EQ(replies[0], "-ERR [AUTH] Authentication failed\r\n");
  EXPECT_EQ(replies[1], replies[0]);
  EXPECT_EQ(replies[2], replies[0]);
}

TEST(SessionTest, InUseAndTemporaryLoginFailures) {
  Session s = InState(State::kWaitAuth);
  EXPECT_EQ(
      s.OnAuthResult(absl::ResourceExhaustedError("lease"), {}).reply.rfind("-ERR [IN-USE] ", 0),
      0u);
  s.OnLine("USER bob");
  s.OnLine("PASS pw");
  EXPECT_EQ(s.OnAuthResult(absl::UnavailableError("down"), {}).reply.rfind("-ERR [SYS/TEMP] ", 0),
            0u);
  EXPECT_EQ(s.state(), State::kAuthorization);
}

TEST(SessionTest, AuthRequestCarriesUserAndWholePassword) {
  Session s(Plaintext());
  EXPECT_EQ(s.OnLine("user Bob").reply, "+OK\r\n");
  const Step step = s.OnLine("PASS  pass word ");
  ASSERT_EQ(step.action.index(), kAuth);
  EXPECT_EQ(std::get<AuthRequest>(step.action).user, "Bob");
  EXPECT_EQ(std::get<AuthRequest>(step.action).password, " pass word ");
  EXPECT_EQ(step.reply, "");
  EXPECT_EQ(s.state(), State::kWaitAuth);
}

TEST(SessionTest, UserWithoutAllowPlaintextIsRejected) {
  Session s;  // allow_plaintext defaults to false
  const std::string refused =
      "-ERR [AUTH] Plaintext authentication disallowed on this connection\r\n";
  EXPECT_EQ(s.OnLine("USER bob").reply, refused);
  EXPECT_EQ(s.OnLine("PASS secret").reply, refused);
  EXPECT_EQ(s.state(), State::kAuthorization);
  const std::string capa = s.OnLine("CAPA").reply;
  EXPECT_EQ(capa.find("USER"), std::string::npos);
  EXPECT_EQ(capa.find("IMPLEMENTATION"), std::string::npos);
  EXPECT_NE(capa.find("\r\nPIPELINING\r\n"), std::string::npos);
}

TEST(SessionTest, LineLengthLimit) {
  Session s(Plaintext());
  s.OnLine("USER bob");
  const std::string pass255 = "PASS " + std::string(250, 'p');
  ASSERT_EQ(pass255.size(), 255u);
  EXPECT_EQ(s.OnLine(pass255 + "p").reply, "-ERR Command line too long\r\n");
  const Step step = s.OnLine(pass255);
  ASSERT_EQ(step.action.index(), kAuth);
  EXPECT_EQ(std::get<AuthRequest>(step.action).password, std::string(250, 'p'));
  // Queued lines keep the limit too.
  s.OnLine(std::string(1000, 'N'));
  const Step after = s.OnAuthResult(absl::OkStatus(), FakeMaildrop());
  EXPECT_EQ(after.reply,
            "+OK maildrop has 3 messages (600 octets)\r\n-ERR Command line too long\r\n");
}

TEST(SessionTest, NulByteRejected) {
  Session s = LoggedIn();
  EXPECT_EQ(s.OnLine(std::string("STAT\0", 5)).reply, "-ERR NUL byte in command\r\n");
}

TEST(SessionTest, PipelinedInputDuringWaitAuthAnsweredInOrder) {
  Session s(Plaintext());
  EXPECT_EQ(s.OnLine("USER bob").reply, "+OK\r\n");
  EXPECT_EQ(s.OnLine("PASS secret").action.index(), kAuth);
  for (const char* line : {"STAT", "LIST 1", "DELE 1", "RETR 2", "UIDL 3", "QUIT"}) {
    const Step step = s.OnLine(line);
    EXPECT_EQ(step.reply, "") << line;
    EXPECT_EQ(step.action.index(), kNone) << line;
  }
  EXPECT_EQ(s.queued_lines(), 6u);
  // Runs up to the first command that needs the I/O layer (RETR), replies in order.
  Step step = s.OnAuthResult(absl::OkStatus(), FakeMaildrop());
  EXPECT_EQ(Wire(step),
            "+OK maildrop has 3 messages (600 octets)\r\n+OK 3 600\r\n+OK 1 100\r\n"
            "+OK message 1 deleted\r\n+OK 200 octets\r\n");
  ASSERT_EQ(step.action.index(), kRetr);
  EXPECT_EQ(std::get<RetrRequest>(step.action).message_index, 1u);
  EXPECT_EQ(s.state(), State::kWaitRetr);
  EXPECT_EQ(s.queued_lines(), 2u);
  // More input while the body streams joins the queue behind.
  EXPECT_EQ(s.OnLine("NOOP").reply, "");
  step = s.OnRetrDone(absl::OkStatus());
  EXPECT_EQ(step.reply, "+OK 3 u3\r\n");
  ASSERT_EQ(step.action.index(), kCommit);
  EXPECT_EQ(std::get<CommitRequest>(step.action).deleted, std::vector<uint32_t>{0});
  EXPECT_EQ(s.state(), State::kWaitCommit);
  // NOOP after QUIT is never answered: the session ends with the commit.
  step = s.OnCommitResult(absl::OkStatus());
  EXPECT_EQ(step.reply, "+OK Poplar signing off\r\n");
  EXPECT_EQ(step.action.index(), kClose);
  EXPECT_EQ(s.queued_lines(), 0u);
}

TEST(SessionTest, PipelinedInputAfterFailedLogin) {
  Session s(Plaintext());
  s.OnLine("USER bob");
  s.OnLine("PASS wrong");
  s.OnLine("STAT");
  s.OnLine("USER bob");
  s.OnLine("PASS right");
  s.OnLine("STAT");
  Step step = s.OnAuthResult(absl::UnauthenticatedError("bad"), {});
  EXPECT_EQ(step.reply,
            "-ERR [AUTH] Authentication failed\r\n" + std::string(kWrongState) + "+OK\r\n");
  ASSERT_EQ(step.action.index(), kAuth);
  EXPECT_EQ(std::get<AuthRequest>(step.action).password, "right");
  step = s.OnAuthResult(absl::OkStatus(), FakeMaildrop());
  EXPECT_EQ(step.reply, "+OK maildrop has 3 messages (600 octets)\r\n+OK 3 600\r\n");
  EXPECT_EQ(step.action.index(), kNone);
  EXPECT_EQ(s.queued_lines(), 0u);
}

TEST(SessionTest, QueueIsBounded) {
  Session::Options o = Plaintext();
  o.max_queued_lines = 2;
  Session s(o);
  s.OnLine("USER bob");
  s.OnLine("PASS pw");
  EXPECT_TRUE(s.CanAcceptLine());
  s.OnLine("NOOP");
  s.OnLine("NOOP");
  EXPECT_FALSE(s.CanAcceptLine());
  const Step step = s.OnLine("NOOP");
  EXPECT_EQ(step.action.index(), kClose);
  EXPECT_EQ(s.state(), State::kClosed);
  EXPECT_EQ(s.OnAuthResult(absl::OkStatus(), FakeMaildrop()).reply, "");
}

TEST(SessionTest, BadCommandCapInAuthorization) {
  Session s(Plaintext());
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(s.OnLine("XYZZY").reply, kUnknown);
  }
  EXPECT_EQ(s.OnLine("USER bob").reply, "+OK\r\n");  // resets the count: errors are consecutive
  for (int i = 0; i < 9; ++i) s.OnLine("STAT");
  EXPECT_EQ(s.state(), State::kAuthorization);
  const Step step = s.OnLine("STAT");
  EXPECT_EQ(step.reply, "-ERR Too many bad commands\r\n");
  EXPECT_EQ(step.action.index(), kClose);
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(SessionTest, FailedLoginsCountAsBadCommands) {
  Session::Options o = Plaintext();
  o.max_bad_commands = 3;
  Session s(o);
  s.OnLine("XYZZY");
  s.OnLine("PASS x");
  s.OnLine("USER bob");  // "+OK": the consecutive count starts again
  s.OnLine("PASS wrong");
  EXPECT_EQ(s.OnAuthResult(absl::UnauthenticatedError(""), {}).reply,
            "-ERR [AUTH] Authentication failed\r\n");
  EXPECT_EQ(s.OnLine("PASS again").reply, "-ERR USER first\r\n");
  EXPECT_EQ(s.state(), State::kAuthorization);
  const Step step = s.OnLine("PASS again");
  EXPECT_EQ(step.reply, "-ERR Too many bad commands\r\n");
  EXPECT_EQ(step.action.index(), kClose);
}

TEST(SessionTest, FailedLoginCapIsNotResetByUser) {
  Session s(Plaintext());  // max_auth_failures 3
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(s.OnLine("USER bob").reply, "+OK\r\n");
    s.OnLine("PASS wrong");
    const Step step = s.OnAuthResult(absl::UnauthenticatedError(""), {});
    EXPECT_EQ(step.reply, "-ERR [AUTH] Authentication failed\r\n");
    EXPECT_EQ(step.action.index(), i < 2 ? kNone : kClose);
  }
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(SessionTest, NoBadCommandCapInTransaction) {
  Session s = LoggedIn();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.OnLine("XYZZY").reply, kUnknown);
  EXPECT_EQ(s.state(), State::kTransaction);
}

TEST(SessionTest, PasswordNeverInAnyReply) {
  const std::string secret = "hunter2-SECRET";
  Session s(Plaintext());
  std::string all;
  for (const std::string& line :
       {std::string("USER bob"), "PASS " + secret, std::string("PASS ") + secret}) {
    all += s.OnLine(line).reply;
  }
  all += s.OnAuthResult(absl::UnauthenticatedError("bad password " + secret), {}).reply;
  all += s.OnLine("PASS " + secret).reply;
  EXPECT_EQ(all.find(secret), std::string::npos) << all;
}

TEST(SessionTest, MalformedMaildropCloses) {
  Maildrop m = FakeMaildrop();
  m.octets.pop_back();
  Maildrop bad_total = FakeMaildrop();
  bad_total.total_octets = 5;
  Maildrop bad_uidl = FakeMaildrop();
  bad_uidl.uidls = {"u1", "has space", "u3"};
  Maildrop short_uidls = FakeMaildrop();
  short_uidls.uidls = {"u1", "u2"};
  for (const Maildrop& md : {m, bad_total, bad_uidl, short_uidls}) {
    Session s = InState(State::kWaitAuth);
    const Step step = s.OnAuthResult(absl::OkStatus(), md);
    EXPECT_EQ(step.reply.rfind("-ERR [SYS/PERM] ", 0), 0u);
    EXPECT_EQ(step.action.index(), kClose);
  }
}

TEST(SessionTest, FailedStreamCloses) {
  Session s = InState(State::kWaitRetr);
  s.OnLine("STAT");
  const Step step = s.OnRetrDone(absl::DataLossError("file changed"));
  EXPECT_EQ(step.reply, "");
  EXPECT_EQ(step.action.index(), kClose);
  EXPECT_EQ(s.state(), State::kClosed);
}

TEST(SessionTest, RefusedRetrAnswersErrAndGoesOn) {
  Session s = LoggedIn();
  Step step = s.OnLine("RETR 2");
  ASSERT_EQ(step.action.index(), kRetr);
  EXPECT_EQ(s.OnLine("STAT").reply, "");  // pipelined behind the RETR
  step = s.OnRetrRefused(absl::UnavailableError("mailbox changed since login"));
  EXPECT_EQ(step.reply,
            "-ERR [SYS/TEMP] Temporary server failure, try again later\r\n+OK 3 600\r\n");
  EXPECT_EQ(step.action.index(), kNone);
  EXPECT_EQ(s.state(), State::kTransaction);
  step = s.OnLine("TOP 1 1");
  ASSERT_EQ(step.action.index(), kRetr);
  EXPECT_EQ(std::get<RetrRequest>(step.action).ok_line, "+OK\r\n");
  EXPECT_EQ(s.OnRetrRefused(absl::InternalError("x")).reply.rfind("-ERR [SYS/PERM] ", 0), 0u);
}

Session::Options TlsOffered() {
  Session::Options o;  // plaintext logins not allowed without TLS
  o.tls_available = true;
  return o;
}

TEST(SessionTest, StlsThenLoginWithCapaChanges) {
  Session s(TlsOffered());
  const std::string before = s.OnLine("CAPA").reply;
  EXPECT_NE(before.find("STLS\r\n"), std::string::npos);
  EXPECT_EQ(before.find("USER\r\n"), std::string::npos);  // not offered in clear
  EXPECT_EQ(s.OnLine("USER bob").reply.rfind("-ERR [AUTH] ", 0), 0u);
  Step step = s.OnLine("STLS");
  EXPECT_EQ(step.reply, "+OK Begin TLS negotiation\r\n");
  EXPECT_EQ(step.action.index(), kTls);
  EXPECT_EQ(s.state(), State::kWaitTls);
  EXPECT_FALSE(s.CanAcceptLine());
  EXPECT_EQ(s.OnTlsStarted().reply, "");
  EXPECT_EQ(s.state(), State::kAuthorization);
  const std::string after = s.OnLine("CAPA").reply;
  EXPECT_EQ(after.find("STLS\r\n"), std::string::npos);  // RFC 2595: not once TLS is active
  EXPECT_NE(after.find("USER\r\n"), std::string::npos);
  EXPECT_EQ(s.OnLine("STLS").reply, "-ERR Command not permitted when TLS active\r\n");
  EXPECT_EQ(s.OnLine("USER bob").reply, "+OK\r\n");
  EXPECT_EQ(s.OnLine("PASS pw").action.index(), kAuth);
}

TEST(SessionTest, NothingBeforeOrAfterStlsSurvivesIt) {
  // USER before STLS is forgotten; lines pipelined behind STLS are dropped, not queued.
  Session::Options o = TlsOffered();
  o.allow_plaintext = true;
  Session s(o);
  EXPECT_EQ(s.OnLine("USER mallory").reply, "+OK\r\n");
  EXPECT_EQ(s.OnLine("STLS").action.index(), kTls);
  for (const char* injected : {"USER victim", "PASS x", "QUIT", "CAPA"}) {
    const Step step = s.OnLine(injected);
    EXPECT_EQ(step.reply, "") << injected;
    EXPECT_EQ(step.action.index(), kNone) << injected;
  }
  EXPECT_EQ(s.queued_lines(), 0u);
  s.OnTlsStarted();
  EXPECT_EQ(s.OnLine("PASS x").reply, "-ERR USER first\r\n");
}

TEST(SessionTest, StlsFromThePipelineQueueDropsWhatFollows) {
  // A failed login leaves pipelined lines queued; an STLS among them drops those after it.
  Session::Options o = TlsOffered();
  o.allow_plaintext = true;
  Session s(o);
  s.OnLine("USER bob");
  ASSERT_EQ(s.OnLine("PASS wrong").action.index(), kAuth);
  for (const char* line : {"STLS", "USER bob", "PASS injected"}) s.OnLine(line);
  const Step step = s.OnAuthResult(absl::UnauthenticatedError("no"), {});
  EXPECT_EQ(step.reply, "-ERR [AUTH] Authentication failed\r\n+OK Begin TLS negotiation\r\n");
  EXPECT_EQ(step.action.index(), kTls);
  EXPECT_EQ(s.queued_lines(), 0u);
  s.OnTlsStarted();
  EXPECT_EQ(s.state(), State::kAuthorization);
}

TEST(SessionTest, ImplicitTlsNeverOffersStls) {
  Session::Options o = TlsOffered();
  o.tls_active = true;
  o.allow_plaintext = true;
  Session s(o);
  EXPECT_EQ(s.OnLine("CAPA").reply.find("STLS"), std::string::npos);
  EXPECT_EQ(s.OnLine("STLS").reply, "-ERR Command not permitted when TLS active\r\n");
}

// AUTH (RFC 5034) with PLAIN and LOGIN: dialogues, initial responses, cancel, errors.
TEST(SessionTest, SaslPlainAndLogin) {
  struct Case {
    std::vector<std::string> lines;  // all but the last answered with the reply listed
    std::vector<std::string> replies;
    bool logs_in;  // the last line yields an AuthRequest for bob / pw
  };
  // base64: "\0bob\0pw" = AGJvYgBwdw== ; "bob\0bob\0pw" = Ym9iAGJvYgBwdw== ;
  // "eve\0bob\0pw" = ZXZlAGJvYgBwdw== ; "bob" = Ym9i ; "pw" = cHc=
  const std::vector<Case> cases = {
      {{"AUTH PLAIN AGJvYgBwdw=="}, {}, true},
      {{"auth plain", "AGJvYgBwdw=="}, {"+ \r\n"}, true},
      {{"AUTH PLAIN Ym9iAGJvYgBwdw=="}, {}, true},  // authzid = authcid is fine
      {{"AUTH PLAIN ZXZlAGJvYgBwdw=="}, {"-ERR [AUTH] Authentication failed\r\n"}, false},
      {{"AUTH PLAIN ="}, {"-ERR [AUTH] Authentication failed\r\n"}, false},  // empty IR
      {{"AUTH PLAIN", "*"}, {"+ \r\n", "-ERR Authentication cancelled\r\n"}, false},
      {{"AUTH PLAIN", "not base64!"},
       {"+ \r\n", "-ERR Invalid base64 in SASL response\r\n"},
       false},
      {{"AUTH LOGIN", "Ym9i", "cHc="}, {"+ VXNlcm5hbWU6\r\n", "+ UGFzc3dvcmQ6\r\n"}, true},
      {{"AUTH LOGIN Ym9i", "cHc="}, {"+ UGFzc3dvcmQ6\r\n"}, true},
      {{"AUTH LOGIN", "Ym9i", "*"},
       {"+ VXNlcm5hbWU6\r\n", "+ UGFzc3dvcmQ6\r\n", "-ERR Authentication cancelled\r\n"},
       false},
      {{"AUTH CRAM-MD5"}, {"-ERR Unrecognized authentication mechanism\r\n"}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.lines.front());
    Session s(Plaintext());
    Step last;
    std::vector<std::string> replies;
    for (const std::string& line : c.lines) {
      last = s.OnLine(line);
      if (!last.reply.empty()) replies.push_back(last.reply);
    }
    EXPECT_EQ(replies, c.replies);
    if (c.logs_in) {
      ASSERT_EQ(last.action.index(), kAuth);
      EXPECT_EQ(std::get<AuthRequest>(last.action).user, "bob");
      EXPECT_EQ(std::get<AuthRequest>(last.action).password, "pw");
      EXPECT_EQ(s.state(), State::kWaitAuth);
    } else {
      EXPECT_EQ(last.action.index(), kNone);
      EXPECT_EQ(s.state(), State::kAuthorization);
    }
  }
}

TEST(SessionTest, SaslFollowsThePlaintextPolicyAndAllowsLongResponses) {
  Session refused{Session::Options{}};
  EXPECT_EQ(refused.OnLine("AUTH PLAIN AGJvYgBwdw==").reply.rfind("-ERR [AUTH] Plaintext", 0), 0u);
  // Only SCRAM, which never shows the password, is offered in the clear.
  EXPECT_EQ(refused.OnLine("AUTH").reply, "+OK\r\nSCRAM-SHA-256\r\n.\r\n");
  EXPECT_NE(refused.OnLine("CAPA").reply.find("SASL SCRAM-SHA-256\r\n"), std::string::npos);
  Session s(Plaintext());
  EXPECT_EQ(s.MaxLineLength(), 255u);
  EXPECT_EQ(s.OnLine("AUTH PLAIN").reply, "+ \r\n");
  EXPECT_GE(s.MaxLineLength(), 4096u);  // a SASL response is not a command line
  // A failed AUTH login answers like USER/PASS and the session goes on.
  const Step step = s.OnLine("AGJvYgBwdw==");
  ASSERT_EQ(step.action.index(), kAuth);
  EXPECT_EQ(s.OnAuthResult(absl::UnauthenticatedError("x"), {}).reply,
            "-ERR [AUTH] Authentication failed\r\n");
  EXPECT_EQ(s.state(), State::kAuthorization);
  EXPECT_EQ(s.MaxLineLength(), 255u);
}

// A SCRAM-SHA-256 client written from RFC 5802 against the session (the indexer's part, the
// proof check, is played by the test with the same arithmetic).
TEST(SessionTest, ScramSha256FullExchange) {
  const std::string salt = "0123456789abcdef";
  const sasl::ScramVerifier v = sasl::MakeScramVerifier("pencil", salt, 4096);
  for (bool initial_response : {true, false}) {
    SCOPED_TRACE(initial_response);
    Session s{Session::Options{}};  // no plaintext allowed: SCRAM still is
    const std::string client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    const std::string client_first = "n,," + client_first_bare;
    Step step;
    if (initial_response) {
      step = s.OnLine("AUTH SCRAM-SHA-256 " + sasl::Base64Encode(client_first));
    } else {
      EXPECT_EQ(s.OnLine("AUTH SCRAM-SHA-256").reply, "+ \r\n");
      step = s.OnLine(sasl::Base64Encode(client_first));
    }
    ASSERT_EQ(step.action.index(), kScram);
    EXPECT_EQ(std::get<ScramLookup>(step.action).user, "user");
    EXPECT_EQ(s.state(), State::kWaitScram);
    step = s.OnScramLookup(absl::OkStatus(), salt, 4096, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    ASSERT_EQ(step.reply.rfind("+ ", 0), 0u);
    const std::string server_first =
        *sasl::Base64Decode(step.reply.substr(2, step.reply.size() - 4));
    EXPECT_EQ(server_first, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=" +
                                sasl::Base64Encode(salt) + ",i=4096");
    // Client: proof from the password.
    const std::string without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
    const std::string salted = sasl::SaltedPassword("pencil", salt, 4096);
    const std::string client_key = sasl::HmacSha256(salted, "Client Key");
    const std::string proof =
        sasl::ClientProof(client_key, sasl::Sha256Bytes(client_key), auth_message);
    step = s.OnLine(sasl::Base64Encode(without_proof + ",p=" + sasl::Base64Encode(proof)));
    ASSERT_EQ(step.action.index(), kAuth);
    const AuthRequest& req = std::get<AuthRequest>(step.action);
    ASSERT_TRUE(req.scram.has_value());
    EXPECT_EQ(req.user, "user");
    EXPECT_TRUE(req.password.empty());
    EXPECT_EQ(req.scram->auth_message, auth_message);
    // The indexer's side: it verifies and signs.
    EXPECT_TRUE(sasl::VerifyClientProof(v, req.scram->auth_message, req.scram->proof));
    const std::string signature = sasl::ServerSignature(v.server_key, auth_message);
    step = s.OnAuthResult(absl::OkStatus(), FakeMaildrop(), signature);
    EXPECT_EQ(step.reply, "+ " + sasl::Base64Encode("v=" + sasl::Base64Encode(signature)) + "\r\n");
    EXPECT_EQ(s.state(), State::kSasl);
    step = s.OnLine("");
    EXPECT_EQ(step.reply, "+OK maildrop has 3 messages (600 octets)\r\n");
    EXPECT_EQ(s.state(), State::kTransaction);
  }
}

TEST(SessionTest, ScramErrors) {
  const std::string first = sasl::Base64Encode("n,,n=bob,r=abc");
  auto to_final = [&](Session& s) {
    s.OnLine("AUTH SCRAM-SHA-256 " + first);
    return s.OnScramLookup(absl::OkStatus(), "salt", 4096, "xyz");
  };
  {  // channel binding requested, or an authzid: refused
    Session s;
    EXPECT_EQ(
        s.OnLine("AUTH SCRAM-SHA-256 " + sasl::Base64Encode("p=tls-unique,,n=bob,r=abc")).reply,
        "-ERR Invalid SCRAM client-first message\r\n");
    EXPECT_EQ(s.OnLine("AUTH SCRAM-SHA-256 " + sasl::Base64Encode("n,a=eve,n=bob,r=abc")).reply,
              "-ERR Invalid SCRAM client-first message\r\n");
    EXPECT_EQ(s.state(), State::kAuthorization);
  }
  {  // the indexer cannot be asked: [SYS/TEMP], back to AUTHORIZATION
    Session s;
    s.OnLine("AUTH SCRAM-SHA-256 " + first);
    EXPECT_EQ(s.OnScramLookup(absl::UnavailableError("down"), "", 0, "")
                  .reply.rfind("-ERR [SYS/TEMP]", 0),
              0u);
    EXPECT_EQ(s.state(), State::kAuthorization);
  }
  {  // a nonce that is not ours
    Session s;
    to_final(s);
    EXPECT_EQ(
        s.OnLine(sasl::Base64Encode("c=biws,r=abcXXX,p=" + sasl::Base64Encode("proof"))).reply,
        "-ERR [AUTH] Authentication failed\r\n");
  }
  {  // a wrong channel-binding field
    Session s;
    to_final(s);
    EXPECT_EQ(
        s.OnLine(sasl::Base64Encode("c=eSws,r=abcxyz,p=" + sasl::Base64Encode("proof"))).reply,
        "-ERR [AUTH] Authentication failed\r\n");
  }
  {  // wrong proof: the indexer says UNAUTHENTICATED
    Session s;
    to_final(s);
    const Step step =
        s.OnLine(sasl::Base64Encode("c=biws,r=abcxyz,p=" + sasl::Base64Encode("proof")));
    ASSERT_EQ(step.action.index(), kAuth);
    EXPECT_EQ(s.OnAuthResult(absl::UnauthenticatedError("no"), {}).reply,
              "-ERR [AUTH] Authentication failed\r\n");
    EXPECT_EQ(s.state(), State::kAuthorization);
  }
  {  // the client refuses the server's signature: hang up (the lease is held)
    Session s;
    to_final(s);
    s.OnLine(sasl::Base64Encode("c=biws,r=abcxyz,p=" + sasl::Base64Encode("proof")));
    s.OnAuthResult(absl::OkStatus(), FakeMaildrop(), std::string(32, 's'));
    const Step step = s.OnLine("*");
    EXPECT_EQ(step.action.index(), kClose);
    EXPECT_EQ(s.state(), State::kClosed);
  }
  {  // a success without a signature would skip the server's proof: refused
    Session s;
    to_final(s);
    s.OnLine(sasl::Base64Encode("c=biws,r=abcxyz,p=" + sasl::Base64Encode("proof")));
    EXPECT_EQ(s.OnAuthResult(absl::OkStatus(), FakeMaildrop()).action.index(), kClose);
  }
}

TEST(ChallengeDigest, RfcExamples) {
  // RFC 1939 §7 and RFC 2195 §2.
  EXPECT_EQ(sasl::ApopDigest("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"),
            "c4c9334bac560ecc979e58001b3e22fb");
  EXPECT_EQ(sasl::CramMd5Digest("<1896.697170952@postoffice.reston.mci.net>", "tanstaaftanstaaf"),
            "b913a602c7eda7a495b4e6e7334d3890");
}

TEST(SessionTest, ApopAndCramMd5) {
  Session::Options o;  // no plaintext: neither shows the password, so both are allowed
  o.apop_timestamp = "<1896.697170952@dbc.mtview.ca.us>";
  {
    Session s(o);
    EXPECT_EQ(s.Greeting(), "+OK Poplar ready <1896.697170952@dbc.mtview.ca.us>\r\n");
    EXPECT_NE(s.OnLine("CAPA").reply.find("SASL SCRAM-SHA-256 CRAM-MD5\r\n"), std::string::npos);
    const Step step = s.OnLine("APOP mrose C4C9334BAC560ECC979E58001B3E22FB");
    ASSERT_EQ(step.action.index(), kAuth);
    const AuthRequest& r = std::get<AuthRequest>(step.action);
    EXPECT_EQ(r.user, "mrose");
    ASSERT_TRUE(r.challenge.has_value());
    EXPECT_EQ(r.challenge->kind, ChallengeDigest::Kind::kApop);
    EXPECT_EQ(r.challenge->challenge, o.apop_timestamp);
    EXPECT_EQ(r.challenge->digest, "c4c9334bac560ecc979e58001b3e22fb");
    EXPECT_EQ(s.OnAuthResult(absl::UnauthenticatedError("x"), {}).reply,
              "-ERR [AUTH] Authentication failed\r\n");
  }
  for (const char* bad :
       {"APOP mrose", "APOP mrose c4c9", "APOP mrose zzc9334bac560ecc979e58001b3e22fb",
        "APOP a b c4c9334bac560ecc979e58001b3e22fb"}) {
    Session s(o);
    EXPECT_EQ(s.OnLine(bad).reply, "-ERR Usage: APOP name digest\r\n") << bad;
  }
  {
    Session s(o);
    EXPECT_EQ(s.OnLine("AUTH CRAM-MD5").reply,
              "+ " + sasl::Base64Encode(o.apop_timestamp) + "\r\n");
    const Step step = s.OnLine(sasl::Base64Encode("tim b913a602c7eda7a495b4e6e7334d3890"));
    ASSERT_EQ(step.action.index(), kAuth);
    const AuthRequest& r = std::get<AuthRequest>(step.action);
    EXPECT_EQ(r.user, "tim");
    EXPECT_EQ(r.challenge->kind, ChallengeDigest::Kind::kCramMd5);
    EXPECT_EQ(r.challenge->challenge, o.apop_timestamp);
  }
  {
    Session s(o);
    s.OnLine("AUTH CRAM-MD5");
    EXPECT_EQ(s.OnLine(sasl::Base64Encode("tim nothex")).reply,
              "-ERR [AUTH] Authentication failed\r\n");
    EXPECT_EQ(s.state(), State::kAuthorization);
  }
  {  // without a timestamp neither is offered
    Session s{Session::Options{}};
    EXPECT_EQ(s.Greeting(), "+OK Poplar ready\r\n");
    EXPECT_EQ(s.OnLine("AUTH CRAM-MD5").reply, "-ERR Unrecognized authentication mechanism\r\n");
    EXPECT_EQ(s.OnLine("CAPA").reply.find("CRAM-MD5"), std::string::npos);
  }
}

TEST(SessionTest, EmptyMaildrop) {
  Session s(Plaintext());
  s.OnLine("USER bob");
  s.OnLine("PASS pw");
  EXPECT_EQ(s.OnAuthResult(absl::OkStatus(), Maildrop{}).reply,
            "+OK maildrop has 0 messages (0 octets)\r\n");
  EXPECT_EQ(s.OnLine("STAT").reply, "+OK 0 0\r\n");
  EXPECT_EQ(s.OnLine("LIST").reply, "+OK 0 messages (0 octets)\r\n.\r\n");
  EXPECT_EQ(s.OnLine("UIDL").reply, "+OK\r\n.\r\n");
  EXPECT_EQ(s.OnLine("RETR 1").reply, "-ERR No such message\r\n");
}

}  // namespace
}  // namespace poplar::pop3
