// POP3 command-line syntax: the pure, state-free half of the command dispatcher (style P3).
//
// ParseCommand splits one client line (CRLF already removed by the I/O layer) into a verb and
// its raw argument text; SplitArgs checks the argument text against a command's ArgShape. Both
// only look at syntax: whether a message number exists, is deleted, or the command is allowed
// in the current state is the Session's dispatcher's business (common/pop3/session.h).
//
// Rules (reliability.md §3):
//   * a line is at most kMaxCommandLine = 255 octets without its CRLF (RFC 2449 §4; longer
//     lines are refused, never truncated and run) and never contains NUL;
//   * the verb is 1..kMaxVerbLength ASCII letters, matched case-insensitively (RFC 1939 §3) and
//     returned upper-cased;
//   * arguments follow one space; for every shape but kRest runs of spaces are tolerated
//     (trailing space from sloppy clients included). kRest is the raw text after the single
//     space that ends the verb, so PASS keeps spaces that belong to the password;
//   * message numbers are decimal digits only: no sign, no '+', no leading/trailing junk, at
//     most 4294967295 (larger values, e.g. 4294967297, are refused, never wrapped); 0 is
//     syntactically fine here and refused by the dispatcher's range check (1..count);
//   * TOP's line count is decimal digits; any value beyond uint64 clamps to UINT64_MAX (TOP n k
//     with k past the body sends the whole message, RFC 1939 §7).
#ifndef POPLAR_COMMON_POP3_COMMAND_H_
#define POPLAR_COMMON_POP3_COMMAND_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poplar::pop3 {

inline constexpr size_t kMaxCommandLine = 255;  // octets, without CRLF (RFC 2449 §4)
inline constexpr size_t kMaxVerbLength = 8;     // POP3 verbs are 3-4 letters; room for extensions

enum class ParseError {
  kNone,
  kTooLong,  // more than kMaxCommandLine octets
  kNul,      // a NUL byte in the line
  kBadVerb,  // empty, too long, or not letters
};

struct Command {
  std::string verb;       // upper-cased
  std::string_view args;  // raw text after the single space ending the verb; empty if none
                          // (points into the parsed line)
};

struct ParsedCommand {
  ParseError error = ParseError::kNone;
  Command command;  // meaningful only if error == kNone
};

ParsedCommand ParseCommand(std::string_view line);

// The arguments a command takes (the table column of style P3).
enum class ArgShape {
  kNone,            // STAT, NOOP, RSET, QUIT, CAPA, STLS
  kMsgNum,          // RETR n, DELE n
  kOptMsgNum,       // LIST [n], UIDL [n]
  kMsgNumAndLines,  // TOP n k
  kString,          // USER name: exactly one space-free argument
  kRest,            // PASS string, APOP name digest: the rest of the line, not empty
  kOptRest,         // AUTH [mechanism [initial-response]]: the rest of the line, maybe empty
};

enum class ArgError {
  kNone,
  kSyntax,     // wrong number of arguments, or a missing one
  kBadNumber,  // a message number or line count that is not plain decimal digits / overflows
};

struct Args {
  std::optional<uint32_t> msg;  // the message number as given (1-based, not range-checked)
  uint64_t lines = 0;           // TOP's line count, clamped
  std::string_view text;        // kString / kRest / kOptRest
};

struct ParsedArgs {
  ArgError error = ArgError::kNone;
  Args args;
};

ParsedArgs SplitArgs(ArgShape shape, std::string_view text);

// Plain decimal digits, 1..10 of them, value <= UINT32_MAX. nullopt for anything else.
std::optional<uint32_t> ParseMessageNumber(std::string_view s);
// Plain decimal digits, at least one; values beyond uint64 clamp to UINT64_MAX.
std::optional<uint64_t> ParseLineCount(std::string_view s);

}  // namespace poplar::pop3

#endif  // POPLAR_COMMON_POP3_COMMAND_H_
