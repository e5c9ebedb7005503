// ScanMbox on the nasty-mbox corpus (tests/testdata/*.mbox): exact boundaries and sizes,
// restartability (one final call == any sequence of non-final chunks + a final call),
// deliveries in progress, and appends (common/mbox/scanner.h, design §3).
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/mbox/from_line.h"
#include "common/mbox/scanner.h"
#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

constexpr ScanOptions kFinal{.final = true};
constexpr ScanOptions kNotFinal{.final = false};

std::string ReadTestdata(std::string_view name) {
  const std::string path = absl::StrCat(POPLAR_TESTDATA, "/", std::string(name));
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Describe(const MessageInfo& m) {
  return absl::StrCat("{offset=", m.offset, " data=", m.data_offset, " end=", m.end_offset,
                      " hdr=", m.header_length, " lines=", m.lines, " octets=", m.octets,
                      " nl=", int{m.final_newline}, " cl=", int{m.content_length_used},
                      " sender=", m.sender, " date=", m.date, " x_uidl=", m.x_uidl,
                      " hash=", m.content_hash.Hex(), " uidl=", m.uidl_digest,
                      " x_uid=", m.x_uid.value_or(0), " uidv=", m.uid_validity.value_or(0), "}");
}

// Every field, including the digests.
void ExpectSameMessages(const std::vector<MessageInfo>& got, const std::vector<MessageInfo>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("message ", i + 1));
    EXPECT_EQ(Describe(got[i]), Describe(want[i]));
    EXPECT_EQ(got[i].x_uid.has_value(), want[i].x_uid.has_value());
    EXPECT_EQ(got[i].uid_validity.has_value(), want[i].uid_validity.has_value());
  }
}

// Drops the messages a scan starting at `resume` reports again, then appends the new ones.
void Accumulate(std::vector<MessageInfo>* acc, uint64_t resume, std::vector<MessageInfo> more) {
  acc->erase(std::remove_if(acc->begin(), acc->end(),
                            [&](const MessageInfo& m) { return m.offset >= resume; }),
             acc->end());
  for (MessageInfo& m : more) acc->push_back(std::move(m));
}

// Scans `bytes` as a file that grows to each cut point in turn (non-final), then is finished.
// Checks the invariants of each non-final call on the way.
std::vector<MessageInfo> ScanInChunks(std::string_view bytes, const std::vector<size_t>& cuts,
                                      const ScanOptions& base_options = {}) {
  std::vector<MessageInfo> acc;
  uint64_t resume = 0;
  ScanOptions options = base_options;
  options.final = false;
  for (size_t k : cuts) {
    if (k < resume || k > bytes.size()) continue;
    ScanResult r = ScanMbox(bytes.substr(resume, k - resume), resume, options);
    EXPECT_GE(r.resume_offset, resume) << "cut " << k;
    EXPECT_LE(r.resume_offset, k) << "cut " << k;
    for (const MessageInfo& m : r.messages) {
      // A non-final scan returns only messages whose end is certain: never the one at
      // resume_offset, never one that runs to the cut.
      EXPECT_LT(m.offset, r.resume_offset) << "cut " << k;
      EXPECT_LE(m.end_offset, r.resume_offset) << "cut " << k;
      EXPECT_LT(m.end_offset, k) << "cut " << k;
    }
    Accumulate(&acc, resume, std::move(r.messages));
    resume = r.resume_offset;
  }
  options.final = true;
  ScanResult r = ScanMbox(bytes.substr(resume), resume, options);
  Accumulate(&acc, resume, std::move(r.messages));
  return acc;
}

std::vector<size_t> EveryByte(size_t n) {
  std::vector<size_t> cuts(n + 1);
  for (size_t i = 0; i <= n; ++i) cuts[i] = i;
  return cuts;
}

std::vector<size_t> RandomCuts(size_t n, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<size_t> cuts;
  for (size_t i = 0; i < count; ++i)
    cuts.push_back(std::uniform_int_distribution<size_t>(0, n)(rng));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

// ---------------------------------------------------------------------------------------------
// The corpus, with every boundary written out. Sizes are RFC 1939 octets: bare LF counts two,
// CRLF two, a missing final newline adds two.

struct WantMessage {
  uint64_t offset, data_offset, end_offset, header_length, lines, octets;
  bool final_newline;
  std::string sender, date, x_uidl;
  bool content_length_used;
};

struct CorpusCase {
  std::string name;
  uint64_t size;
  uint64_t want_resume;
  std::vector<Anomaly> want_anomalies;
  std::vector<WantMessage> want;
};

const std::vector<CorpusCase>& Corpus() {
  static const auto* const kCases = new std::vector<CorpusCase>{
      // The empty file: nothing, and nothing odd about it.
      {"empty", 0, 0, {}, {}},
      // '.', '..', '...' and '.hidden' lines are stored bytes; stuffing is popd's business.
      {"dots",
       179,
       109,
       {},
       {
           {0, 48, 108, 39, 8, 68, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {109, 155, 178, 21, 3, 26, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            false},
       }},
      // '>From ' and '>>From ' lines, even after an empty line with a valid date, never split
      // and are served as stored. A final scan resumes at the last message (scanner.h).
      {"quoted_from",
       274,
       208,
       {},
       {
           {0, 48, 207, 17, 8, 167, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {208, 254, 274, 16, 3, 23, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            false},
       }},
      // An unquoted valid From_ line after a non-empty line, and invalid 'From ' lines after an
      // empty line, are body text.
      {"from_in_body",
       271,
       205,
       {},
       {
           {0, 48, 204, 19, 10, 166, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {205, 251, 270, 14, 3, 22, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            false},
       }},
      // A valid From_ line after an empty line in a body does split: that is the rule.
      {"from_after_blank",
       146,
       87,
       {},
       {
           {0, 48, 86, 28, 3, 41, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "", false},
           {87, 133, 146, 13, 1, 14, true, "bob@example.net", "Thu Nov 29 10:00:00 2001", "",
            false},
       }},
      // mboxcl2: (1) a right Content-Length protects a body holding "\n\nFrom <valid>" and
      // lands on the empty line before the next separator; (2) one lands directly on a From_
      // line with no empty line before it; (3) one ends mid-line and (4) one points past EOF:
      // both ignored (anomaly), the From_ rule splits; (5) one ends exactly at EOF: trusted,
      // and as the file has no trailing empty line, resume_offset is that message.
      {"content_length",
       584,
       493,
       {{300, AnomalyKind::kContentLengthIgnored}, {397, AnomalyKind::kContentLengthIgnored}},
       {
           {0, 48, 182, 38, 9, 143, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            true},
           {183, 229, 300, 48, 4, 75, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            true},
           {300, 347, 396, 40, 4, 53, true, "erin@example.com", "Mon Dec  3 09:00:00 2001", "",
            false},
           {397, 444, 492, 42, 4, 52, true, "dave@example.com", "Sun Dec  2 11:00:00 2001", "",
            false},
           {493, 541, 584, 38, 4, 47, true, "frank@example.com", "Tue Dec  4 12:00:00 2001", "",
            true},
       }},
      // CRLF throughout (the CR of the From_ line is not part of the date; CRLF not doubled),
      // plus one bare LF in message 2 (+1 octet). The "\r\n" before a separator is excluded.
      {"crlf",
       181,
       85,
       {},
       {
           {0, 49, 83, 17, 5, 34, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "", false},
           {85, 132, 179, 16, 6, 48, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            false},
       }},
      // The last line has no newline: it counts as a line, and CRLF is added (+2 octets).
      {"no_trailing_newline",
       150,
       69,
       {},
       {
           {0, 48, 68, 14, 3, 23, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "", false},
           {69, 115, 150, 14, 3, 39, false, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            false},
       }},
      // A 10 KB header line, a long folded header, and a 2 KB 'From <valid date> xxx…' line
      // after an empty line, too long to be a separator.
      {"long_header",
       13977,
       13911,
       {},
       {
           {0, 48, 13910, 11782, 9, 13871, true, "alice@example.org", "Thu Nov 29 22:33:52 2001",
            "", false},
           {13911, 13957, 13976, 16, 3, 22, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            false},
       }},
      // Headers only (the empty line after them is the separator's), no headers (starts with
      // the empty line), an empty message, and a last header line without newline.
      {"no_body_no_headers",
       285,
       213,
       {},
       {
           {0, 48, 94, 46, 2, 48, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "", false},
           {95, 141, 163, 1, 2, 24, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "", false},
           {164, 212, 212, 0, 0, 2, false, "carol@example.com", "Sat Dec  1 10:00:00 2001", "",
            false},
           {213, 260, 285, 25, 1, 27, false, "dave@example.com", "Sun Dec  2 11:00:00 2001", "",
            false},
       }},
      // Postfix local(8): two spaces after the sender, space-padded day, folded Received:.
      {"postfix",
       714,
       496,
       {},
       {
           {0, 47, 495, 387, 13, 461, true, "bob@example.net", "Fri Nov  9 08:05:01 2001", "",
            false},
           {496, 541, 713, 122, 5, 177, true, "MAILER-DAEMON", "Sat Nov 10 23:59:59 2001", "",
            false},
       }},
      // X-UIDL: plain, padded, invalid then valid (the first valid one wins), 71 chars
      // (invalid), lower-case name, a control char (invalid), in the body (not a header),
      // 70 chars (valid).
      {"x_uidl",
       800,
       666,
       {},
       {
           {0, 48, 100, 47, 4, 56, true, "alice@example.org", "Thu Nov 29 22:33:52 2001",
            "3b0c7e2a00000001", false},
           {101, 149, 198, 44, 4, 53, true, "alice@example.org", "Thu Nov 29 22:33:52 2001",
            "spaced-value", false},
           {199, 247, 294, 42, 4, 51, true, "alice@example.org", "Thu Nov 29 22:33:52 2001",
            "second-valid", false},
           {295, 343, 429, 81, 3, 89, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {430, 478, 505, 22, 3, 30, true, "alice@example.org", "Thu Nov 29 22:33:52 2001",
            "<lower@case>", false},
           {506, 554, 577, 18, 3, 26, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {578, 626, 665, 18, 3, 42, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {666, 714, 799, 80, 3, 88, true, "alice@example.org", "Thu Nov 29 22:33:52 2001",
            std::string(70, '~'), false},
       }},
      // The same message three times.
      {"duplicates",
       435,
       290,
       {},
       {
           {0, 48, 144, 75, 5, 101, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {145, 193, 289, 75, 5, 101, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
           {290, 338, 434, 75, 5, 101, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
       }},
      // Text before the first separator is skipped and reported.
      {"leading_garbage",
       128,
       50,
       {{0, AnomalyKind::kLeadingGarbage}},
       {
           {50, 98, 127, 24, 3, 32, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            false},
       }},
      // Dovecot-written mbox: Content-Length everywhere, X-IMAPbase/X-UID/Status headers.
      {"dovecot",
       384,
       287,
       {},
       {
           {0, 48, 142, 88, 7, 101, true, "alice@example.org", "Thu Nov 29 22:33:52 2001", "",
            true},
           {143, 189, 286, 90, 8, 105, true, "bob@example.org", "Fri Nov 30 08:00:00 2001", "",
            true},
           {287, 335, 383, 42, 4, 52, true, "carol@example.com", "Sat Dec  1 10:00:00 2001", "",
            true},
       }},
  };
  return *kCases;
}

void ExpectMatches(const ScanResult& r, const CorpusCase& c, uint64_t base) {
  EXPECT_EQ(r.resume_offset, base + c.want_resume);
  std::vector<Anomaly> want_anomalies = c.want_anomalies;
  for (Anomaly& a : want_anomalies) a.offset += base;
  EXPECT_EQ(r.anomalies, want_anomalies);
  ASSERT_EQ(r.messages.size(), c.want.size());
  for (size_t i = 0; i < c.want.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("message ", i + 1));
    const MessageInfo& m = r.messages[i];
    const WantMessage& w = c.want[i];
    EXPECT_EQ(m.offset, base + w.offset);
    EXPECT_EQ(m.data_offset, base + w.data_offset);
    EXPECT_EQ(m.end_offset, base + w.end_offset);
    EXPECT_EQ(m.header_length, w.header_length);
    EXPECT_EQ(m.lines, w.lines);
    EXPECT_EQ(m.octets, w.octets);
    EXPECT_EQ(m.final_newline, w.final_newline);
    EXPECT_EQ(m.sender, w.sender);
    EXPECT_EQ(m.date, w.date);
    EXPECT_EQ(m.x_uidl, w.x_uidl);
    EXPECT_EQ(m.content_length_used, w.content_length_used);
    EXPECT_EQ(m.uidl_digest.size(), 24u);
    EXPECT_EQ(m.uidl_digest.find_first_not_of("0123456789abcdef"), std::string::npos);
  }
}

TEST(MboxScannerTest, CorpusExactBoundaries) {
  for (const CorpusCase& c : Corpus()) {
    SCOPED_TRACE(c.name);
    const std::string bytes = ReadTestdata(c.name + ".mbox");
    ASSERT_EQ(bytes.size(), c.size);
    ExpectMatches(ScanMbox(bytes, 0, kFinal), c, 0);
    // The same bytes at another place of a file: every offset moves, nothing else changes.
    ExpectMatches(ScanMbox(bytes, 1'000'000'007, kFinal), c, 1'000'000'007);
  }
}

// Each message starts with its From_ line, and the message bytes are exactly what the
// corpus stores between boundaries: the From_ line and the separator's empty line are not
// part of it.
TEST(MboxScannerTest, CorpusMessageBytes) {
  const std::string dots = ReadTestdata("dots.mbox");
  ScanResult r = ScanMbox(dots, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(dots.substr(r.messages[0].data_offset, r.messages[0].length()),
            "From: alice@example.org\nSubject: dots\n\n.\n..\n...\n.hidden\nend\n");
  EXPECT_EQ(dots.substr(r.messages[1].data_offset, r.messages[1].length()),
            "Subject: only a dot\n\n.\n");

  const std::string quoted = ReadTestdata("quoted_from.mbox");
  r = ScanMbox(quoted, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 2u);
  std::string_view body = std::string_view(quoted).substr(
      r.messages[0].body_offset(), r.messages[0].end_offset - r.messages[0].body_offset());
  EXPECT_EQ(body.substr(0, 26), ">From the start of a line\n");  // not unquoted
  EXPECT_NE(body.find("\n>>From twice\n"), std::string_view::npos);

  const std::string crlf = ReadTestdata("crlf.mbox");
  r = ScanMbox(crlf, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(crlf.substr(r.messages[0].data_offset, r.messages[0].length()),
            "Subject: crlf\r\n\r\nline one\r\n.\r\n..\r\n");
}

// Without trust in Content-Length, the From_ rule alone splits: the protected body of the
// first content_length.mbox message splits at its inner separator, and no anomaly is reported.
TEST(MboxScannerTest, ContentLengthNotTrusted) {
  const std::string bytes = ReadTestdata("content_length.mbox");
  ScanResult r = ScanMbox(bytes, 0, {.final = true, .trust_content_length = false});
  EXPECT_TRUE(r.anomalies.empty());
  std::vector<uint64_t> offsets;
  for (const MessageInfo& m : r.messages) {
    offsets.push_back(m.offset);
    EXPECT_FALSE(m.content_length_used);
  }
  // 0: alice (split at 'From carol' after the empty line); message 2 runs into message 3,
  // whose From_ line follows no empty line.
  const size_t carol = bytes.find("From carol");
  ASSERT_NE(carol, std::string::npos);
  EXPECT_EQ(offsets, (std::vector<uint64_t>{0, carol, 183, 397, 493}));
  EXPECT_EQ(r.messages[2].end_offset, 396u);  // bob's message swallows erin's
  // Chunked scanning agrees with itself under this option too.
  ExpectSameMessages(ScanInChunks(bytes, EveryByte(bytes.size()), {.trust_content_length = false}),
                     r.messages);
}

TEST(MboxScannerTest, HeaderFieldsForUidl) {
  const std::string bytes = ReadTestdata("dovecot.mbox");
  ScanResult r = ScanMbox(bytes, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].x_uid, 1u);
  EXPECT_EQ(r.messages[0].uid_validity, 1234567890u);
  EXPECT_EQ(r.messages[1].x_uid, 2u);
  EXPECT_FALSE(r.messages[1].uid_validity.has_value());
  EXPECT_FALSE(r.messages[2].x_uid.has_value());
  EXPECT_FALSE(r.messages[2].uid_validity.has_value());

  const std::string dups = ReadTestdata("duplicates.mbox");
  r = ScanMbox(dups, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 3u);
  for (const MessageInfo& m : r.messages) {
    EXPECT_EQ(m.content_hash, r.messages[0].content_hash);
    EXPECT_EQ(m.uidl_digest, r.messages[0].uidl_digest);
  }
  // Different messages differ.
  const std::string dots = ReadTestdata("dots.mbox");
  ScanResult d = ScanMbox(dots, 0, kFinal);
  ASSERT_EQ(d.messages.size(), 2u);
  EXPECT_NE(d.messages[0].content_hash, d.messages[1].content_hash);
  EXPECT_NE(d.messages[0].uidl_digest, d.messages[1].uidl_digest);
}

// The first valid X-UIDL of the header block counts; later ones, and the body, do not.
TEST(MboxScannerTest, FirstValidXUidlWins) {
  struct Case {
    std::string name;
    std::string headers;
    std::string want;
  };
  const Case kCases[] = {
      {"two_valid", "X-UIDL: first\nX-UIDL: second\n", "first"},
      {"invalid_then_two_valid", "X-UIDL: a b\nX-UIDL: second\nX-UIDL: third\n", "second"},
      {"empty_value", "X-UIDL:\nX-UIDL:   \n", ""},
      {"crlf", "X-UIDL: crlf-value\r\n", "crlf-value"},
      {"folded_is_not_part_of_it", "X-UIDL: head\n tail\n", "head"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const std::string mbox =
        "From a@b Thu Nov 29 22:33:52 2001\n" + c.headers + "\nX-UIDL: in-body\n";
    ScanResult r = ScanMbox(mbox, 0, kFinal);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].x_uidl, c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// Restartability.

TEST(MboxScannerTest, CorpusChunkedEqualsOneCall) {
  for (const CorpusCase& c : Corpus()) {
    SCOPED_TRACE(c.name);
    const std::string bytes = ReadTestdata(c.name + ".mbox");
    const std::vector<MessageInfo> want = ScanMbox(bytes, 0, kFinal).messages;
    if (bytes.size() <= 4096) {
      SCOPED_TRACE("every byte");
      ExpectSameMessages(ScanInChunks(bytes, EveryByte(bytes.size())), want);
    }
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      SCOPED_TRACE(absl::StrCat("seed ", seed));
      ExpectSameMessages(ScanInChunks(bytes, RandomCuts(bytes.size(), 1 + seed % 7, seed)), want);
    }
    // Some cuts several times at the same point (a scan that found nothing new).
    ExpectSameMessages(
        ScanInChunks(bytes, {bytes.size() / 2, bytes.size() / 2, bytes.size(), bytes.size()}),
        want);
  }
}

// A small random mbox: a soup of lines that exercises every rule.
std::string RandomMbox(std::mt19937& rng) {
  static const std::vector<std::string> kLines = {
      "From a@b Thu Nov 29 22:33:52 2001",
      "From a@b  Thu Nov  9 22:33:52 2001",
      "From MAILER-DAEMON Fri, 30 Nov 2001 01:02:03 +0100",
      "From the start of a line",
      "From a@b Thu Nov 29 22:33:52 01",
      ">From a@b Thu Nov 29 22:33:52 2001",
      "From",
      "",
      "",
      "",
      ".",
      "..",
      "Subject: s",
      "Content-Length: 0",
      "Content-Length: 4",
      "Content-Length: 12",
      "Content-Length: 40",
      "X-UIDL: abc",
      "X-UID: 7",
      "X-IMAPbase: 5 9",
      "Status: RO",
      " folded",
      "body",
      "more body text",
  };
  std::string out;
  const int n = std::uniform_int_distribution<int>(0, 40)(rng);
  for (int i = 0; i < n; ++i) {
    out += kLines[std::uniform_int_distribution<size_t>(0, kLines.size() - 1)(rng)];
    switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
      case 0:
        out += "\r\n";
        break;
      case 1:
        if (i == n - 1) break;
        [[fallthrough]];  // maybe no final newline
      default:
        out += "\n";
    }
  }
  return out;
}

TEST(MboxScannerTest, RandomChunkedEqualsOneCall) {
  std::mt19937 rng(20261126);
  for (int iter = 0; iter < 300; ++iter) {
    const std::string bytes = RandomMbox(rng);
    SCOPED_TRACE(absl::StrCat("iteration ", iter, ": '", absl::CEscape(bytes), "'"));
    for (bool trust : {true, false}) {
      const ScanOptions options{.final = true, .trust_content_length = trust};
      const std::vector<MessageInfo> want = ScanMbox(bytes, 0, options).messages;
      if (trust || iter % 4 == 0) {  // every cut is the costly part (O(n^2) under ASan)
        ExpectSameMessages(ScanInChunks(bytes, EveryByte(bytes.size()), options), want);
      }
      ExpectSameMessages(ScanInChunks(bytes, RandomCuts(bytes.size(), 3, iter), options), want);
      if (HasFailure()) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Deliveries in progress.

TEST(MboxScannerTest, DeliveryInProgressIsNotReturned) {
  const std::string m1 = "From a@b Thu Nov 29 22:33:52 2001\nSubject: one\n\nfirst\n";
  const std::string m2 = "From c@d Thu Nov 29 22:34:00 2001\nSubject: two\n\nsecond\n";
  const uint64_t m2_offset = m1.size() + 1;
  const std::string whole = m1 + "\n" + m2 + "\n";
  struct Case {
    std::string name;
    size_t cut;  // the buffer is whole[0, cut), not final
    size_t want_messages;
    uint64_t want_resume;
  };
  const Case kCases[] = {
      {"nothing", 0, 0, 0},
      {"inside_first_from_line", 10, 0, 0},
      {"first_from_line_without_newline", m1.find('\n'), 0, 0},
      {"inside_first_body", m1.size() - 3, 0, 0},
      {"first_body_complete", m1.size(), 0, 0},
      {"after_empty_line", m1.size() + 1, 0, 0},
      {"inside_second_from", m1.size() + 1 + 3, 0, 0},
      {"second_from_without_newline", m1.size() + 1 + m2.find('\n'), 0, 0},
      {"second_from_complete", m1.size() + 1 + m2.find('\n') + 1, 1, m2_offset},
      {"inside_second_body", whole.size() - 4, 1, m2_offset},
      {"second_complete", whole.size() - 1, 1, m2_offset},
      {"second_complete_with_empty_line", whole.size(), 1, m2_offset},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    ScanResult r = ScanMbox(std::string_view(whole).substr(0, c.cut), 0, kNotFinal);
    EXPECT_EQ(r.messages.size(), c.want_messages);
    EXPECT_EQ(r.resume_offset, c.want_resume);
    EXPECT_TRUE(r.anomalies.empty());
    // The same delivery seen from its own From_ line, as the indexer resumes.
    if (c.cut >= m2_offset) {
      ScanResult tail = ScanMbox(std::string_view(whole).substr(m2_offset, c.cut - m2_offset),
                                 m2_offset, kNotFinal);
      EXPECT_TRUE(tail.messages.empty());
      EXPECT_EQ(tail.resume_offset, m2_offset);
    }
  }
  // Once the writer is done, the partial buffer's last message is returned.
  ScanResult done = ScanMbox(std::string_view(whole).substr(0, whole.size() - 4), 0, kFinal);
  ASSERT_EQ(done.messages.size(), 2u);
  EXPECT_EQ(done.messages[1].end_offset, whole.size() - 4);
  EXPECT_EQ(done.resume_offset, m2_offset);
}

// A Content-Length that reaches past the end of a non-final buffer cannot be judged yet.
TEST(MboxScannerTest, ContentLengthPastNonFinalBufferWaits) {
  const std::string body = "line\n\nFrom x@y Thu Nov 29 22:33:52 2001\ninner\n";
  const std::string m1 = absl::StrCat(
      "From a@b Thu Nov 29 22:33:52 2001\nContent-Length: ", body.size(), "\n\n", body);
  const std::string whole = m1 + "\nFrom c@d Thu Nov 29 22:33:52 2001\n\nnext\n";
  for (size_t cut = 0; cut <= m1.size() + 1; ++cut) {
    SCOPED_TRACE(cut);
    ScanResult r = ScanMbox(std::string_view(whole).substr(0, cut), 0, kNotFinal);
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.resume_offset, 0u);
  }
  ScanResult r = ScanMbox(whole, 0, kNotFinal);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_TRUE(r.messages[0].content_length_used);
  EXPECT_EQ(r.messages[0].end_offset, m1.size());
}

// ---------------------------------------------------------------------------------------------
// Appending.

// Scans `before` (final), then the file as it grows by each of `appends` in turn, each time
// from the previous resume offset, and checks that the result equals one scan of the final
// file: appending never changes an earlier message, and every resume offset is a sound
// restart point (which need not equal the one-call scan's).
void ExpectAppendConsistent(const std::string& before, const std::vector<std::string>& appends) {
  std::string file = before;
  ScanResult r = ScanMbox(file, 0, kFinal);
  std::vector<MessageInfo> acc = r.messages;
  uint64_t resume = r.resume_offset;
  for (const std::string& more : appends) {
    file += more;
    r = ScanMbox(std::string_view(file).substr(resume), resume, kFinal);
    EXPECT_GE(r.resume_offset, resume);
    Accumulate(&acc, resume, std::move(r.messages));
    resume = r.resume_offset;
    ExpectSameMessages(acc, ScanMbox(file, 0, kFinal).messages);
    if (::testing::Test::HasFailure()) return;
  }
}

void ExpectAppendConsistent(const std::string& before, const std::string& appended) {
  ExpectAppendConsistent(before, std::vector<std::string>{appended});
}

std::string NewDelivery(int i) {  // what Postfix local(8) appends
  return absl::StrCat("From new", i, "@example.org  Sat Dec  1 1", i % 10,
                      ":00:00 2001\nSubject: new ", i, "\n\nnew body ", i, "\n\n");
}

TEST(MboxScannerTest, CorpusAppendKeepsEarlierMessages) {
  for (const CorpusCase& c : Corpus()) {
    SCOPED_TRACE(c.name);
    const std::string bytes = ReadTestdata(c.name + ".mbox");
    ExpectAppendConsistent(bytes, {NewDelivery(1), NewDelivery(2)});
    ExpectAppendConsistent(bytes, NewDelivery(1) + NewDelivery(2));
  }
}

TEST(MboxScannerTest, RandomAppendKeepsEarlierMessages) {
  std::mt19937 rng(7);
  for (int iter = 0; iter < 500; ++iter) {
    const std::string before = RandomMbox(rng);
    SCOPED_TRACE(absl::StrCat("iteration ", iter, ": '", absl::CEscape(before), "'"));
    // Deliveries are appended directly, even onto a From_ line that has no newline yet.
    ExpectAppendConsistent(before, {NewDelivery(iter), NewDelivery(iter + 1)});
    if (HasFailure()) return;
  }
}

// A final buffer that ends inside a valid From_ line: that line is not a message yet and the
// message before it is tentative (resume_offset at its From_ line), so a delivery glued onto
// the unterminated line gives the same result incrementally as in one scan.
TEST(MboxScannerTest, AppendToUnterminatedFromLine) {
  ExpectAppendConsistent(
      "From a@b Thu Nov 29 22:33:52 2001\n\nbody\n\nFrom c@d Thu Nov 29 22:33:52 2001",
      NewDelivery(5));
}

// A message that ends at the end of a final buffer is returned but tentative, whether a
// Content-Length or the From_ rule ended it and whether an empty line follows: appended empty
// lines or glued text could still belong to it (scanner.h, ScanResult::resume_offset).
TEST(MboxScannerTest, ContentLengthToEndOfFileIsTentative) {
  struct Case {
    std::string name;
    std::string file;
  };
  const std::string from = "From a@b Thu Nov 29 22:33:52 2001\n";
  const Case kCases[] = {
      {"body_with_newline", from + "Content-Length: 5\n\nlast\n"},
      {"body_without_newline", from + "Content-Length: 4\n\nlast"},
      {"empty_line_then_eof", from + "Content-Length: 5\n\nlast\n\n"},
      {"body_ends_with_empty_line", from + "Content-Length: 6\n\nlast\n\n"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    ScanResult r = ScanMbox(c.file, 0, kFinal);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_TRUE(r.messages[0].content_length_used);
    EXPECT_EQ(r.resume_offset, 0u);
    ExpectAppendConsistent(c.file, NewDelivery(3));
    ExpectAppendConsistent(c.file, "\n\n" + NewDelivery(3));  // extra empty lines first
  }
}

// A Content-Length that is wrong when its message is delivered (it points past EOF, so it is
// ignored) can become "right" once the next delivery is appended, if it measures exactly that
// far: with trust_content_length a whole-file scan then merges the two messages. That hazard
// is why trusting the header is a site option, off in poplar-indexer by default
// (config.proto trust_content_length). Without trust, appending never changes the split.
TEST(MboxScannerTest, ForgedContentLengthCannotSwallowALaterDeliveryWithoutTrust) {
  const std::string next = "From b@x Thu Nov 29 22:40:00 2001\nSubject: next\n\nb\n";
  const std::string first = absl::StrCat(
      "From a@x Thu Nov 29 22:33:52 2001\nContent-Length: ", 2 + 1 + next.size(), "\n\na\n\n");
  const std::string file = first + next + "\n";
  const ScanOptions no_trust{.final = true, .trust_content_length = false};
  ScanResult before = ScanMbox(first, 0, no_trust);
  std::vector<MessageInfo> acc = before.messages;
  ScanResult after =
      ScanMbox(std::string_view(file).substr(before.resume_offset), before.resume_offset, no_trust);
  Accumulate(&acc, before.resume_offset, std::move(after.messages));
  ScanResult whole = ScanMbox(file, 0, no_trust);
  ASSERT_EQ(whole.messages.size(), 2u);
  ExpectSameMessages(acc, whole.messages);
  // The hazard itself, with trust on: one message where two were delivered.
  EXPECT_EQ(ScanMbox(file, 0, kFinal).messages.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Leading garbage and a huge message.

TEST(MboxScannerTest, GarbageOnly) {
  struct Case {
    std::string name;
    std::string file;
    std::vector<Anomaly> want_anomalies;
  };
  const Case kCases[] = {
      {"text", "not an mbox\n", {{0, AnomalyKind::kLeadingGarbage}}},
      {"text_without_newline", "not an mbox", {{0, AnomalyKind::kLeadingGarbage}}},
      {"from_line_after_text",
       "text\nFrom a@b Thu Nov 29 22:33:52 2001\n\nbody\n",
       {{0, AnomalyKind::kLeadingGarbage}}},
      {"invalid_from_line", "From nobody\n\nbody\n", {{0, AnomalyKind::kLeadingGarbage}}},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    ScanResult r = ScanMbox(c.file, 0, kFinal);
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.anomalies, c.want_anomalies);
    // Not reported before the writer is done: the text may yet be followed by a separator.
    EXPECT_TRUE(ScanMbox(c.file, 0, kNotFinal).anomalies.empty());
    ExpectAppendConsistent(c.file, NewDelivery(4));
    ExpectAppendConsistent(c.file, "\n" + NewDelivery(4));
  }
}

TEST(MboxScannerTest, HugeMessage) {
  constexpr size_t kLines = 20 * 1024 * 1024 / 64;  // 20 MB of 64-byte lines
  const std::string from = "From big@example.org Thu Nov 29 22:33:52 2001\n";
  const std::string headers = "Subject: huge\nContent-Type: text/plain\n\n";
  std::string mbox = from + headers;
  mbox.reserve(mbox.size() + kLines * 64 + 200);
  std::string line(63, 'x');
  line += '\n';
  for (size_t i = 0; i < kLines; ++i) {
    // Every 1000th line is a dot line, every 777th a '>From ' line: no effect on sizes.
    if (i % 1000 == 0) {
      mbox += "." + line.substr(1);
    } else if (i % 777 == 0) {
      mbox += ">From " + line.substr(6);
    } else {
      mbox += line;
    }
  }
  const size_t end = mbox.size();
  const std::string tail = "\nFrom small@example.org Thu Nov 29 22:40:00 2001\n\nsmall\n";
  mbox += tail;

  ScanResult r = ScanMbox(mbox, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 2u);
  const MessageInfo& m = r.messages[0];
  EXPECT_EQ(m.data_offset, from.size());
  EXPECT_EQ(m.end_offset, end);
  EXPECT_EQ(m.header_length, headers.size());
  EXPECT_EQ(m.lines, kLines + 3);
  EXPECT_EQ(m.octets, (end - from.size()) + kLines + 3);
  EXPECT_TRUE(m.final_newline);
  EXPECT_EQ(r.messages[1].offset, end + 1);
  EXPECT_EQ(r.resume_offset, end + 1);  // the small one has no trailing empty line

  // Grown in 4 MB steps while being delivered: nothing until the next From_ line arrives.
  std::vector<size_t> cuts;
  for (size_t k = 4 << 20; k < mbox.size(); k += 4 << 20) cuts.push_back(k);
  for (size_t k : cuts) {
    ScanResult partial = ScanMbox(std::string_view(mbox).substr(0, k), 0, kNotFinal);
    EXPECT_TRUE(partial.messages.empty());
    EXPECT_EQ(partial.resume_offset, 0u);
  }
  ExpectSameMessages(ScanInChunks(mbox, cuts), r.messages);
}

}  // namespace
}  // namespace poplar::mbox

namespace poplar::mbox {
namespace {

// The envelope fields come from the From_ line exactly as ParseFromLine reads it, even when the
// line ends in "\r\r" (the parser strips one '\r'; the scanner must not strip another first).
TEST(MboxScannerTest, EnvelopeDateMatchesTheParserForDoubleCr) {
  const std::string line = "From a@b Thu Nov 29 22:33:52 2001 x \r\r";
  std::optional<FromLine> parsed = ParseFromLine(line);
  ASSERT_TRUE(parsed.has_value());
  ScanResult r = ScanMbox(line + "\nA: b\n\nx\n", 0, {.final = true});
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].date, std::string(parsed->date));
  EXPECT_EQ(r.messages[0].sender, "a@b");
}

}  // namespace
}  // namespace poplar::mbox
