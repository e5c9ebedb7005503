// ScanMbox against an independent reference implementation of the rules in scanner.h,
// written to be obviously right rather than fast: split into lines first, then walk them.
// Thousands of seeded random mboxes (valid and invalid From_ lines, empty and '.' lines,
// LF/CRLF mixing, right and wrong Content-Length, missing final newline, leading garbage).
#include <cstdint>
#include <optional>
#include <random>
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

// ---------------------------------------------------------------------------------------------
// The reference.

struct RefLine {
  size_t start = 0;  // offset of the first byte
  size_t next = 0;   // offset just past the line's '\n' (or the end of the buffer)
  std::string text;  // without the '\n'
  bool terminated = false;
};

struct RefMessage {
  uint64_t offset = 0, data_offset = 0, end_offset = 0, header_length = 0, lines = 0, octets = 0;
  bool final_newline = false;
  bool content_length_used = false;
};

struct RefResult {
  std::vector<RefMessage> messages;
  uint64_t resume_offset = 0;
  std::vector<Anomaly> anomalies;
};

std::vector<RefLine> SplitLines(const std::string& s) {
  std::vector<RefLine> lines;
  RefLine cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n') {
      cur.next = i + 1;
      cur.terminated = true;
      lines.push_back(cur);
      cur = RefLine();
      cur.start = i + 1;
    } else {
      cur.text.push_back(s[i]);
    }
  }
  if (!cur.text.empty()) {
    cur.next = s.size();
    lines.push_back(cur);
  }
  return lines;
}

bool IsEmpty(const RefLine& l) { return l.terminated && (l.text.empty() || l.text == "\r"); }
bool IsSeparatorText(const RefLine& l) { return ParseFromLine(l.text).has_value(); }

std::string Lowercase(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// "Content-Length:" followed by blanks, 1-18 digits, then nothing or a blank.
std::optional<uint64_t> ContentLengthOf(std::string text) {
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty() || text[0] == ' ' || text[0] == '\t') return std::nullopt;  // continuation
  const size_t colon = text.find(':');
  if (colon == std::string::npos || Lowercase(text.substr(0, colon)) != "content-length") {
    return std::nullopt;
  }
  size_t i = colon + 1;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  uint64_t value = 0;
  size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    ++digits;
    ++i;
  }
  if (digits == 0 || digits > 18) return std::nullopt;
  if (i < text.size() && text[i] != ' ' && text[i] != '\t') return std::nullopt;
  return value;
}

RefResult ReferenceScan(const std::string& buf, bool trust_content_length) {
  const std::vector<RefLine> lines = SplitLines(buf);
  const size_t n = lines.size();
  RefResult out;

  // The first separator: the first line, or a line after an empty line.
  size_t s = 0;
  bool garbage = false;
  while (s < n && !((s == 0 || IsEmpty(lines[s - 1])) && IsSeparatorText(lines[s]))) {
    if (!IsEmpty(lines[s])) garbage = true;
    ++s;
  }
  if (garbage) out.anomalies.push_back({0, AnomalyKind::kLeadingGarbage});
  if (s == n) return out;  // resume at the start: the text may yet be followed by mail
  // A separator without its newline at the very end is still being written: no message yet.
  auto unterminated = [&](size_t k) { return k + 1 == n && buf.back() != '\n'; };
  if (unterminated(s)) {
    out.resume_offset = lines[s].start;
    return out;
  }

  while (true) {
    RefMessage m;
    m.offset = lines[s].start;
    m.data_offset = lines[s].next;
    // Headers: up to and including the first empty line.
    size_t h = s + 1;
    std::optional<uint64_t> cl;
    while (h < n && !IsEmpty(lines[h])) {
      if (!cl) cl = ContentLengthOf(lines[h].text);
      ++h;
    }
    const bool has_header_end = h < n;

    std::optional<size_t> end;   // end offset of the message
    std::optional<size_t> next;  // line index of the next separator
    bool decided = false;
    if (has_header_end && cl && trust_content_length) {
      const uint64_t p = lines[h].next + *cl;
      if (p == buf.size()) {
        decided = true;
        end = p;
      } else if (p < buf.size()) {
        for (size_t k = h + 1; k < n; ++k) {
          if (lines[k].start != p) continue;
          if (IsEmpty(lines[k]) && k + 1 == n) {
            decided = true;
            end = p;
          } else if (IsEmpty(lines[k]) && IsSeparatorText(lines[k + 1])) {
            decided = true;
            end = p;
            next = k + 1;
          } else if (IsSeparatorText(lines[k])) {
            decided = true;
            end = p;
            next = k;
          }
          break;
        }
      }
      if (!decided) out.anomalies.push_back({m.offset, AnomalyKind::kContentLengthIgnored});
      m.content_length_used = decided;
    }
    if (!decided) {
      // The From_ rule: a separator line right after an empty line of this message.
      for (size_t k = s + 2; k < n; ++k) {
        if (IsEmpty(lines[k - 1]) && IsSeparatorText(lines[k])) {
          next = k;
          end = lines[k - 1].start;
          break;
        }
      }
      if (!next) {
        end = buf.size();
        if (n > s + 1 && IsEmpty(lines[n - 1])) end = lines[n - 1].start;  // trailing empty line
      }
    }

    m.end_offset = *end;
    m.header_length =
        (has_header_end ? std::min<uint64_t>(lines[h].next, m.end_offset) : m.end_offset) -
        m.data_offset;
    const std::string msg = buf.substr(m.data_offset, m.end_offset - m.data_offset);
    m.final_newline = !msg.empty() && msg.back() == '\n';
    for (size_t i = 0; i < msg.size(); ++i) {
      if (msg[i] == '\n') {
        ++m.lines;
        m.octets += (i > 0 && msg[i - 1] == '\r') ? 1 : 2;
      } else {
        ++m.octets;
      }
    }
    if (!msg.empty() && !m.final_newline) {
      ++m.lines;
      m.octets += 2;
    }
    if (msg.empty()) m.octets = 2;
    out.messages.push_back(m);

    if (next && unterminated(*next)) {  // this message is tentative, the next not one yet
      out.resume_offset = m.offset;
      return out;
    }
    if (next) {
      s = *next;
      continue;
    }
    // At the end of the file more bytes (glued text, more empty lines) could still belong to
    // the last message: the next scan starts at it.
    out.resume_offset = m.offset;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// The generator.

class MboxGenerator {
 public:
  explicit MboxGenerator(uint32_t seed) : rng_(seed) {}

  std::string Mbox() {
    std::string out;
    if (OneIn(10))
      out += Line(Pick(
          {"garbage before the first message", "From nobody", ">From x", "", "Subject: orphan"}));
    const int messages = Uniform(0, 8);
    for (int i = 0; i < messages; ++i) {
      out += Message();
      if (i + 1 < messages || OneIn(2)) out += Eol();  // the separator's empty line
    }
    if (!out.empty() && OneIn(6)) {  // no final newline
      while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    }
    return out;
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool OneIn(int n) { return Uniform(1, n) == 1; }
  std::string Pick(const std::vector<std::string>& v) {
    return v[static_cast<size_t>(Uniform(0, static_cast<int>(v.size()) - 1))];
  }
  std::string Eol() {
    if (mode_ == 0) return "\n";
    if (mode_ == 1) return "\r\n";
    return OneIn(2) ? "\n" : "\r\n";
  }
  std::string Line(const std::string& text) { return text + Eol(); }

  std::string ValidFrom() {
    return Pick({
        "From alice@example.org Thu Nov 29 22:33:52 2001",
        "From bob@example.net  Fri Nov  9 08:05:01 2001",
        "From MAILER-DAEMON Sat, 30 Nov 2002 01:02:03 +0100",
        "From \"a b\"@c Mon Dec  3 09:00 CET 2001",
        "From x Thu Nov 29 22:33:52 2001 remote from uunet",
        "From y Thu Nov 29 22:33:52 -0500 2001",
        // Around kMaxFromLineLength: 1024 is a separator, 1025 is not.
        "From z Thu Nov 29 22:33:52 2001 " + std::string(1024 - 32, 'r'),
        "From z Thu Nov 29 22:33:52 2001 " + std::string(1025 - 32, 'r'),
    });
  }
  std::string InvalidFrom() {
    return Pick({"From the start of a line", "From a@b Thu Nov 29 22:33:52 01", "From", "From ",
                 "From a@b", ">From alice@example.org Thu Nov 29 22:33:52 2001",
                 "From a@b Thu Nov 29 22:33:52 2001x", "Fro", "From: alice@example.org"});
  }

  std::string BodyLine() {
    switch (Uniform(0, 11)) {
      case 0:
        return Line(".");
      case 1:
        return Line("..");
      case 2:
        return Line(".text");
      case 3:
      case 4:
        return Line("");
      case 5:
        return Line(InvalidFrom());
      case 6:
        return Line(OneIn(3) ? ValidFrom() : ">" + ValidFrom());
      case 7:
        return Line("Content-Length: 3");  // in a body: not a header
      default:
        return Line(Pick({"text", "more text here", "x", "\t indented", "end."}));
    }
  }

  std::string Message() {
    mode_ = Uniform(0, 2);
    std::string from = OneIn(12) ? InvalidFrom() : ValidFrom();
    std::string headers;
    const int header_lines = Uniform(0, 4);
    for (int i = 0; i < header_lines; ++i) {
      headers +=
          Line(Pick({"Subject: hi", "From: a@b", "X-UIDL: u1", "Status: RO", "Received: from x",
                     " folded continuation", "X-Note: From here", "content-length:7",
                     "Content-Length: 12abc", "Content-Length: 1234567890123456789"}));
    }
    std::string body;
    const int body_lines = Uniform(0, 8);
    for (int i = 0; i < body_lines; ++i) body += BodyLine();
    const bool header_end = !OneIn(8);
    if (OneIn(3) && header_end) {
      // Content-Length: right, or wrong by a little or a lot.
      int64_t cl = static_cast<int64_t>(body.size());
      switch (Uniform(0, 5)) {
        case 0:
          cl += 1;
          break;
        case 1:
          cl -= 1;
          break;
        case 2:
          cl += Uniform(2, 60);
          break;
        case 3:
          cl = Uniform(0, 20);
          break;
        default:
          break;  // right
      }
      if (cl < 0) cl = 0;
      headers = Line(absl::StrCat("Content-Length: ", cl)) + headers;
    }
    return Line(from) + headers + (header_end ? Eol() : "") + body;
  }

  std::mt19937 rng_;
  int mode_ = 0;  // 0 LF, 1 CRLF, 2 mixed
};

// ---------------------------------------------------------------------------------------------

std::string Describe(const RefMessage& m) {
  return absl::StrCat("{offset=", m.offset, " data=", m.data_offset, " end=", m.end_offset,
                      " hdr=", m.header_length, " lines=", m.lines, " octets=", m.octets,
                      " nl=", int{m.final_newline}, " cl=", int{m.content_length_used}, "}");
}

RefMessage FromScanner(const MessageInfo& m) {
  return {m.offset, m.data_offset, m.end_offset,    m.header_length,
          m.lines,  m.octets,      m.final_newline, m.content_length_used};
}

void ExpectSame(const ScanResult& got, const RefResult& want) {
  ASSERT_EQ(got.messages.size(), want.messages.size());
  for (size_t i = 0; i < want.messages.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("message ", i + 1));
    EXPECT_EQ(Describe(FromScanner(got.messages[i])), Describe(want.messages[i]));
  }
  EXPECT_EQ(got.resume_offset, want.resume_offset);
  EXPECT_EQ(got.anomalies, want.anomalies);
}

ScanResult ExpectAgrees(const std::string& mbox, bool trust) {
  const RefResult want = ReferenceScan(mbox, trust);
  ScanResult got = ScanMbox(mbox, 0, ScanOptions{.final = true, .trust_content_length = trust});
  ExpectSame(got, want);
  return got;
}

// The reference itself, on hand-checked inputs, so that agreement means something.
TEST(MboxReferenceTest, ReferenceOnKnownInputs) {
  struct Case {
    std::string name;
    std::string mbox;
    std::vector<uint64_t> want_ends;
    uint64_t want_resume;
  };
  const std::string f = "From a@b Thu Nov 29 22:33:52 2001\n";  // 34 bytes
  const Case kCases[] = {
      {"empty", "", {}, 0},
      {"one", f + "\nhi\n", {38}, 0},
      {"two", f + "\nhi\n\n" + f + "\nyo\n\n", {38, 77}, 39},
      {"unquoted_after_text", f + "\nhi\n" + f + "\nyo\n", {76}, 0},
      // The body "\n" f "\nyo\n" holds a separator after an empty line; 39 protects it.
      {"cl_protects", f + "Content-Length: 39\n\n\n" + f + "\nyo\n\n", {93}, 0},
      {"cl_wrong", f + "Content-Length: 3\n\n\n" + f + "\nyo\n\n", {53, 92}, 54},
      {"no_newline", f + "\nhi", {37}, 0},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    RefResult r = ReferenceScan(c.mbox, true);
    std::vector<uint64_t> ends;
    for (const RefMessage& m : r.messages) ends.push_back(m.end_offset);
    EXPECT_EQ(ends, c.want_ends);
    EXPECT_EQ(r.resume_offset, c.want_resume);
  }
}

TEST(MboxReferenceTest, RandomMboxesAgree) {
  int with_messages = 0, with_cl_used = 0, with_cl_ignored = 0, with_crlf = 0;
  for (uint32_t seed = 1; seed <= 3000; ++seed) {
    MboxGenerator gen(seed);
    const std::string mbox = gen.Mbox();
    SCOPED_TRACE(absl::StrCat("seed ", seed, ": '", absl::CEscape(mbox), "'"));
    const ScanResult r = ExpectAgrees(mbox, /*trust=*/true);
    ExpectAgrees(mbox, /*trust=*/false);
    if (HasFailure()) return;
    // Keep the generator honest: the interesting cases must actually occur.
    with_messages += !r.messages.empty();
    for (const MessageInfo& m : r.messages) with_cl_used += m.content_length_used;
    for (const Anomaly& a : r.anomalies) {
      with_cl_ignored += a.kind == AnomalyKind::kContentLengthIgnored;
    }
    with_crlf += mbox.find("\r\n") != std::string::npos;
  }
  EXPECT_GT(with_messages, 2200);
  EXPECT_GT(with_cl_used, 200);
  EXPECT_GT(with_cl_ignored, 200);
  EXPECT_GT(with_crlf, 800);
}

// The reference has no notion of chunks; the scanner scanned in pieces must still match it.
TEST(MboxReferenceTest, RandomMboxesAgreeInChunks) {
  for (uint32_t seed = 10001; seed <= 10500; ++seed) {
    MboxGenerator gen(seed);
    const std::string mbox = gen.Mbox();
    SCOPED_TRACE(absl::StrCat("seed ", seed, ": '", absl::CEscape(mbox), "'"));
    const RefResult want = ReferenceScan(mbox, true);
    std::mt19937 rng(seed);
    std::vector<MessageInfo> acc;
    uint64_t resume = 0;
    size_t k = 0;
    while (true) {
      k = std::min(mbox.size(), k + std::uniform_int_distribution<size_t>(1, 200)(rng));
      const bool final = k == mbox.size();
      ScanResult r =
          ScanMbox(std::string_view(mbox).substr(resume, k - resume), resume, {.final = final});
      std::erase_if(acc, [&](const MessageInfo& m) { return m.offset >= resume; });
      acc.insert(acc.end(), r.messages.begin(), r.messages.end());
      resume = r.resume_offset;
      if (final) break;
    }
    ASSERT_EQ(acc.size(), want.messages.size());
    for (size_t i = 0; i < acc.size(); ++i) {
      EXPECT_EQ(Describe(FromScanner(acc[i])), Describe(want.messages[i])) << "message " << i + 1;
    }
    EXPECT_EQ(resume, want.resume_offset);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace poplar::mbox
