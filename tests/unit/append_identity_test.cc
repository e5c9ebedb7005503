// Issue 15: a message's UIDL, identity (content hash), size and served bytes must not change
// when bytes are only appended after it (common/mbox/content_hash.h, README "mbox rules").
// Every last-message shape a real spool has × every way an MDA appends: the old messages are
// scanned before and after the delivery, as the indexer does (a final scan of the whole file),
// and compared field by field; the served bytes are compared through the POP3 transform.
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "common/pop3/wire_transform.h"
#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

constexpr ScanOptions kFinal{.final = true, .trust_content_length = false};

constexpr std::string_view kFirst =
    "From alice@example.org  Thu Nov 27 10:00:00 2026\n"
    "From: alice@example.org\nSubject: first\nMessage-ID: <1@t>\n\nfirst body\n\n";
constexpr std::string_view kFrom = "From bob@example.org  Thu Nov 27 11:00:00 2026\n";
constexpr std::string_view kNew =
    "From carol@example.org  Fri Nov 28 09:00:00 2026\n"
    "From: carol@example.org\nSubject: new\nMessage-ID: <new@t>\n\nnew body\n\n";

// absl::StrCat takes absl::string_view, which is not std::string_view in Debian's abseil.
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

struct Shape {
  std::string_view name;
  std::string_view last;  // the last message after its From_ line, as the file ends
};

// Where the file ends. A file that does not end in "\n" needs a padding MDA to stay well formed.
constexpr Shape kShapes[] = {
    {"final newline and empty line", "Subject: s\n\nbody\n\n"},
    {"final newline, no empty line", "Subject: s\n\nbody\n"},
    {"no final newline", "Subject: s\n\nbody"},
    {"CRLF, no final newline", "Subject: s\r\n\r\nline\r\nbody"},
    {"CRLF cut between CR and LF", "Subject: s\r\n\r\nline\r\nbody\r"},
    {"CRLF with its empty line", "Subject: s\r\n\r\nbody\r\n\r\n"},
    {"trailing blanks, no final newline", "Subject: s\n\nbody  \t "},
    {"a blank-only last line, no final newline", "Subject: s\n\nbody\n   "},
    {"two trailing empty lines", "Subject: s\n\nbody\n\n\n"},
    {"three trailing empty lines", "Subject: s\n\nbody\n\n\n\n"},
    {">From last line", "Subject: s\n\nbody\n>From here\n\n"},
    {">From last line, no final newline", "Subject: s\n\nbody\n>From here"},
    {"headers only, no final newline", "Subject: s\nX-Other: t"},
    {"headers only, cut between CR and LF", "Subject: s\r\nX-Other: t\r"},
    {"header block ended by a lone CR", "Subject: s\r\n\r"},
    {"empty message", ""},
    {"X-UIDL as the unfinished last header line", "Subject: s\nX-UIDL: 0123456789abcdef"},
};

enum class Mda {
  kPadding,    // dotlock + fcntl, writes the missing "\n" and the empty line first
  kProcmail,   // procmail: appends its message (ending in an empty line) as is
  kNoPadding,  // appends a From_ line at once, whatever the file ends with
  kPadAlways,  // always writes one "\n" (plus the missing one) before its From_ line
};

std::string Deliver(std::string file, Mda mda) {
  const bool ends_nl = !file.empty() && file.back() == '\n';
  switch (mda) {
    case Mda::kPadding:
      if (!ends_nl) file += "\n";
      if (!(file.size() >= 2 && file.ends_with("\n\n")) && !file.ends_with("\n\r\n")) file += "\n";
      break;
    case Mda::kPadAlways:
      if (!ends_nl) file += "\n";
      file += "\n";
      break;
    case Mda::kProcmail:
    case Mda::kNoPadding:
      break;
  }
  return file + std::string(kNew);
}

std::string_view MdaName(Mda m) {
  switch (m) {
    case Mda::kPadding:
      return "padding MDA";
    case Mda::kProcmail:
      return "procmail";
    case Mda::kNoPadding:
      return "non-padding MDA";
    case Mda::kPadAlways:
      return "always-padding MDA";
  }
  return "?";
}

// Does this delivery leave the old messages as they were? Only text glued onto the last message
// changes it: a From_ line that does not follow an empty line is body text (design §3), and an
// MDA that adds empty lines where the file already has its separating one makes them part of the
// message before (as every mbox reader counts them).
bool KeepsIdentity(std::string_view last, Mda mda) {
  const std::string file = Cat({kFirst, kFrom, last});
  const bool ends_with_empty_line =
      file.ends_with("\n\n") || file.ends_with("\n\r\n");  // the From_ line ends in "\n"
  switch (mda) {
    case Mda::kPadding:
      return true;
    case Mda::kPadAlways:
      // A lone CR after the last newline is an empty line not yet complete.
      return !ends_with_empty_line && !file.ends_with("\n\r");
    case Mda::kProcmail:
    case Mda::kNoPadding:
      return ends_with_empty_line;
  }
  return false;
}

std::string Served(std::string_view message) {
  pop3::WireTransform t(pop3::WireTransform::Options{.dot_stuff = true, .top_lines = std::nullopt});
  std::string out;
  t.Feed(message, &out);
  t.Finish(/*terminator=*/true, &out);
  return out;
}

struct Seen {
  std::string uidl;
  std::string hash;
  uint64_t octets;
  uint64_t lines;
  std::string served;
};

std::vector<Seen> Observe(std::string_view file) {
  const ScanResult r = ScanMbox(file, 0, kFinal);
  UidlAssigner uidls;
  std::vector<Seen> out;
  for (const MessageInfo& m : r.messages) {
    out.push_back(Seen{uidls.Assign(m), m.content_hash.Hex(), m.octets, m.lines,
                       Served(file.substr(m.data_offset, m.length()))});
  }
  return out;
}

TEST(AppendIdentityTest, EveryShapeTimesEveryDelivery) {
  for (const Shape& shape : kShapes) {
    for (Mda mda : {Mda::kPadding, Mda::kProcmail, Mda::kNoPadding, Mda::kPadAlways}) {
      SCOPED_TRACE(Cat({shape.name, " + ", MdaName(mda)}));
      const std::string before = Cat({kFirst, kFrom, shape.last});
      const std::string after = Deliver(before, mda);
      const std::vector<Seen> old = Observe(before);
      const std::vector<Seen> now = Observe(after);
      ASSERT_EQ(old.size(), 2u);
      // The first message never changes.
      ASSERT_GE(now.size(), 1u);
      EXPECT_EQ(now[0].uidl, old[0].uidl);
      EXPECT_EQ(now[0].hash, old[0].hash);
      if (KeepsIdentity(shape.last, mda)) {
        ASSERT_EQ(now.size(), 3u) << "the delivery is a message of its own";
        EXPECT_EQ(now[1].uidl, old[1].uidl);
        EXPECT_EQ(now[1].hash, old[1].hash);
        EXPECT_EQ(now[1].octets, old[1].octets);
        EXPECT_EQ(now[1].lines, old[1].lines);
        EXPECT_EQ(now[1].served, old[1].served);
        // No line of these shapes starts with '.': the wire form is the size plus ".\r\n".
        EXPECT_EQ(now[1].served.size(), now[1].octets + 3);
        // The indexer rescans only from the old resume offset: the same answer.
        const ScanResult first = ScanMbox(before, 0, kFinal);
        const uint64_t resume = first.resume_offset;
        const ScanResult tail = ScanMbox(std::string_view(after).substr(resume), resume, kFinal);
        ASSERT_EQ(tail.messages.size(), 2u);
        EXPECT_EQ(tail.messages[0].content_hash.Hex(), old[1].hash);
        EXPECT_EQ(tail.messages[0].uidl_digest, first.messages[1].uidl_digest);
      } else {
        // Text glued onto the last message (the delivery became part of it), or a second empty
        // line before the new separator: the message's stored text changed, and so did its
        // identity.
        ASSERT_EQ(now.size(), mda == Mda::kPadAlways ? 3u : 2u);
        EXPECT_NE(now[1].hash, old[1].hash);
        // The UIDL digest leaves out the empty line that ends a header block, so only glued text
        // is sure to change it.
        if (mda != Mda::kPadAlways) {
          EXPECT_NE(now[1].uidl, old[1].uidl);
        }
      }
    }
  }
}

// Content-Length (design §3): a forged header that measures the old last message plus the next
// delivery exactly would make a later scan take the two for one. With the default (not trusted)
// the delivery stays a message of its own and the old one keeps its identity. Sites that turn
// trust_content_length on (Dovecot-written mboxcl2 spools) accept that risk (README).
TEST(AppendIdentityTest, ForgedContentLengthDoesNotSwallowTheNextDelivery) {
  const std::string body = "short\n";
  const std::string next = std::string("\n") + std::string(kNew);  // padding + the delivery
  const std::string last =
      "Subject: s\nContent-Length: " + std::to_string(body.size() + next.size()) + "\n\n" + body;
  const std::string before = Cat({kFirst, kFrom, last});
  const std::string after = before + next;
  const std::vector<Seen> old = Observe(before);
  const std::vector<Seen> now = Observe(after);
  ASSERT_EQ(old.size(), 2u);
  ASSERT_EQ(now.size(), 3u);
  EXPECT_EQ(now[1].uidl, old[1].uidl);
  EXPECT_EQ(now[1].hash, old[1].hash);
  // The same file with Content-Length trusted: the forgery works, which is why it is off.
  const ScanResult trusted =
      ScanMbox(after, 0, ScanOptions{.final = true, .trust_content_length = true});
  EXPECT_EQ(trusted.messages.size(), 2u);
}

// Messages that end in "\n" keep the content hash and digest they had before the rule (an upgrade
// must not make a client download anything again): the pinned values of uidl_test plus every
// shape above that ends in "\n" hashed as the bytes themselves.
TEST(AppendIdentityTest, MessagesEndingInNewlineHashAsStored) {
  const std::string file =
      absl::StrCat("From a@b Thu Nov 29 22:33:52 2001\nFrom: a@b\nSubject: pinned\n\nbody\n");
  const ScanResult r = ScanMbox(file, 0, kFinal);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].uidl_digest, "8c9484475e03aa7341e89075");
  EXPECT_EQ(r.messages[0].content_hash.Hex(), "58148550d8dd7afbdf1cbc0a59ac0f5b");
  // Without its final "\n" the same message is the same message.
  const ScanResult cut = ScanMbox(std::string_view(file).substr(0, file.size() - 1), 0, kFinal);
  ASSERT_EQ(cut.messages.size(), 1u);
  EXPECT_EQ(cut.messages[0].uidl_digest, "8c9484475e03aa7341e89075");
  EXPECT_EQ(cut.messages[0].content_hash.Hex(), "58148550d8dd7afbdf1cbc0a59ac0f5b");
}

// Every testdata message that ends in "\n", against the values the release before this rule
// computed (tests/testdata/identity_golden.tsv): upgrading changes none of them.
TEST(AppendIdentityTest, UpgradeKeepsTheUidlsOfMessagesEndingInNewline) {
  std::ifstream golden(std::string(POPLAR_TESTDATA) + "/identity_golden.tsv");
  ASSERT_TRUE(golden.good());
  std::string line;
  std::string current_file;
  std::vector<MessageInfo> messages;
  std::vector<std::string> uidls;
  int checked = 0;
  while (std::getline(golden, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string file, offset, uidl, hash;
    ASSERT_TRUE(std::getline(fields, file, '\t') && std::getline(fields, offset, '\t') &&
                std::getline(fields, uidl, '\t') && std::getline(fields, hash, '\t'))
        << line;
    if (file != current_file) {
      std::ifstream in(std::string(POPLAR_TESTDATA) + "/" + file, std::ios::binary);
      ASSERT_TRUE(in.good()) << file;
      std::ostringstream bytes;
      bytes << in.rdbuf();
      messages = ScanMbox(bytes.str(), 0, kFinal).messages;
      UidlAssigner assigner;
      uidls.clear();
      for (const MessageInfo& m : messages) uidls.push_back(assigner.Assign(m));
      current_file = file;
    }
    bool found = false;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (std::to_string(messages[i].offset) != offset) continue;
      found = true;
      EXPECT_EQ(uidls[i], uidl) << file << " at " << offset;
      EXPECT_EQ(messages[i].content_hash.Hex(), hash) << file << " at " << offset;
    }
    EXPECT_TRUE(found) << file << " at " << offset;
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

}  // namespace
}  // namespace poplar::mbox
