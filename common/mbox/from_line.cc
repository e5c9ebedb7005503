#include "common/mbox/from_line.h"

#include <array>

namespace poplar::mbox {
namespace {

constexpr std::array<std::string_view, 7> kWeekdays = {"sun", "mon", "tue", "wed",
                                                       "thu", "fri", "sat"};
constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                      "jul", "aug", "sep", "oct", "nov", "dec"};

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A cursor over the date part; every Take* either consumes what it names or nothing.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool AtEnd() const { return i_ == s_.size(); }
  size_t pos() const { return i_; }

  bool TakeSpaces() {  // one or more
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
    return i_ > start;
  }
  bool TakeChar(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  template <size_t N>
  bool TakeName(const std::array<std::string_view, N>& names) {
    if (s_.size() - i_ < 3) return false;
    for (std::string_view name : names) {
      if (Lower(s_[i_]) == name[0] && Lower(s_[i_ + 1]) == name[1] &&
          Lower(s_[i_ + 2]) == name[2]) {
        i_ += 3;
        return true;
      }
    }
    return false;
  }
  // Exactly min..max digits, value within [lo, hi].
  bool TakeNumber(size_t min_digits, size_t max_digits, int lo, int hi) {
    size_t j = i_;
    int value = 0;
    while (j < s_.size() && IsDigit(s_[j]) && j - i_ < max_digits) {
      value = value * 10 + (s_[j] - '0');
      ++j;
    }
    size_t digits = j - i_;
    if (digits < min_digits || (j < s_.size() && IsDigit(s_[j]))) return false;
    if (value < lo || value > hi) return false;
    i_ = j;
    return true;
  }
  // hh:mm or hh:mm:ss
  bool TakeTime() {
    size_t save = i_;
    if (TakeNumber(1, 2, 0, 23) && TakeChar(':') && TakeNumber(2, 2, 0, 59)) {
      size_t before_seconds = i_;
      if (!(TakeChar(':') && TakeNumber(2, 2, 0, 60))) i_ = before_seconds;
      return true;
    }
    i_ = save;
    return false;
  }
  bool TakeYear() { return TakeNumber(4, 4, 1000, 9999); }
  // "+0100", "-0500", or 1-5 letters ("UTC", "CEST").
  bool TakeZone() {
    size_t save = i_;
    if ((TakeChar('+') || TakeChar('-')) && TakeNumber(4, 4, 0, 9959)) return true;
    i_ = save;
    size_t j = i_;
    while (j < s_.size() && IsAlpha(s_[j]) && j - i_ < 6) ++j;
    if (j == i_ || j - i_ > 5 || (j < s_.size() && s_[j] != ' ')) return false;
    i_ = j;
    return true;
  }
  // Followed by end or a space: a field must not run into other text ("2001x").
  bool AtBoundary() const { return i_ == s_.size() || s_[i_] == ' '; }
  void Reset(size_t pos) { i_ = pos; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// asctime: Www Mmm [ ]d hh:mm[:ss] [zone] yyyy [zone]
bool ParseAsctime(Cursor& c) {
  if (!(c.TakeName(kWeekdays) && c.TakeSpaces() && c.TakeName(kMonths) && c.TakeSpaces() &&
        c.TakeNumber(1, 2, 1, 31) && c.TakeSpaces() && c.TakeTime() && c.TakeSpaces())) {
    return false;
  }
  size_t before_year = c.pos();
  if (!(c.TakeYear() && c.AtBoundary())) {
    c.Reset(before_year);
    if (!(c.TakeZone() && c.TakeSpaces() && c.TakeYear() && c.AtBoundary())) return false;
    return true;
  }
  size_t after_year = c.pos();
  if (!(c.TakeSpaces() && c.TakeZone())) c.Reset(after_year);
  return true;
}

// RFC 822 style: Www, [d]d Mmm yyyy hh:mm[:ss] [zone]
bool ParseRfc822(Cursor& c) {
  if (!(c.TakeName(kWeekdays) && c.TakeChar(',') && c.TakeSpaces() && c.TakeNumber(1, 2, 1, 31) &&
        c.TakeSpaces() && c.TakeName(kMonths) && c.TakeSpaces() && c.TakeYear() && c.TakeSpaces() &&
        c.TakeTime() && c.AtBoundary())) {
    return false;
  }
  size_t after_time = c.pos();
  if (!(c.TakeSpaces() && c.TakeZone())) c.Reset(after_time);
  return true;
}

}  // namespace

std::optional<FromLine> ParseFromLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kMaxFromLineLength || line.substr(0, 5) != "From ") return std::nullopt;
  std::string_view rest = line.substr(5);

  // Sender: a token without spaces; a leading quoted part may contain spaces ("a b"@c).
  size_t i = 0;
  if (!rest.empty() && rest[0] == '"') {
    ++i;
    while (i < rest.size() && rest[i] != '"') {
      if (rest[i] == '\\') ++i;
      ++i;
    }
    if (i >= rest.size()) return std::nullopt;
    ++i;  // closing quote
  }
  while (i < rest.size() && rest[i] != ' ' && rest[i] != '\t') ++i;
  if (i == 0 || i >= rest.size() || rest[i] != ' ') return std::nullopt;
  std::string_view sender = rest.substr(0, i);
  while (i < rest.size() && rest[i] == ' ') ++i;

  std::string_view date = rest.substr(i);
  while (!date.empty() && (date.back() == ' ' || date.back() == '\t')) date.remove_suffix(1);
  Cursor c(date);
  if (!ParseAsctime(c)) {
    c.Reset(0);
    if (!ParseRfc822(c)) return std::nullopt;
  }
  // Whatever follows the date ("remote from host") must be separated from it.
  if (!c.AtBoundary()) return std::nullopt;
  return FromLine{sender, date};
}

}  // namespace poplar::mbox
