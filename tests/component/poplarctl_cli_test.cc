// poplarctl's command line (tools/poplarctl/cli.h): every command, its options and operands, and
// the usage errors, as tables.
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/poplarctl/cli.h"
#include "tools/poplarctl/terminal.h"

namespace poplar::poplarctl {

void PrintTo(const Command& c, std::ostream* os) {
  *os << "{verb=" << VerbName(c.verb) << " target=" << c.target << " json=" << c.json
      << " timeout=" << (c.timeout ? absl::FormatDuration(*c.timeout) : "none")
      << " operand=" << c.operand << " credential=" << static_cast<int>(c.credential)
      << " crypt=" << c.crypt_hash << " mailbox=" << c.mailbox << " from=" << c.from
      << " limit=" << c.limit << "}";
}

namespace {

using ::testing::HasSubstr;

const std::string kDefaultTarget = "unix:/run/poplar/indexer.sock";

Command Make(Verb verb, std::string operand = "") {
  Command c;
  c.verb = verb;
  c.operand = std::move(operand);
  if (verb == Verb::kAccountsAdd || verb == Verb::kAccountsPasswd) {
    c.credential = CredentialSource::kPassword;
  }
  return c;
}

template <typename F>
Command With(Command c, F f) {
  f(c);
  return c;
}

struct GoodCase {
  std::vector<std::string> args;
  Command want;
};

class ParseGood : public ::testing::TestWithParam<GoodCase> {};

TEST_P(ParseGood, Parses) {
  absl::StatusOr<Command> got = ParseCommandLine(GetParam().args);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Commands, ParseGood,
    ::testing::Values(
        GoodCase{{"status"}, Make(Verb::kStatus)}, GoodCase{{"help"}, Make(Verb::kHelp)},
        GoodCase{{"help", "accounts", "add"}, Make(Verb::kHelp)},
        GoodCase{{"--help"}, Make(Verb::kHelp)}, GoodCase{{"-h"}, Make(Verb::kHelp)},
        GoodCase{{"accounts", "remove", "--help"}, Make(Verb::kHelp)},
        GoodCase{{"accounts", "add", "alice"}, Make(Verb::kAccountsAdd, "alice")},
        GoodCase{{"accounts", "add", "alice", "--password-stdin"},
                 Make(Verb::kAccountsAdd, "alice")},
        GoodCase{{"accounts", "add", "--password-stdin", "alice"},
                 Make(Verb::kAccountsAdd, "alice")},
        GoodCase{
            {"accounts", "add", "alice", "--crypt", "$6$salt$hash", "--mailbox", "/var/mail/alice"},
            With(Make(Verb::kAccountsAdd, "alice"),
                 [](Command& c) {
                   c.credential = CredentialSource::kCrypt;
                   c.crypt_hash = "$6$salt$hash";
                   c.mailbox = "/var/mail/alice";
                 })},
        GoodCase{
            {"accounts", "add", "alice", "--mailbox=/srv/mail/a"},
            With(Make(Verb::kAccountsAdd, "alice"), [](Command& c) { c.mailbox = "/srv/mail/a"; })},
        GoodCase{{"accounts", "passwd", "bob"}, Make(Verb::kAccountsPasswd, "bob")},
        GoodCase{{"accounts", "passwd", "bob", "--crypt=$y$j9T$x$y"},
                 With(Make(Verb::kAccountsPasswd, "bob"),
                      [](Command& c) {
                        c.credential = CredentialSource::kCrypt;
                        c.crypt_hash = "$y$j9T$x$y";
                      })},
        GoodCase{{"accounts", "remove", "bob"}, Make(Verb::kAccountsRemove, "bob")},
        GoodCase{{"accounts", "list"}, Make(Verb::kAccountsList)},
        GoodCase{{"mailboxes", "list"}, Make(Verb::kMailboxesList)},
        GoodCase{{"mailboxes", "show", "alice"}, Make(Verb::kMailboxesShow, "alice")},
        GoodCase{{"mailboxes", "show", "/var/mail/alice", "--from", "10", "--limit", "5"},
                 With(Make(Verb::kMailboxesShow, "/var/mail/alice"),
                      [](Command& c) {
                        c.from = 10;
                        c.limit = 5;
                      })},
        GoodCase{
            {"mailboxes", "show", "--limit=4294967295", "alice"},
            With(Make(Verb::kMailboxesShow, "alice"), [](Command& c) { c.limit = 4294967295u; })},
        GoodCase{{"reindex"}, Make(Verb::kReindex)},
        GoodCase{{"reindex", "alice"}, Make(Verb::kReindex, "alice")},
        GoodCase{{"verify"}, Make(Verb::kVerify)},
        GoodCase{{"verify", "/var/mail/bob"}, Make(Verb::kVerify, "/var/mail/bob")},
        GoodCase{{"sessions", "list"}, Make(Verb::kSessionsList)},
        GoodCase{{"sessions", "end", "7f3a-01"}, Make(Verb::kSessionsEnd, "7f3a-01")},
        // Global options, before or after the command words.
        GoodCase{{"--json", "accounts", "list"},
                 With(Make(Verb::kAccountsList), [](Command& c) { c.json = true; })},
        GoodCase{{"accounts", "list", "--json"},
                 With(Make(Verb::kAccountsList), [](Command& c) { c.json = true; })},
        GoodCase{
            {"--socket", "/tmp/x/indexer.sock", "status"},
            With(Make(Verb::kStatus), [](Command& c) { c.target = "unix:/tmp/x/indexer.sock"; })},
        GoodCase{{"status", "--socket=rel.sock"},
                 With(Make(Verb::kStatus), [](Command& c) { c.target = "unix:rel.sock"; })},
        GoodCase{{"--address", "127.0.0.1:7070", "status"},
                 With(Make(Verb::kStatus), [](Command& c) { c.target = "127.0.0.1:7070"; })},
        GoodCase{{"--address=[::1]:7070", "status"},
                 With(Make(Verb::kStatus), [](Command& c) { c.target = "[::1]:7070"; })},
        GoodCase{
            {"--timeout", "2.5", "verify"},
            With(Make(Verb::kVerify), [](Command& c) { c.timeout = absl::Milliseconds(2500); })},
        GoodCase{{"reindex", "--timeout=600"},
                 With(Make(Verb::kReindex), [](Command& c) { c.timeout = absl::Seconds(600); })},
        // "--" ends the options: an operand may then start with '-'.
        GoodCase{{"mailboxes", "show", "--", "-odd"}, Make(Verb::kMailboxesShow, "-odd")}));

struct BadCase {
  std::vector<std::string> args;
  std::string message;  // the whole message: one line, naming the command when known
};

class ParseBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseBad, IsAUsageError) {
  absl::StatusOr<Command> got = ParseCommandLine(GetParam().args);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_EQ(got.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, ParseBad,
    ::testing::Values(
        BadCase{{}, "missing command"}, BadCase{{"frobnicate"}, "unknown command \"frobnicate\""},
        BadCase{{"account", "list"}, "unknown command \"account\""},
        BadCase{{"accounts"}, "accounts: missing subcommand (add, passwd, apop, remove, list)"},
        BadCase{{"accounts", "apop"}, "accounts apop: missing USER"},
        BadCase{{"accounts", "apop", "alice", "--password-stdin", "--remove"},
                "accounts apop: give --password-stdin or --remove, not both"},
        BadCase{{"accounts", "apop", "alice", "--crypt", "x"},
                "accounts apop: --crypt is not an option of this command"},
        BadCase{{"accounts", "passwd", "alice", "--remove"},
                "accounts passwd: --remove is not an option of this command"},
        BadCase{{"mailboxes"}, "mailboxes: missing subcommand (list, show)"},
        BadCase{{"sessions", "kill", "x"},
                "sessions: unknown subcommand \"kill\" (expected list, end)"},
        BadCase{{"accounts", "add"}, "accounts add: missing USER"},
        BadCase{{"accounts", "passwd"}, "accounts passwd: missing USER"},
        BadCase{{"accounts", "remove"}, "accounts remove: missing USER"},
        BadCase{{"accounts", "add", "alice", "bob"}, "accounts add: unexpected argument \"bob\""},
        BadCase{{"accounts", "list", "alice"}, "accounts list: unexpected argument \"alice\""},
        BadCase{{"accounts", "add", ""}, "accounts add: empty USER"},
        // A password never comes from argv.
        BadCase{{"accounts", "add", "alice", "--password", "secret"}, "unknown option --password"},
        BadCase{{"accounts", "add", "alice", "--password-stdin", "--crypt", "$6$a$b"},
                "accounts add: give --password-stdin or --crypt, not both"},
        BadCase{{"accounts", "add", "alice", "--crypt"}, "--crypt needs a value"},
        BadCase{{"accounts", "add", "alice", "--crypt="}, "accounts add: --crypt needs a hash"},
        BadCase{{"accounts", "add", "alice", "--mailbox", ""},
                "accounts add: --mailbox needs a path"},
        BadCase{{"accounts", "passwd", "alice", "--mailbox", "/x"},
                "accounts passwd: --mailbox is not an option of this command"},
        BadCase{{"accounts", "remove", "alice", "--crypt", "x"},
                "accounts remove: --crypt is not an option of this command"},
        BadCase{{"accounts", "list", "--password-stdin"},
                "accounts list: --password-stdin is not an option of this command"},
        BadCase{{"mailboxes", "show"}, "mailboxes show: missing PATH or USER"},
        BadCase{{"mailboxes", "show", "a", "--from", "0"},
                "mailboxes show: --from wants a number from 1 to 4294967295, not \"0\""},
        BadCase{{"mailboxes", "show", "a", "--from", "-3"},
                "mailboxes show: --from wants a number from 1 to 4294967295, not \"-3\""},
        BadCase{{"mailboxes", "show", "a", "--limit", "ten"},
                "mailboxes show: --limit wants a number from 1 to 4294967295, not \"ten\""},
        BadCase{{"mailboxes", "show", "a", "--limit", "4294967296"},
                "mailboxes show: --limit wants a number from 1 to 4294967295, not \"4294967296\""},
        BadCase{{"mailboxes", "list", "--limit", "3"},
                "mailboxes list: --limit is not an option of this command"},
        BadCase{{"reindex", "a", "b"}, "reindex: unexpected argument \"b\""},
        BadCase{{"verify", "a", "b"}, "verify: unexpected argument \"b\""},
        BadCase{{"sessions", "end"}, "sessions end: missing SESSION_ID"},
        BadCase{{"sessions", "list", "x"}, "sessions list: unexpected argument \"x\""},
        BadCase{{"status", "now"}, "status: unexpected argument \"now\""},
        BadCase{{"-x", "status"}, "unknown option -x"},
        BadCase{{"--verbose", "status"}, "unknown option --verbose"},
        BadCase{{"--socket", "/a", "--address", "h:1", "status"},
                "status: give --socket or --address, not both"},
        BadCase{{"--socket=", "status"}, "status: --socket needs a path"},
        BadCase{{"--address", "indexer", "status"},
                "status: --address wants HOST:PORT, not \"indexer\""},
        BadCase{{"--address", "indexer:", "status"},
                "status: --address wants HOST:PORT, not \"indexer:\""},
        // The one host:port rule (common/util/host_port.h); these passed the old check.
        BadCase{{"--address", "indexer:http", "status"},
                "status: --address wants HOST:PORT, not \"indexer:http\""},
        BadCase{{"--address", "::1:7070", "status"},
                "status: --address wants HOST:PORT, not \"::1:7070\""},
        BadCase{{"--timeout", "0", "status"},
                "status: --timeout wants a positive number of seconds, not \"0\""},
        BadCase{{"--timeout", "-1", "status"},
                "status: --timeout wants a positive number of seconds, not \"-1\""},
        BadCase{{"--timeout", "soon", "status"},
                "status: --timeout wants a positive number of seconds, not \"soon\""},
        BadCase{{"--timeout", "nan", "status"},
                "status: --timeout wants a positive number of seconds, not \"nan\""},
        BadCase{{"--timeout", "inf", "status"},
                "status: --timeout wants a positive number of seconds, not \"inf\""},
        BadCase{{"status", "--timeout"}, "--timeout needs a value"},
        BadCase{{"--json=yes", "status"}, "--json takes no value"},
        BadCase{{"--json", "status", "--json"}, "--json given more than once"},
        BadCase{{"--timeout", "1", "--timeout", "2", "status"}, "--timeout given more than once"}));

TEST(RpcTimeout, DefaultIsThirtySecondsButReindexHasNone) {
  EXPECT_EQ(RpcTimeout(Make(Verb::kStatus)), absl::Seconds(30));
  EXPECT_EQ(RpcTimeout(Make(Verb::kVerify)), absl::Seconds(30));
  EXPECT_EQ(RpcTimeout(Make(Verb::kReindex)), std::nullopt);
  Command reindex = Make(Verb::kReindex);
  reindex.timeout = absl::Seconds(5);
  EXPECT_EQ(RpcTimeout(reindex), absl::Seconds(5));
  Command status = Make(Verb::kStatus);
  status.timeout = absl::Milliseconds(250);
  EXPECT_EQ(RpcTimeout(status), absl::Milliseconds(250));
}

TEST(ExitCodeFor, ClassifiesEveryCanonicalCode) {
  struct Case {
    absl::StatusCode code;
    int exit;
  };
  const Case cases[] = {
      {absl::StatusCode::kOk, 0},
      {absl::StatusCode::kNotFound, 1},
      {absl::StatusCode::kAlreadyExists, 1},
      {absl::StatusCode::kInvalidArgument, 1},
      {absl::StatusCode::kFailedPrecondition, 1},
      {absl::StatusCode::kResourceExhausted, 1},
      {absl::StatusCode::kPermissionDenied, 1},
      {absl::StatusCode::kUnimplemented, 1},
      {absl::StatusCode::kInternal, 1},
      {absl::StatusCode::kUnavailable, 3},
      {absl::StatusCode::kDeadlineExceeded, 3},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ExitCodeFor(absl::Status(c.code, c.code == absl::StatusCode::kOk ? "" : "x")), c.exit)
        << absl::StatusCodeToString(c.code);
  }
}

TEST(UsageText, MentionsEveryCommandAndExitCode) {
  std::string usage(UsageText());
  for (const char* word : {"accounts add",  "accounts passwd",  "accounts remove", "accounts list",
                           "accounts apop", "mailboxes list",   "mailboxes show",  "reindex",
                           "verify",        "sessions list",    "sessions end",    "status",
                           "help",          "--socket",         "--address",       "--json",
                           "--timeout",     "--password-stdin", "--crypt",         "--mailbox",
                           "--from",        "--limit",          "Exit status"}) {
    EXPECT_THAT(usage, HasSubstr(word));
  }
}

struct PasswordCase {
  std::string input;
  std::string want;  // empty: an error
};

class PasswordLine : public ::testing::TestWithParam<PasswordCase> {};

TEST_P(PasswordLine, ReadsOneLine) {
  std::istringstream in(GetParam().input);
  absl::StatusOr<std::string> got = ReadPasswordLine(in);
  if (GetParam().want.empty()) {
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  } else {
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, GetParam().want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Stdin, PasswordLine,
    ::testing::Values(PasswordCase{"hunter2\n", "hunter2"},
                      PasswordCase{"hunter2", "hunter2"},               // no newline at EOF
                      PasswordCase{"hunter2\r\n", "hunter2"},           // from a DOS file
                      PasswordCase{"two words \n", "two words "},       // spaces are kept
                      PasswordCase{"first\nsecond\n", "first"},         // only the first line
                      PasswordCase{"", ""},                             // nothing at all
                      PasswordCase{"\n", ""},                           // an empty line
                      PasswordCase{std::string(4097, 'x') + "\n", ""},  // too long
                      PasswordCase{std::string(4096, 'x'), std::string(4096, 'x')}));

TEST(Wipe, ZeroesAndEmpties) {
  std::string secret = "hunter2";
  Wipe(secret);
  EXPECT_TRUE(secret.empty());
}

}  // namespace
}  // namespace poplar::poplarctl
