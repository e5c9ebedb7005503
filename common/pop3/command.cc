#include "common/pop3/command.h"

#include <limits>
#include <vector>

namespace poplar::pop3 {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
char Upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

// Space-separated words; runs of spaces count as one separator. At most `max` + 1 words are
// returned, so a caller asking for `max` can tell "too many" without scanning a whole line.
std::vector<std::string_view> Words(std::string_view s, size_t max) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size() && words.size() <= max) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    size_t end = s.find(' ', i);
    if (end == std::string_view::npos) end = s.size();
    words.push_back(s.substr(i, end - i));
    i = end;
  }
  return words;
}

}  // namespace

ParsedCommand ParseCommand(std::string_view line) {
  ParsedCommand out;
  if (line.size() > kMaxCommandLine) {
    out.error = ParseError::kTooLong;
    return out;
  }
  if (line.find('\0') != std::string_view::npos) {
    out.error = ParseError::kNul;
    return out;
  }
  const size_t space = line.find(' ');
  const std::string_view verb = line.substr(0, space);
  if (verb.empty() || verb.size() > kMaxVerbLength) {
    out.error = ParseError::kBadVerb;
    return out;
  }
  for (char c : verb) {
    if (!IsAlpha(c)) {
      out.error = ParseError::kBadVerb;
      return out;
    }
    out.command.verb.push_back(Upper(c));
  }
  if (space != std::string_view::npos) out.command.args = line.substr(space + 1);
  return out;
}

std::optional<uint32_t> ParseMessageNumber(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');  // <= 10 digits: cannot overflow
  }
  if (value > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(value);
}

std::optional<uint64_t> ParseLineCount(std::string_view s) {
  if (s.empty()) return std::nullopt;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  uint64_t value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    value = (value > (kMax - digit) / 10) ? kMax : value * 10 + digit;
  }
  return value;
}

ParsedArgs SplitArgs(ArgShape shape, std::string_view text) {
  ParsedArgs out;
  auto syntax = [&out] {
    out.error = ArgError::kSyntax;
    return out;
  };
  auto bad_number = [&out] {
    out.error = ArgError::kBadNumber;
    return out;
  };
  switch (shape) {
    case ArgShape::kRest:
      if (text.empty()) return syntax();
      out.args.text = text;
      return out;
    case ArgShape::kOptRest:
      out.args.text = text;
      return out;
    default:
      break;
  }
  const std::vector<std::string_view> words = Words(text, 2);
  switch (shape) {
    case ArgShape::kNone:
      if (!words.empty()) return syntax();
      return out;
    case ArgShape::kString:
      if (words.size() != 1) return syntax();
      out.args.text = words[0];
      return out;
    case ArgShape::kOptMsgNum:
      if (words.empty()) return out;
      [[fallthrough]];
    case ArgShape::kMsgNum:
      if (words.size() != 1) return syntax();
      out.args.msg = ParseMessageNumber(words[0]);
      if (!out.args.msg) return bad_number();
      return out;
    case ArgShape::kMsgNumAndLines: {
      if (words.size() != 2) return syntax();
      out.args.msg = ParseMessageNumber(words[0]);
      const std::optional<uint64_t> lines = ParseLineCount(words[1]);
      if (!out.args.msg || !lines) return bad_number();
      out.args.lines = *lines;
      return out;
    }
    case ArgShape::kRest:
    case ArgShape::kOptRest:
      break;  // handled above
  }
  return out;
}

}  // namespace poplar::pop3
