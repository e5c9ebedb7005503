// The strict mbox From_ separator line (design §3, reliability.md §2.2).
//
// A line is a separator only if it reads `From <sender> <date>` where <sender> is one token
// (a quoted local part may contain spaces) and <date> parses as a ctime()/asctime() date
// (`Thu Nov 29 22:33:52 2001`; Postfix's extra space before a one-digit day, missing seconds,
// and a named or numeric zone before or after the year are accepted) or as an RFC 822 style
// date (`Thu, 29 Nov 2001 22:33:52 +0100`). Text after the date (UUCP's `remote from x`) is
// allowed. Anything else is body text: a body line `From the start of a line` never splits a
// message. Pure code: no allocation, no locale.
#ifndef POPLAR_COMMON_MBOX_FROM_LINE_H_
#define POPLAR_COMMON_MBOX_FROM_LINE_H_

#include <cstddef>
#include <optional>
#include <string_view>

namespace poplar::mbox {

// Longer lines are never separators; it bounds the work per candidate line.
inline constexpr size_t kMaxFromLineLength = 1024;

struct FromLine {
  std::string_view sender;  // envelope sender token, e.g. "MAILER-DAEMON" or "a@b.example"
  std::string_view date;    // from the weekday to the end of the line, trailing blanks removed
};

// `line` is one line without its terminator (no "\n"; a trailing "\r" is ignored).
std::optional<FromLine> ParseFromLine(std::string_view line);

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_FROM_LINE_H_
