// ParseFromLine: which lines are mbox separators (common/mbox/from_line.h, design §3,
// reliability.md §2.2). Accepted forms check the sender and date views; rejected forms are
// body text that must never split a message.
#include "common/mbox/from_line.h"

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

struct AcceptCase {
  std::string_view name;
  std::string_view line;
  std::string_view want_sender;
  std::string_view want_date;
};

TEST(FromLineTest, AcceptedForms) {
  const AcceptCase kCases[] = {
      {"asctime", "From alice@example.org Thu Nov 29 22:33:52 2001", "alice@example.org",
       "Thu Nov 29 22:33:52 2001"},
      {"minimal", "From x Thu Nov 29 22:33:52 2001", "x", "Thu Nov 29 22:33:52 2001"},
      {"postfix_two_spaces_one_digit_day", "From a@b  Thu Nov  9 22:33:52 2001", "a@b",
       "Thu Nov  9 22:33:52 2001"},
      {"one_digit_day_single_space", "From a@b Thu Nov 9 22:33:52 2001", "a@b",
       "Thu Nov 9 22:33:52 2001"},
      {"mailer_daemon", "From MAILER-DAEMON Fri Jan  1 00:00:00 2010", "MAILER-DAEMON",
       "Fri Jan  1 00:00:00 2010"},
      {"no_seconds", "From a@b Thu Nov 29 22:33 2001", "a@b", "Thu Nov 29 22:33 2001"},
      {"one_digit_hour", "From a@b Thu Nov 29 2:33:52 2001", "a@b", "Thu Nov 29 2:33:52 2001"},
      {"leap_second", "From a@b Sat Dec 31 23:59:60 2016", "a@b", "Sat Dec 31 23:59:60 2016"},
      {"named_zone_before_year", "From a@b Thu Nov 29 22:33:52 CET 2001", "a@b",
       "Thu Nov 29 22:33:52 CET 2001"},
      {"named_zone_after_year", "From a@b Thu Nov 29 22:33:52 2001 CEST", "a@b",
       "Thu Nov 29 22:33:52 2001 CEST"},
      {"numeric_zone_after_year", "From a@b Thu Nov 29 22:33:52 2001 +0100", "a@b",
       "Thu Nov 29 22:33:52 2001 +0100"},
      {"numeric_zone_before_year", "From a@b Thu Nov 29 22:33:52 -0500 2001", "a@b",
       "Thu Nov 29 22:33:52 -0500 2001"},
      {"zone_no_seconds", "From a@b Thu Nov 29 22:33 UTC 2001", "a@b", "Thu Nov 29 22:33 UTC 2001"},
      {"rfc822", "From a@b Thu, 29 Nov 2001 22:33:52 +0100", "a@b",
       "Thu, 29 Nov 2001 22:33:52 +0100"},
      {"rfc822_one_digit_day_no_zone", "From a@b Fri, 9 Nov 2001 22:33", "a@b",
       "Fri, 9 Nov 2001 22:33"},
      {"rfc822_named_zone", "From a@b Thu, 29 Nov 2001 22:33:52 GMT", "a@b",
       "Thu, 29 Nov 2001 22:33:52 GMT"},
      {"quoted_sender_with_spaces", "From \"john q public\"@example.org Thu Nov 29 22:33:52 2001",
       "\"john q public\"@example.org", "Thu Nov 29 22:33:52 2001"},
      {"quoted_sender_escaped_quote", "From \"a\\\" b\"@c Thu Nov 29 22:33:52 2001",
       "\"a\\\" b\"@c", "Thu Nov 29 22:33:52 2001"},
      {"remote_from_trailer", "From bob Thu Nov 29 22:33:52 2001 remote from uunet", "bob",
       "Thu Nov 29 22:33:52 2001 remote from uunet"},
      {"cr_at_end", "From a@b Thu Nov 29 22:33:52 2001\r", "a@b", "Thu Nov 29 22:33:52 2001"},
      {"trailing_blanks_trimmed_from_date", "From a@b Thu Nov 29 22:33:52 2001 \t ", "a@b",
       "Thu Nov 29 22:33:52 2001"},
      {"trailing_blanks_and_cr", "From a@b Thu Nov 29 22:33:52 2001  \r", "a@b",
       "Thu Nov 29 22:33:52 2001"},
      {"lowercase_names", "From a@b thu nov 29 22:33:52 2001", "a@b", "thu nov 29 22:33:52 2001"},
      {"all_months_dec", "From a@b Mon Dec 31 23:59:59 1999", "a@b", "Mon Dec 31 23:59:59 1999"},
  };
  for (const AcceptCase& c : kCases) {
    SCOPED_TRACE(c.name);
    std::optional<FromLine> got = ParseFromLine(c.line);
    ASSERT_TRUE(got.has_value()) << c.line;
    EXPECT_EQ(got->sender, c.want_sender);
    EXPECT_EQ(got->date, c.want_date);
    // The views point into the caller's line: no copies.
    EXPECT_GE(got->sender.data(), c.line.data());
    EXPECT_LE(got->date.data() + got->date.size(), c.line.data() + c.line.size());
  }
}

struct RejectCase {
  std::string_view name;
  std::string_view line;
};

TEST(FromLineTest, RejectedForms) {
  const RejectCase kCases[] = {
      {"body_text", "From the start of a line"},
      {"body_text_with_date_later", "From here on, Thu Nov 29 22:33:52 2001 is history"},
      {"empty", ""},
      {"just_from", "From"},
      {"just_from_space", "From "},
      {"no_space_after_from", "From:alice Thu Nov 29 22:33:52 2001"},
      {"from_header", "From: alice@example.org"},
      {"fromx", "Fromalice Thu Nov 29 22:33:52 2001"},
      {"uppercase_from", "FROM alice Thu Nov 29 22:33:52 2001"},
      {"quoted_gt_from", ">From alice Thu Nov 29 22:33:52 2001"},
      {"leading_space", " From alice Thu Nov 29 22:33:52 2001"},
      {"missing_sender", "From Thu Nov 29 22:33:52 2001"},
      {"missing_sender_two_spaces", "From  Thu Nov 29 22:33:52 2001"},
      {"missing_date", "From alice@example.org"},
      {"missing_date_trailing_space", "From alice@example.org "},
      {"tab_after_sender", "From alice\tThu Nov 29 22:33:52 2001"},
      {"unterminated_quoted_sender", "From \"alice Thu Nov 29 22:33:52 2001"},
      {"bad_weekday", "From a@b Thx Nov 29 22:33:52 2001"},
      {"bad_month", "From a@b Thu Nox 29 22:33:52 2001"},
      {"day_zero", "From a@b Thu Nov 0 22:33:52 2001"},
      {"day_32", "From a@b Thu Nov 32 22:33:52 2001"},
      {"day_three_digits", "From a@b Thu Nov 029 22:33:52 2001"},
      {"hour_24", "From a@b Thu Nov 29 24:33:52 2001"},
      {"minute_60", "From a@b Thu Nov 29 22:60:52 2001"},
      {"second_61", "From a@b Thu Nov 29 22:33:61 2001"},
      {"one_digit_minute", "From a@b Thu Nov 29 22:3 2001"},
      {"missing_time", "From a@b Thu Nov 29 2001"},
      {"two_digit_year", "From a@b Thu Nov 29 22:33:52 01"},
      {"three_digit_year", "From a@b Thu Nov 29 22:33:52 201"},
      {"five_digit_year", "From a@b Thu Nov 29 22:33:52 20011"},
      {"missing_year", "From a@b Thu Nov 29 22:33:52"},
      {"junk_after_year", "From a@b Thu Nov 29 22:33:52 2001x"},
      {"word_after_year", "From a@b Thu Nov 29 22:33:52 2001remote from uunet"},
      {"junk_after_zone_year", "From a@b Thu Nov 29 22:33:52 CET 2001x"},
      {"junk_after_numeric_zone", "From a@b Thu Nov 29 22:33:52 2001 +0100x"},
      {"rfc822_junk_after_zone", "From a@b Thu, 29 Nov 2001 22:33:52 +0100x"},
      {"zone_too_long_before_year", "From a@b Thu Nov 29 22:33:52 ABCDEF 2001"},
      {"numeric_zone_too_short", "From a@b Thu Nov 29 22:33:52 +100 2001"},
      {"weekday_runs_on", "From a@b Thursday Nov 29 22:33:52 2001"},
      {"no_space_weekday_month", "From a@b ThuNov 29 22:33:52 2001"},
      {"rfc822_two_digit_year", "From a@b Thu, 29 Nov 01 22:33:52 +0100"},
      {"rfc822_missing_time", "From a@b Thu, 29 Nov 2001"},
      {"rfc822_junk_after_time", "From a@b Thu, 29 Nov 2001 22:33:52x"},
      {"cr_inside", "From a@b Thu Nov 29 22:33:52\r 2001"},
      {"two_crs_at_end", "From a@b Thu Nov 29 22:33:52 2001\r\r"},
  };
  for (const RejectCase& c : kCases) {
    SCOPED_TRACE(c.name);
    std::optional<FromLine> got = ParseFromLine(c.line);
    EXPECT_FALSE(got.has_value()) << "accepted '" << c.line << "' as sender '" << got->sender
                                  << "' date '" << got->date << "'";
  }
}

// kMaxFromLineLength bounds the line without its "\r": a valid line padded to the limit is a
// separator, one byte more is not, with or without CR.
TEST(FromLineTest, LengthLimit) {
  const std::string head = "From a@b Thu Nov 29 22:33:52 2001 remote from ";
  auto padded = [&](size_t total) { return head + std::string(total - head.size(), 'h'); };

  struct Case {
    std::string name;
    std::string line;
    bool want_accepted;
  };
  const Case kCases[] = {
      {"at_limit", padded(kMaxFromLineLength), true},
      {"at_limit_plus_cr", padded(kMaxFromLineLength) + "\r", true},
      {"one_over", padded(kMaxFromLineLength + 1), false},
      {"one_over_plus_cr", padded(kMaxFromLineLength + 1) + "\r", false},
      {"far_over", padded(10 * kMaxFromLineLength), false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ParseFromLine(c.line).has_value(), c.want_accepted) << c.line.size();
  }
}

// The parser must not read past the view it is given: parse every prefix of a valid line out
// of an exact-size heap buffer (ASan catches an over-read). Only prefixes that still hold the
// whole year are accepted (what follows the year is an optional zone or trailer).
TEST(FromLineTest, PrefixesAreBoundedAndMostlyRejected) {
  const std::string line = "From \"q p\"@b Thu Nov 29 22:33:52 2001 +0100";
  const size_t date_end = line.size();  // the zone ends the line
  for (size_t len = 0; len <= line.size(); ++len) {
    SCOPED_TRACE(len);
    std::unique_ptr<char[]> exact(new char[len == 0 ? 1 : len]);
    std::memcpy(exact.get(), line.data(), len);
    std::optional<FromLine> got = ParseFromLine(std::string_view(exact.get(), len));
    const bool want = len >= date_end - std::string_view(" +0100").size();
    EXPECT_EQ(got.has_value(), want);
  }
}

}  // namespace
}  // namespace poplar::mbox
