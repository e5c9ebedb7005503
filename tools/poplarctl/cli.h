// poplarctl's command line: parsing argv into a Command, the usage text, and the exit codes.
// Pure: no I/O, no gRPC.
//
//   poplarctl [--socket PATH | --address HOST:PORT] [--json] [--timeout SECONDS] COMMAND ...
//
// Global options may appear anywhere on the line (before or after the command words); `--`
// ends option parsing, so a positional argument may start with '-'. Every option that takes a
// value accepts both `--opt VALUE` and `--opt=VALUE`. A password is never taken from argv (it
// would be visible in ps): accounts add/passwd read it from stdin (see terminal.h).
#ifndef POPLAR_TOOLS_POPLARCTL_CLI_H_
#define POPLAR_TOOLS_POPLARCTL_CLI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace poplar::poplarctl {

inline constexpr std::string_view kDefaultSocket = "/run/poplar/indexer.sock";
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(30);

// Exit codes (documented in the usage text; scripts depend on them).
enum ExitCode : int {
  kExitOk = 0,
  kExitRefused = 1,      // the indexer answered with an error (NOT_FOUND, ALREADY_EXISTS, ...)
  kExitUsage = 2,        // bad command line or bad input (empty password, ...)
  kExitUnreachable = 3,  // indexer unreachable, UNAVAILABLE, or the deadline passed
  kExitProblems = 4,     // verify found problems
};

// The single classification of an RPC outcome into an exit code (style P7).
int ExitCodeFor(const absl::Status& status);

enum class Verb {
  kHelp,
  kAccountsAdd,
  kAccountsPasswd,
  kAccountsApop,
  kAccountsRemove,
  kAccountsList,
  kMailboxesList,
  kMailboxesShow,
  kReindex,
  kVerify,
  kSessionsList,
  kSessionsEnd,
  kStatus,
};

// "accounts add", "reindex", ...: how error messages name the command.
std::string_view VerbName(Verb verb);

// How accounts add/passwd get the new credential.
enum class CredentialSource {
  kNone,      // the command takes no credential
  kPassword,  // a password read from stdin (prompted without echo if stdin is a terminal)
  kCrypt,     // an existing crypt(3) hash given with --crypt
};

struct Command {
  Verb verb = Verb::kHelp;
  // gRPC target: "unix:PATH" for --socket (the default), "HOST:PORT" for --address.
  std::string target = "unix:" + std::string(kDefaultSocket);
  bool json = false;
  // --timeout as given; nullopt if absent. Use RpcTimeout() for the effective deadline.
  std::optional<absl::Duration> timeout;

  // The positional operand: USER (accounts *), PATH|USER (mailboxes show, reindex, verify;
  // empty means all mailboxes for reindex/verify), SESSION_ID (sessions end).
  std::string operand;
  CredentialSource credential = CredentialSource::kNone;
  std::string crypt_hash;  // --crypt
  std::string mailbox;     // accounts add --mailbox; empty: the spool's place for the user
  // mailboxes show paging: first message number shown (1-based) and how many (0: all).
  uint32_t from = 1;
  uint32_t limit = 0;

  bool operator==(const Command&) const = default;
};

// The deadline of every RPC of `command`: --timeout if given, else kDefaultTimeout, except that
// reindex (which may legitimately run for hours) has none unless --timeout is given.
std::optional<absl::Duration> RpcTimeout(const Command& command);

// Parses argv[1..]. InvalidArgument with a one-line message (naming the command when one was
// recognised) for anything wrong: unknown command or option, missing or extra operands,
// conflicting options, bad numbers.
absl::StatusOr<Command> ParseCommandLine(const std::vector<std::string>& args);

// The full usage text, for `poplarctl help` (stdout) and usage errors (stderr).
std::string_view UsageText();

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_CLI_H_
