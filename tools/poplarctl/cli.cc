#include "tools/poplarctl/cli.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/util/host_port.h"
#include "common/util/strings.h"

namespace poplar::poplarctl {
namespace {

constexpr std::string_view kUsage =
    R"(usage: poplarctl [--socket PATH | --address HOST:PORT] [--json] [--timeout SECONDS] COMMAND ...

Administers a running poplar-indexer through its Admin gRPC API. poplarctl never opens the
index database or the spool itself; the indexer socket's permissions decide who may use it.

Commands:
  accounts add USER [--password-stdin | --crypt HASH] [--mailbox PATH]
                        create an account; the password is read from stdin (one line), or
                        prompted for without echo when stdin is a terminal; --crypt imports an
                        existing crypt(3) hash ("$y$...", "$6$...") instead
  accounts passwd USER [--password-stdin | --crypt HASH]
                        replace an account's password (read as for accounts add)
  accounts apop USER [--password-stdin | --remove]
                        set (read as for accounts add) or remove the account's APOP and
                        CRAM-MD5 secret: plaintext-equivalent by those protocols' design, so
                        opt-in per account and kept apart from the password
  accounts remove USER  delete an account (its mailbox is left alone)
  accounts list         list accounts
  mailboxes list        list indexed mailboxes with message counts and index state
  mailboxes show PATH|USER [--from N] [--limit N]
                        one mailbox's summary and messages (UIDLs, sizes, senders)
  reindex [PATH|USER]   re-index one mailbox, or all; shows progress on stderr
  verify [PATH|USER]    compare the index with a fresh scan of the file(s)
  sessions list         list open POP3 sessions (maildrop leases)
  sessions end SESSION_ID
                        end a session and release its maildrop lease
  status                the indexer's counters: mailboxes, messages, index lag, sessions
  help                  this text

Migration (no indexer needed; first on the command line; MIGRATING.md):
  migrate check --from qpopper|dovecot [--spool DIR] [--old-style-uid] [--server-mode]
                [--no-content-length] [--json] [SPOOL_DIR|MBOX|USER ...]
                        per mailbox, how many UIDLs would change under that scheme (exit 4 if any)
  migrate config QPOPPER_CONFIG [QPOPPER_FLAGS...]
                        Poplar's indexer and popd configs for a Qpopper site, and every option
                        with no equivalent and why

Options:
  --socket PATH         the indexer's unix socket (default /run/poplar/indexer.sock)
  --address HOST:PORT   the indexer's TCP address instead of the socket
  --json                print one JSON document (field names as in admin.proto)
  --timeout SECONDS     deadline for each call (default 30; reindex: none unless given)
  --                    end of options

Exit status: 0 ok; 1 the indexer refused the request (no such user, already exists, invalid
argument, ...); 2 usage error; 3 the indexer is unreachable, unavailable or did not answer in
time; 4 verify found problems (migrate check: some UIDL would change).
)";

struct VerbSpec {
  std::string_view first;
  std::string_view second;  // empty: a one-word command
  Verb verb;
  size_t min_operands;
  size_t max_operands;
  std::string_view operand_name;  // for "missing USER"
};

constexpr VerbSpec kVerbs[] = {
    {"accounts", "add", Verb::kAccountsAdd, 1, 1, "USER"},
    {"accounts", "passwd", Verb::kAccountsPasswd, 1, 1, "USER"},
    {"accounts", "apop", Verb::kAccountsApop, 1, 1, "USER"},
    {"accounts", "remove", Verb::kAccountsRemove, 1, 1, "USER"},
    {"accounts", "list", Verb::kAccountsList, 0, 0, ""},
    {"mailboxes", "list", Verb::kMailboxesList, 0, 0, ""},
    {"mailboxes", "show", Verb::kMailboxesShow, 1, 1, "PATH or USER"},
    {"reindex", "", Verb::kReindex, 0, 1, "PATH or USER"},
    {"verify", "", Verb::kVerify, 0, 1, "PATH or USER"},
    {"sessions", "list", Verb::kSessionsList, 0, 0, ""},
    {"sessions", "end", Verb::kSessionsEnd, 1, 1, "SESSION_ID"},
    {"status", "", Verb::kStatus, 0, 0, ""},
    {"help", "", Verb::kHelp, 0, SIZE_MAX, ""},
};

struct OptionSpec {
  std::string_view name;
  bool takes_value;
  // Commands that accept the option; empty: a global option, accepted with every command.
  std::initializer_list<Verb> verbs;
};

const OptionSpec kOptions[] = {
    {"--socket", true, {}},
    {"--address", true, {}},
    {"--json", false, {}},
    {"--timeout", true, {}},
    {"--help", false, {}},
    {"--password-stdin", false, {Verb::kAccountsAdd, Verb::kAccountsPasswd, Verb::kAccountsApop}},
    {"--remove", false, {Verb::kAccountsApop}},
    {"--crypt", true, {Verb::kAccountsAdd, Verb::kAccountsPasswd}},
    {"--mailbox", true, {Verb::kAccountsAdd}},
    {"--from", true, {Verb::kMailboxesShow}},
    {"--limit", true, {Verb::kMailboxesShow}},
};

const OptionSpec* FindOption(std::string_view name) {
  for (const OptionSpec& spec : kOptions) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::Status Usage(std::string_view command, std::string_view message) {
  if (command.empty()) return absl::InvalidArgumentError(Absl(message));
  return absl::InvalidArgumentError(absl::StrCat(Absl(command), ": ", Absl(message)));
}

// Seconds as a positive decimal number ("30", "0.5"), at most a year.
std::optional<absl::Duration> ParseSeconds(std::string_view text) {
  double seconds = 0;
  if (!absl::SimpleAtod(Absl(text), &seconds) || !std::isfinite(seconds) || seconds <= 0 ||
      seconds > 365.0 * 86400) {
    return std::nullopt;
  }
  return absl::Seconds(seconds);
}

std::optional<uint32_t> ParseCount(std::string_view text) {
  uint32_t n = 0;
  if (text.empty() || text[0] == '+' || text[0] == '-' || !absl::SimpleAtoi(Absl(text), &n) ||
      n == 0) {
    return std::nullopt;
  }
  return n;
}

}  // namespace

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) return kExitUnreachable;
  return kExitRefused;
}

std::string_view VerbName(Verb verb) {
  switch (verb) {
    case Verb::kHelp:
      return "help";
    case Verb::kAccountsAdd:
      return "accounts add";
    case Verb::kAccountsPasswd:
      return "accounts passwd";
    case Verb::kAccountsApop:
      return "accounts apop";
    case Verb::kAccountsRemove:
      return "accounts remove";
    case Verb::kAccountsList:
      return "accounts list";
    case Verb::kMailboxesList:
      return "mailboxes list";
    case Verb::kMailboxesShow:
      return "mailboxes show";
    case Verb::kReindex:
      return "reindex";
    case Verb::kVerify:
      return "verify";
    case Verb::kSessionsList:
      return "sessions list";
    case Verb::kSessionsEnd:
      return "sessions end";
    case Verb::kStatus:
      return "status";
  }
  return "?";
}

std::optional<absl::Duration> RpcTimeout(const Command& command) {
  if (command.timeout.has_value()) return command.timeout;
  if (command.verb == Verb::kReindex) return std::nullopt;
  return kDefaultTimeout;
}

std::string_view UsageText() { return kUsage; }

namespace {

// Pass 1: split into positionals and options (name -> value), wherever they appear.
struct SplitArgs {
  std::vector<std::string> positionals;
  std::vector<std::pair<const OptionSpec*, std::string>> options;
  bool help = false;
};
absl::StatusOr<SplitArgs> SplitArguments(const std::vector<std::string>& args) {
  SplitArgs out;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (options_ended || arg.empty() || arg[0] != '-' || arg == "-") {
      out.positionals.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h") {
      out.help = true;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (size_t eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("--")) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const OptionSpec* spec = FindOption(name);
    if (spec == nullptr) return Usage("", absl::StrCat("unknown option ", Absl(name)));
    std::string value;
    if (spec->takes_value) {
      if (inline_value.has_value()) {
        value = std::string(*inline_value);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Usage("", absl::StrCat(Absl(name), " needs a value"));
      }
    } else if (inline_value.has_value()) {
      return Usage("", absl::StrCat(Absl(name), " takes no value"));
    }
    if (spec->name == "--help") {
      out.help = true;
      continue;
    }
    for (const auto& [seen, unused] : out.options) {
      if (seen == spec) return Usage("", absl::StrCat(Absl(name), " given more than once"));
    }
    out.options.emplace_back(spec, std::move(value));
  }
  return out;
}

// Pass 2: the command words (one or two) -> the verb's spec; *words says how many were used.
absl::StatusOr<const VerbSpec*> FindVerb(const std::vector<std::string>& p, size_t* words) {
  if (p.empty()) return Usage("", "missing command");
  const VerbSpec* verb = nullptr;
  *words = 1;
  bool known_first = false;
  for (const VerbSpec& spec : kVerbs) {
    if (spec.first != p[0]) continue;
    known_first = true;
    if (spec.second.empty()) {
      verb = &spec;
      break;
    }
    if (p.size() > 1 && spec.second == p[1]) {
      verb = &spec;
      *words = 2;
      break;
    }
  }
  if (!known_first) {
    return Usage("", absl::StrCat("unknown command \"", p[0], "\""));
  }
  if (verb == nullptr) {
    std::string subcommands;
    for (const VerbSpec& spec : kVerbs) {
      if (spec.first != p[0]) continue;
      absl::StrAppend(&subcommands, subcommands.empty() ? "" : ", ", Absl(spec.second));
    }
    if (p.size() < 2) {
      return Usage(p[0], absl::StrCat("missing subcommand (", subcommands, ")"));
    }
    return Usage(p[0],
                 absl::StrCat("unknown subcommand \"", p[1], "\" (expected ", subcommands, ")"));
  }
  return verb;
}

// Pass 3: the options, now that the command is known.
absl::Status ApplyOptions(const std::vector<std::pair<const OptionSpec*, std::string>>& options,
                          std::string_view name, Command* command) {
  bool socket_given = false;
  bool address_given = false;
  bool password_stdin = false;
  bool remove_given = false;
  bool crypt_given = false;
  for (const auto& [spec, value] : options) {
    if (spec->verbs.size() > 0 &&
        std::find(spec->verbs.begin(), spec->verbs.end(), command->verb) == spec->verbs.end()) {
      return Usage(name, absl::StrCat(Absl(spec->name), " is not an option of this command"));
    }
    std::string_view option = spec->name;
    if (option == "--socket") {
      if (value.empty()) return Usage(name, "--socket needs a path");
      command->target = "unix:" + value;
      socket_given = true;
    } else if (option == "--address") {
      if (!SplitHostPort(value)) {
        return Usage(name, absl::StrCat("--address wants HOST:PORT, not \"", value, "\""));
      }
      command->target = value;
      address_given = true;
    } else if (option == "--json") {
      command->json = true;
    } else if (option == "--timeout") {
      command->timeout = ParseSeconds(value);
      if (!command->timeout.has_value()) {
        return Usage(name, absl::StrCat("--timeout wants a positive number of seconds, not \"",
                                        value, "\""));
      }
    } else if (option == "--password-stdin") {
      password_stdin = true;
    } else if (option == "--remove") {
      remove_given = true;
    } else if (option == "--crypt") {
      if (value.empty()) return Usage(name, "--crypt needs a hash");
      command->crypt_hash = value;
      crypt_given = true;
    } else if (option == "--mailbox") {
      if (value.empty()) return Usage(name, "--mailbox needs a path");
      command->mailbox = value;
    } else if (option == "--from" || option == "--limit") {
      std::optional<uint32_t> n = ParseCount(value);
      if (!n.has_value()) {
        return Usage(
            name, absl::StrCat(Absl(option), " wants a number from 1 to 4294967295, not \"", value,
                               "\""));
      }
      (option == "--from" ? command->from : command->limit) = *n;
    }
  }
  if (socket_given && address_given) return Usage(name, "give --socket or --address, not both");
  if (password_stdin && crypt_given) {
    return Usage(name, "give --password-stdin or --crypt, not both");
  }
  if (command->verb == Verb::kAccountsAdd || command->verb == Verb::kAccountsPasswd) {
    command->credential = crypt_given ? CredentialSource::kCrypt : CredentialSource::kPassword;
  }
  if (command->verb == Verb::kAccountsApop) {
    if (password_stdin && remove_given)
      return Usage(name, "give --password-stdin or --remove, not both");
    command->credential = remove_given ? CredentialSource::kNone : CredentialSource::kPassword;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Command> ParseCommandLine(const std::vector<std::string>& args) {
  absl::StatusOr<SplitArgs> split = SplitArguments(args);
  if (!split.ok()) return split.status();
  Command command;
  if (split->help) {
    command.verb = Verb::kHelp;
    return command;
  }
  const std::vector<std::string>& positionals = split->positionals;
  size_t words = 1;
  absl::StatusOr<const VerbSpec*> found = FindVerb(positionals, &words);
  if (!found.ok()) return found.status();
  const VerbSpec* verb = *found;
  command.verb = verb->verb;
  if (command.verb == Verb::kHelp) return command;
  std::string_view name = VerbName(command.verb);

  std::vector<std::string> operands(positionals.begin() + static_cast<ptrdiff_t>(words),
                                    positionals.end());
  if (operands.size() < verb->min_operands) {
    return Usage(name, absl::StrCat("missing ", Absl(verb->operand_name)));
  }
  if (operands.size() > verb->max_operands) {
    return Usage(name, absl::StrCat("unexpected argument \"", operands[verb->max_operands], "\""));
  }
  if (!operands.empty()) {
    if (operands[0].empty()) {
      return Usage(name, absl::StrCat("empty ", Absl(verb->operand_name)));
    }
    command.operand = operands[0];
  }

  if (absl::Status s = ApplyOptions(split->options, name, &command); !s.ok()) return s;
  return command;
}

}  // namespace poplar::poplarctl
