// ParseCommand / SplitArgs / number parsing (common/pop3/command.h): table-driven syntax checks.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "common/pop3/command.h"
#include "gtest/gtest.h"

namespace poplar::pop3 {
namespace {

TEST(ParseCommandTest, VerbIsCaseInsensitiveAndArgsAreRaw) {
  struct Case {
    std::string line;
    std::string verb;
    std::string args;
  };
  const Case cases[] = {
      {"STAT", "STAT", ""},        {"stat", "STAT", ""},
      {"StAt", "STAT", ""},        {"list 1", "LIST", "1"},
      {"TOP 1 10", "TOP", "1 10"}, {"pass  two  spaces ", "PASS", " two  spaces "},
      {"QUIT ", "QUIT", ""},       {"uidl", "UIDL", ""},
  };
  for (const Case& c : cases) {
    const ParsedCommand p = ParseCommand(c.line);
    ASSERT_EQ(p.error, ParseError::kNone) << c.line;
    EXPECT_EQ(p.command.verb, c.verb) << c.line;
    EXPECT_EQ(std::string(p.command.args), c.args) << c.line;
  }
}

TEST(ParseCommandTest, Errors) {
  struct Case {
    std::string line;
    ParseError error;
  };
  const Case cases[] = {
      {"", ParseError::kBadVerb},
      {" STAT", ParseError::kBadVerb},
      {"ST4T", ParseError::kBadVerb},
      {"LONGVERBXX", ParseError::kBadVerb},
      {"\xc3\x9cSER x", ParseError::kBadVerb},
      {std::string("STAT\0", 5), ParseError::kNul},
      {std::string("PASS a\0b", 8), ParseError::kNul},
      {std::string(256, 'A'), ParseError::kTooLong},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseCommand(c.line).error, c.error) << c.line;
}

TEST(ParseCommandTest, LineLengthLimitIs255OctetsWithoutCrlf) {
  const std::string ok = "PASS " + std::string(kMaxCommandLine - 5, 'x');
  ASSERT_EQ(ok.size(), 255u);
  EXPECT_EQ(ParseCommand(ok).error, ParseError::kNone);
  EXPECT_EQ(ParseCommand(ok + "x").error, ParseError::kTooLong);
}

TEST(ParseMessageNumberTest, Table) {
  struct Case {
    std::string in;
    std::optional<uint32_t> out;
  };
  const Case cases[] = {
      {"1", 1u},
      {"0", 0u},
      {"42", 42u},
      {"007", 7u},
      {"4294967295", 4294967295u},
      {"4294967296", std::nullopt},
      {"4294967297", std::nullopt},
      {"99999999999", std::nullopt},
      {"-1", std::nullopt},
      {"+1", std::nullopt},
      {"1x", std::nullopt},
      {"x1", std::nullopt},
      {"", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"0x10", std::nullopt},
      {"1.0", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseMessageNumber(c.in), c.out) << "'" << c.in << "'";
}

TEST(ParseLineCountTest, ClampsInsteadOfOverflowing) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(ParseLineCount("0"), 0u);
  EXPECT_EQ(ParseLineCount("10"), 10u);
  EXPECT_EQ(ParseLineCount("18446744073709551615"), kMax);
  EXPECT_EQ(ParseLineCount("18446744073709551616"), kMax);
  EXPECT_EQ(ParseLineCount("99999999999999999999999999999999999999"), kMax);
  EXPECT_EQ(ParseLineCount(""), std::nullopt);
  EXPECT_EQ(ParseLineCount("-1"), std::nullopt);
  EXPECT_EQ(ParseLineCount("+1"), std::nullopt);
  EXPECT_EQ(ParseLineCount("1x"), std::nullopt);
}

TEST(SplitArgsTest, Table) {
  struct Case {
    ArgShape shape;
    std::string text;
    ArgError error;
    std::optional<uint32_t> msg;
    uint64_t lines;
    std::string out_text;
  };
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const Case cases[] = {
      {ArgShape::kNone, "", ArgError::kNone, std::nullopt, 0, ""},
      {ArgShape::kNone, "  ", ArgError::kNone, std::nullopt, 0, ""},
      {ArgShape::kNone, "x", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kMsgNum, "3", ArgError::kNone, 3u, 0, ""},
      {ArgShape::kMsgNum, "3 ", ArgError::kNone, 3u, 0, ""},
      {ArgShape::kMsgNum, "", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kMsgNum, "1 2", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kMsgNum, "-1", ArgError::kBadNumber, std::nullopt, 0, ""},
      {ArgShape::kMsgNum, "+1", ArgError::kBadNumber, std::nullopt, 0, ""},
      {ArgShape::kMsgNum, "1x", ArgError::kBadNumber, std::nullopt, 0, ""},
      {ArgShape::kMsgNum, "4294967297", ArgError::kBadNumber, std::nullopt, 0, ""},
      {ArgShape::kOptMsgNum, "", ArgError::kNone, std::nullopt, 0, ""},
      {ArgShape::kOptMsgNum, "2", ArgError::kNone, 2u, 0, ""},
      {ArgShape::kOptMsgNum, "a", ArgError::kBadNumber, std::nullopt, 0, ""},
      {ArgShape::kOptMsgNum, "1 1", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kMsgNumAndLines, "1 0", ArgError::kNone, 1u, 0, ""},
      {ArgShape::kMsgNumAndLines, "1 99999999999999999999999", ArgError::kNone, 1u, kMax, ""},
      {ArgShape::kMsgNumAndLines, "1", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kMsgNumAndLines, "1 2 3", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kMsgNumAndLines, "1 -1", ArgError::kBadNumber, std::nullopt, 0, ""},
      {ArgShape::kString, "bob", ArgError::kNone, std::nullopt, 0, "bob"},
      {ArgShape::kString, "", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kString, "bob smith", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kRest, "a b  c ", ArgError::kNone, std::nullopt, 0, "a b  c "},
      {ArgShape::kRest, "", ArgError::kSyntax, std::nullopt, 0, ""},
      {ArgShape::kOptRest, "", ArgError::kNone, std::nullopt, 0, ""},
      {ArgShape::kOptRest, "PLAIN =", ArgError::kNone, std::nullopt, 0, "PLAIN ="},
  };
  for (const Case& c : cases) {
    const ParsedArgs p = SplitArgs(c.shape, c.text);
    SCOPED_TRACE("shape " + std::to_string(static_cast<int>(c.shape)) + " '" + c.text + "'");
    EXPECT_EQ(p.error, c.error);
    if (c.error != ArgError::kNone) continue;
    EXPECT_EQ(p.args.msg, c.msg);
    EXPECT_EQ(p.args.lines, c.lines);
    EXPECT_EQ(std::string(p.args.text), c.out_text);
  }
}

}  // namespace
}  // namespace poplar::pop3
