// popload's pure parts (tools/popload/popload_core.h): option parsing, user patterns, status
// and STAT parsing, the streaming multi-line decoder at every chunk split, percentiles and the
// /proc parsers. Table-driven.
#include "tools/popload/popload_core.h"

#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace poplar::popload {
namespace {

TEST(PoploadOptions, Accepted) {
  struct Case {
    std::vector<std::string> args;
    Mode mode;
    TlsMode tls;
    int conns;
    bool verify;
  };
  const Case cases[] = {
      {{"session", "--port", "12110", "--conns", "20"}, Mode::kSession, TlsMode::kOff, 20, true},
      {{"download", "--mbox", "/x", "--tls", "implicit"},
       Mode::kDownload,
       TlsMode::kImplicit,
       1,
       true},
      {{"download", "--no-verify", "--window", "8"}, Mode::kDownload, TlsMode::kOff, 1, false},
      {{"login", "--tls", "stls", "--expect", "100000"}, Mode::kLogin, TlsMode::kStls, 1, true},
      {{"idle", "--conns", "1000", "--server-pid", "12,13"},
       Mode::kIdle,
       TlsMode::kOff,
       1000,
       true},
      {{"stream", "--mbox", "/x", "--bytes", "1e9"}, Mode::kStream, TlsMode::kOff, 1, true},
  };
  for (const Case& c : cases) {
    std::string error;
    auto o = ParseOptions(c.args, &error);
    ASSERT_TRUE(o.has_value()) << c.args[0] << ": " << error;
    EXPECT_EQ(o->mode, c.mode);
    EXPECT_EQ(o->tls, c.tls);
    EXPECT_EQ(o->conns, c.conns);
    EXPECT_EQ(o->verify, c.verify);
  }
  std::string error;
  auto idle = ParseOptions({"idle", "--server-pid", "12,13", "--auth", "plain"}, &error);
  ASSERT_TRUE(idle.has_value());
  EXPECT_EQ(idle->server_pids, (std::vector<int>{12, 13}));
  EXPECT_EQ(idle->auth, AuthMode::kPlain);
  EXPECT_EQ(idle->duration_s, 2);  // idle's own default
  EXPECT_FALSE(idle->no_login);
  auto held = ParseOptions({"idle", "--no-login", "--conns", "10000"}, &error);
  ASSERT_TRUE(held.has_value()) << error;
  EXPECT_TRUE(held->no_login);
}

TEST(PoploadOptions, Refused) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"bogus"},
      {"session", "--port"},
      {"session", "--port", "0"},
      {"session", "--port", "70000"},
      {"session", "--port", "12x"},
      {"session", "--conns", "-1"},
      {"session", "--duration", "-2"},
      {"session", "--tls", "maybe"},
      {"session", "--auth", "cram"},
      {"session", "--server-pid", "1,,2"},
      {"session", "--frobnicate", "1"},
      {"download"},  // verify needs --mbox
      {"stream"},
      {"stream", "--mbox", "/x", "--tls", "stls"},
      {"stream", "--mbox", "/x", "--tls", "implicit"},  // needs cert and key
      {"session", "--no-login"},                        // idle only
  };
  for (const auto& args : cases) {
    std::string error;
    EXPECT_FALSE(ParseOptions(args, &error).has_value()) << (args.empty() ? "(none)" : args[0]);
    EXPECT_FALSE(error.empty());
  }
}

TEST(PoploadUserFor, Patterns) {
  struct Case {
    std::string_view pattern;
    int index, users;
    std::string want;
  };
  const Case cases[] = {
      {"u%04d", 7, 1000, "u0007"}, {"u%04d", 1007, 1000, "u0007"}, {"u%d", 12, 100, "u12"},
      {"dl", 5, 1, "dl"},          {"a%%b%d", 3, 10, "a%b3"},      {"u%3d", 4, 10, "u  4"},
      {"u%x", 1, 10, "u%x"},       {"u%d%d", 5, 10, "u5%d"},       {"u%04d", 3, 0, "u0000"},
  };
  for (const Case& c : cases) EXPECT_EQ(UserFor(c.pattern, c.index, c.users), c.want) << c.pattern;
}

TEST(PoploadAuthPlain, InitialResponse) {
  EXPECT_EQ(AuthPlainCommand("tim", "tanstaaftanstaaf"), "AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
}

TEST(PoploadStatus, Lines) {
  struct Case {
    std::string_view line;
    bool parsed, ok;
    std::string_view text;
  };
  const Case cases[] = {
      {"+OK", true, true, ""},
      {"+OK 2 320", true, true, "2 320"},
      {"-ERR [IN-USE] busy", true, false, "[IN-USE] busy"},
      {"-ERR", true, false, ""},
      {"+OKAY", false, false, ""},
      {"OK", false, false, ""},
      {"", false, false, ""},
      {"* 1 FETCH", false, false, ""},
  };
  for (const Case& c : cases) {
    auto s = ParseStatus(c.line);
    ASSERT_EQ(s.has_value(), c.parsed) << c.line;
    if (!s) continue;
    EXPECT_EQ(s->ok, c.ok) << c.line;
    EXPECT_EQ(s->text, c.text) << c.line;
  }
}

TEST(PoploadStat, Replies) {
  auto a = ParseStat("2 320");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->count, 2u);
  EXPECT_EQ(a->octets, 320u);
  auto b = ParseStat("100000 1333000000 extra words");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->count, 100000u);
  for (std::string_view bad : {"", "2", "x 3", "2 y", "-1 3", "2  3"})
    EXPECT_FALSE(ParseStat(bad)) << bad;
}

// The decoder at every split point of the input must give the same result as in one piece.
TEST(PoploadDecoder, EverySplit) {
  struct Case {
    std::string wire;
    std::string want;
    size_t consumed;  // bytes up to and including the terminator
    bool malformed;
    uint64_t lines;
  };
  const Case cases[] = {
      {".\r\n", "", 3, false, 0},
      {"a\r\nb\r\n.\r\n", "a\nb\n", 9, false, 2},
      {"..dot\r\n.\r\nRETR", ".dot\n", 10, false, 1},  // stops at the terminator
      {"...\r\n.\r\n", "..\n", 8, false, 1},
      {"x\ry\r\n.\r\n", "x\ry\n", 8, false, 1},  // bare CR is content
      {"\r\n\r\n.\r\n", "\n\n", 7, false, 2},
      {".x\r\n.\r\n", "x\n", 7, true, 1},  // unstuffed '.' line
      {"a.\r\n.b\r\n..\r\n.\r\n", "a.\nb\n.\n", 15, true, 3},
      {"no terminator\r\n", "no terminator\n", 15, false, 1},
  };
  for (const Case& c : cases) {
    for (size_t split = 0; split <= c.wire.size(); ++split) {
      MultilineDecoder d;
      std::string out;
      size_t used = d.Feed(std::string_view(c.wire).substr(0, split), &out);
      if (!d.done()) used += d.Feed(std::string_view(c.wire).substr(split), &out);
      SCOPED_TRACE(c.wire + " split " + std::to_string(split));
      EXPECT_EQ(out, c.want);
      EXPECT_EQ(used, c.consumed);
      EXPECT_EQ(d.malformed(), c.malformed);
      EXPECT_EQ(d.lines(), c.lines);
      EXPECT_EQ(d.decoded_bytes(), c.want.size());
      EXPECT_EQ(d.done(), c.consumed < c.wire.size() || c.wire.ends_with(".\r\n"));
    }
    MultilineDecoder counting;  // without an output string it only counts
    counting.Feed(c.wire, nullptr);
    EXPECT_EQ(counting.decoded_bytes(), c.want.size());
  }
}

TEST(PoploadDecoder, ByteAtATime) {
  std::string wire = "From: a\r\n..leading\r\n\r\nbody\r\n.\r\n";
  MultilineDecoder d;
  std::string out;
  for (char ch : wire) {
    ASSERT_FALSE(d.done());
    EXPECT_EQ(d.Feed(std::string_view(&ch, 1), &out), 1u);
  }
  EXPECT_TRUE(d.done());
  EXPECT_EQ(out, "From: a\n.leading\n\nbody\n");
}

TEST(PoploadCompare, FirstDifference) {
  EXPECT_EQ(FirstDifference("abc", "abc"), std::nullopt);
  EXPECT_EQ(FirstDifference("", ""), std::nullopt);
  EXPECT_EQ(FirstDifference("abd", "abc"), 2u);
  EXPECT_EQ(FirstDifference("ab", "abc"), 2u);
  EXPECT_EQ(FirstDifference("abcd", "abc"), 3u);
  EXPECT_EQ(FirstDifference("x", ""), 0u);
}

TEST(PoploadPercentile, NearestRank) {
  std::vector<double> none;
  EXPECT_EQ(Percentile(none, 0.5), 0);
  std::vector<double> v = {5, 1, 4, 2, 3};
  EXPECT_EQ(Percentile(v, 0.5), 3);
  EXPECT_EQ(Percentile(v, 0.99), 5);
  EXPECT_EQ(Percentile(v, 0), 1);
  std::vector<double> hundred;
  for (int i = 100; i >= 1; --i) hundred.push_back(i);
  EXPECT_EQ(Percentile(hundred, 0.99), 99);
  EXPECT_EQ(Percentile(hundred, 0.50), 50);
}

TEST(PoploadProc, Stat) {
  // proc(5): pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
  // utime stime cutime cstime ...; comm may hold spaces and parentheses.
  auto s =
      ParseProcStat("4242 (pop3 (x) d) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ppid, 17);
  EXPECT_EQ(s->self_ticks, 300u);
  EXPECT_EQ(s->child_ticks, 10u);
  EXPECT_FALSE(ParseProcStat("4242 (short) S 1 2 3"));
  EXPECT_FALSE(ParseProcStat("garbage"));
}

TEST(PoploadProc, KbFields) {
  std::string status = "Name:\tpoplar-popd\nVmPeak:\t  9000 kB\nVmRSS:\t   31337 kB\nThreads:\t3\n";
  EXPECT_EQ(ParseKbField(status, "VmRSS"), 31337u);
  EXPECT_EQ(ParseKbField(status, "VmPeak"), 9000u);
  EXPECT_FALSE(ParseKbField(status, "VmSwap"));
  std::string rollup =
      "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss: 2048 kB\nPss: 1024 kB\nPss_Anon: 512 kB\n";
  EXPECT_EQ(ParseKbField(rollup, "Pss"), 1024u);
  EXPECT_EQ(ParseKbField(rollup, "Pss_Anon"), 512u);
}

}  // namespace
}  // namespace poplar::popload
