// libFuzzer target for ParseFromLine (common/mbox/from_line.h).
//
// The input (up to its first '\n') is one line. Checks:
//  * no crash and no read past the line (exactly-sized copy);
//  * an accepted line starts with "From ", is at most kMaxFromLineLength long without its
//    '\r', and sender and date are non-empty views into it, the date without trailing blanks
//    and the sender without spaces outside a leading quoted part;
//  * a trailing '\r' changes nothing, and text after the date (" remote from x") keeps the line
//    a separator with the same sender;
//  * the scanner agrees: the line followed by a message is an mbox of one message exactly when
//    the line parses, with the same envelope sender and date.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "common/mbox/from_line.h"
#include "common/mbox/scanner.h"
#include "tests/fuzz/fuzz_common.h"

namespace poplar::fuzz {
namespace {

using mbox::FromLine;
using mbox::ParseFromLine;

bool Within(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

void Check(std::string_view line) {
  std::optional<FromLine> parsed = ParseFromLine(line);
  std::string_view stripped = line;
  if (!stripped.empty() && stripped.back() == '\r') stripped.remove_suffix(1);

  if (parsed) {
    POPLAR_FUZZ_CHECK(stripped.substr(0, 5) == "From ");
    POPLAR_FUZZ_CHECK(stripped.size() <= mbox::kMaxFromLineLength);
    POPLAR_FUZZ_CHECK(!parsed->sender.empty() && !parsed->date.empty());
    POPLAR_FUZZ_CHECK(Within(parsed->sender, stripped) && Within(parsed->date, stripped));
    POPLAR_FUZZ_CHECK(parsed->sender.data() == stripped.data() + 5);
    POPLAR_FUZZ_CHECK(parsed->date.data() > parsed->sender.data() + parsed->sender.size());
    POPLAR_FUZZ_CHECK(parsed->date.back() != ' ' && parsed->date.back() != '\t');
    if (parsed->sender.front() != '"') {
      POPLAR_FUZZ_CHECK(parsed->sender.find(' ') == std::string_view::npos);
    }
  }

  // A trailing '\r' (CRLF mbox) is ignored.
  if (line.empty() || line.back() != '\r') {
    std::string with_cr(line);
    with_cr.push_back('\r');
    std::optional<FromLine> cr = ParseFromLine(with_cr);
    POPLAR_FUZZ_CHECK(cr.has_value() == parsed.has_value());
    if (parsed) POPLAR_FUZZ_CHECK(cr->sender == parsed->sender && cr->date == parsed->date);
  }

  // UUCP's trailing text is allowed after a date that ends the line.
  constexpr std::string_view kSuffix = " remote from uucp";
  if (parsed && stripped.size() + kSuffix.size() <= mbox::kMaxFromLineLength &&
      stripped.back() != ' ' && stripped.back() != '\t') {
    std::string longer = std::string(stripped) + std::string(kSuffix);
    std::optional<FromLine> more = ParseFromLine(longer);
    POPLAR_FUZZ_CHECK(more.has_value());
    POPLAR_FUZZ_CHECK(more->sender == parsed->sender);
  }

  // The scanner's separator rule is this parser.
  std::string mbox_bytes(line);
  mbox_bytes += "\nSubject: x\n\nbody\n";
  mbox::ScanResult r = mbox::ScanMbox(mbox_bytes, 0, {.final = true});
  POPLAR_FUZZ_CHECK(r.messages.size() == (parsed ? 1u : 0u));
  if (parsed) {
    POPLAR_FUZZ_CHECK(r.messages[0].sender == parsed->sender);
    POPLAR_FUZZ_CHECK(r.messages[0].date == parsed->date);
  }
}

}  // namespace
}  // namespace poplar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  if (nl != std::string_view::npos) size = nl;  // one line, as the scanner hands it over
  poplar::fuzz::ExactCopy copy(data, size);
  poplar::fuzz::Check(copy.view());
  return 0;
}
