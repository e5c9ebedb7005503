// UidlAssigner and the scanner's UIDL digest (common/mbox/uidl.h, design §4, RFC 1939 §7).
#include "common/mbox/uidl.h"

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/mbox/scanner.h"
#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

constexpr ScanOptions kFinal{.final = true};

std::string ReadTestdata(std::string_view name) {
  const std::string path = absl::StrCat(POPLAR_TESTDATA, "/", std::string(name));
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<MessageInfo> Scan(std::string_view mbox) { return ScanMbox(mbox, 0, kFinal).messages; }

std::vector<std::string> AssignAll(const std::vector<MessageInfo>& messages,
                                   UidlOptions options = {}) {
  UidlAssigner assigner(options);
  std::vector<std::string> out;
  for (const MessageInfo& m : messages) out.push_back(assigner.Assign(m));
  return out;
}

// One message with the given header block and body.
std::string Message(std::string_view headers, std::string_view body,
                    std::string_view from = "From a@b Thu Nov 29 22:33:52 2001") {
  return std::string(from) + "\n" + std::string(headers) + "\n" + std::string(body);
}

MessageInfo ScanOne(std::string_view mbox) {
  std::vector<MessageInfo> m = Scan(mbox);
  EXPECT_EQ(m.size(), 1u) << mbox;
  return m.empty() ? MessageInfo() : m[0];
}

TEST(UidlTest, IsValidUidl) {
  struct Case {
    std::string name;
    std::string uidl;
    bool want;
  };
  const Case kCases[] = {
      {"one_char", "a", true},
      {"printable_range_ends", "!~", true},
      {"seventy", std::string(70, 'x'), true},
      {"empty", "", false},
      {"seventy_one", std::string(71, 'x'), false},
      {"space", "a b", false},
      {"tab", "a\tb", false},
      {"del", "a\x7f", false},
      {"high_bit", "a\xc3\xa9", false},
      {"nul", std::string("a\0b", 3), false},
      {"cr", "ab\r", false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(IsValidUidl(c.uidl), c.want);
  }
}

TEST(UidlTest, SameMailboxSameUidls) {
  for (std::string_view file : {"postfix.mbox", "x_uidl.mbox", "duplicates.mbox", "dovecot.mbox",
                                "content_length.mbox", "crlf.mbox"}) {
    SCOPED_TRACE(file);
    const std::string bytes = ReadTestdata(file);
    // Two independent scans and assigners (a lost index rebuilt) agree.
    const std::vector<std::string> a = AssignAll(Scan(bytes));
    const std::vector<std::string> b = AssignAll(Scan(std::string(bytes)));
    EXPECT_EQ(a, b);
    ASSERT_FALSE(a.empty());
    // The same mailbox at another offset of a file (after an expunge moved it) agrees too.
    EXPECT_EQ(AssignAll(ScanMbox(bytes, 12345, kFinal).messages), a);
  }
}

TEST(UidlTest, DigestIsStableAcrossReleases) {
  // Pins the digest and content hash of one message. If this changes, every client of every
  // rebuilt index downloads every message again (design §2 invariant 6), and expunge plans
  // recorded by the old version no longer verify: change only with a migration.
  // Recomputed outside the scanner (Python hashlib + libxxhash): with B = the 16 big-endian
  // bytes of XXH3-128("body\n"),
  //   uidl_digest  = hex(SHA-256("poplar-uidl-1\n" FROM "\n" "From: a@b\nSubject: pinned\n"
  //                              "\n" B)[0:12])
  //   content_hash = XXH3-128(FROM "\n" "From: a@b\nSubject: pinned\n\n" B)
  // where FROM = "From a@b Thu Nov 29 22:33:52 2001".
  const MessageInfo m = ScanOne(Message("From: a@b\nSubject: pinned\n", "body\n"));
  EXPECT_EQ(m.uidl_digest, "8c9484475e03aa7341e89075");
  EXPECT_EQ(m.content_hash.Hex(), "58148550d8dd7afbdf1cbc0a59ac0f5b");
}

TEST(UidlTest, XUidlReuse) {
  const std::vector<MessageInfo> m = Scan(ReadTestdata("x_uidl.mbox"));
  ASSERT_EQ(m.size(), 8u);
  const std::vector<std::string> got = AssignAll(m);
  // Messages 4, 5, 6 and 8 differ only in their X-UIDL header, which is not digested: they
  // share a digest. 5 and 8 adopt their X-UIDL; 4 takes the digest, so 6 gets "-2".
  ASSERT_EQ(m[3].uidl_digest, m[4].uidl_digest);
  ASSERT_EQ(m[3].uidl_digest, m[5].uidl_digest);
  ASSERT_EQ(m[3].uidl_digest, m[7].uidl_digest);
  const std::string& d = m[3].uidl_digest;
  const std::vector<std::string> want = {
      "3b0c7e2a00000001",     // valid X-UIDL adopted verbatim
      "spaced-value",         // surrounding blanks are not part of it
      "second-valid",         // the first valid X-UIDL
      d,                      // 71 chars: ignored
      "<lower@case>",         // header names are case-insensitive
      absl::StrCat(d, "-2"),  // control character: ignored
      m[6].uidl_digest,       // X-UIDL in the body is not a header
      std::string(70, '~'),   // 70 chars: valid
  };
  EXPECT_EQ(got, want);

  // With reuse off, only digests.
  const std::vector<std::string> off = AssignAll(m, {.reuse_x_uidl = false});
  for (size_t i = 0; i < off.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(off[i].substr(0, 24), m[i].uidl_digest);
  }
}

TEST(UidlTest, LaterMessageCannotStealXUidl) {
  const MessageInfo first = ScanOne(Message("X-UIDL: qpop-0001\nSubject: one\n", "1\n"));
  const MessageInfo forger = ScanOne(Message("X-UIDL: qpop-0001\nSubject: forged\n", "2\n"));
  const MessageInfo plain = ScanOne(Message("Subject: three\n", "3\n"));
  // A later message that claims the earlier plain message's digest as its X-UIDL.
  const MessageInfo digest_forger =
      ScanOne(Message(absl::StrCat("X-UIDL: ", plain.uidl_digest, "\nSubject: four\n"), "4\n"));

  UidlAssigner a;
  EXPECT_EQ(a.Assign(first), "qpop-0001");
  EXPECT_EQ(a.Assign(forger), forger.uidl_digest);
  EXPECT_EQ(a.Assign(plain), plain.uidl_digest);
  EXPECT_EQ(a.Assign(digest_forger), digest_forger.uidl_digest);

  // In the other order the forger is first in file order and keeps the value.
  UidlAssigner b;
  EXPECT_EQ(b.Assign(forger), "qpop-0001");
  EXPECT_EQ(b.Assign(first), first.uidl_digest);
}

TEST(UidlTest, DuplicatesGetSuffixes) {
  const std::vector<MessageInfo> m = Scan(ReadTestdata("duplicates.mbox"));
  ASSERT_EQ(m.size(), 3u);
  const std::string d = m[0].uidl_digest;
  EXPECT_EQ(AssignAll(m), (std::vector<std::string>{d, d + "-2", d + "-3"}));

  // Many duplicates: still unique, suffixes in order.
  std::vector<MessageInfo> many(50, m[0]);
  const std::vector<std::string> got = AssignAll(many);
  for (size_t i = 1; i < got.size(); ++i) EXPECT_EQ(got[i], absl::StrCat(d, "-", i + 1));
}

TEST(UidlTest, ReserveIsRespected) {
  const std::vector<MessageInfo> dups = Scan(ReadTestdata("duplicates.mbox"));
  ASSERT_EQ(dups.size(), 3u);
  const std::string d = dups[0].uidl_digest;
  struct Case {
    std::string name;
    std::vector<std::string> reserved;
    std::vector<std::string> want;
  };
  const Case kCases[] = {
      {"nothing", {}, {d, d + "-2", d + "-3"}},
      {"digest", {d}, {d + "-2", d + "-3", d + "-4"}},
      {"digest_and_2", {d, d + "-2"}, {d + "-3", d + "-4", d + "-5"}},
      {"only_3", {d + "-3"}, {d, d + "-2", d + "-4"}},
      {"unrelated", {"something-else"}, {d, d + "-2", d + "-3"}},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    UidlAssigner a;
    for (const std::string& r : c.reserved) a.Reserve(r);
    std::vector<std::string> got;
    for (const MessageInfo& m : dups) got.push_back(a.Assign(m));
    EXPECT_EQ(got, c.want);

    // The same reservations answered by the index instead (SetReservedLookup).
    UidlAssigner b;
    const absl::flat_hash_set<std::string> held(c.reserved.begin(), c.reserved.end());
    b.SetReservedLookup([&](const std::string& u) { return held.contains(u); });
    got.clear();
    for (const MessageInfo& m : dups) got.push_back(b.Assign(m));
    EXPECT_EQ(got, c.want);
  }

  // A reserved X-UIDL (held by a live message indexed earlier) is not adopted again.
  const MessageInfo x = ScanOne(Message("X-UIDL: held\n", "x\n"));
  UidlAssigner a;
  a.Reserve("held");
  EXPECT_EQ(a.Assign(x), x.uidl_digest);
}

// Incremental indexing: assigning the first k messages, then the rest with a new assigner
// that has the earlier UIDLs reserved, gives the same UIDLs as one pass.
TEST(UidlTest, IncrementalEqualsFullAssignment) {
  for (std::string_view file : {"x_uidl.mbox", "duplicates.mbox", "dovecot.mbox"}) {
    for (UidlScheme scheme : {UidlScheme::kPoplar, UidlScheme::kDovecot}) {
      SCOPED_TRACE(absl::StrCat(std::string(file), " scheme ", static_cast<int>(scheme)));
      const std::vector<MessageInfo> m = Scan(ReadTestdata(file));
      const std::vector<std::string> full = AssignAll(m, {.scheme = scheme});
      for (size_t k = 0; k <= m.size(); ++k) {
        SCOPED_TRACE(k);
        UidlAssigner first({.scheme = scheme});
        std::vector<std::string> got;
        for (size_t i = 0; i < k; ++i) got.push_back(first.Assign(m[i]));
        UidlAssigner rest({.scheme = scheme});
        for (const std::string& u : got) rest.Reserve(u);
        if (first.uid_validity()) rest.SetUidValidity(*first.uid_validity());
        for (size_t i = k; i < m.size(); ++i) got.push_back(rest.Assign(m[i]));
        EXPECT_EQ(got, full);
      }
    }
  }
}

TEST(UidlTest, DovecotScheme) {
  const std::vector<MessageInfo> m = Scan(ReadTestdata("dovecot.mbox"));
  ASSERT_EQ(m.size(), 3u);
  // X-IMAPbase: 1234567890 = 0x499602D2 in the first message; X-UID 1 and 2; the third has
  // no X-UID and falls back to its digest.
  const std::vector<std::string> got = AssignAll(m, {.scheme = UidlScheme::kDovecot});
  EXPECT_EQ(got,
            (std::vector<std::string>{"00000001499602D2", "00000002499602D2", m[2].uidl_digest}));
  // The Poplar scheme ignores X-UID.
  EXPECT_EQ(AssignAll(m),
            (std::vector<std::string>{m[0].uidl_digest, m[1].uidl_digest, m[2].uidl_digest}));

  // Assigning from the second message on needs the mailbox's UIDVALIDITY from outside.
  UidlAssigner tail({.scheme = UidlScheme::kDovecot});
  tail.SetUidValidity(1234567890);
  EXPECT_EQ(tail.Assign(m[1]), "00000002499602D2");
  UidlAssigner tail_without({.scheme = UidlScheme::kDovecot});
  EXPECT_EQ(tail_without.Assign(m[1]), m[1].uidl_digest);

  // Formatting: %08X of each, upper case, zero-padded, full 32-bit range.
  struct Case {
    std::string name;
    std::string headers;
    std::string want;
  };
  const Case kCases[] = {
      {"small", "X-IMAPbase: 1 5\nX-UID: 10\n", "0000000A00000001"},
      {"max", "X-IMAPbase: 4294967295 5\nX-UID: 4294967295\n", "FFFFFFFFFFFFFFFF"},
      {"uid_only_no_base", "X-UID: 10\n", ""},  // "" = the digest
      {"uid_overflow", "X-IMAPbase: 1 5\nX-UID: 4294967296\n", ""},
      {"uid_not_a_number", "X-IMAPbase: 1 5\nX-UID: ten\n", ""},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const MessageInfo one = ScanOne(Message(c.headers, "x\n"));
    UidlAssigner a({.scheme = UidlScheme::kDovecot});
    EXPECT_EQ(a.Assign(one), c.want.empty() ? one.uidl_digest : c.want);
  }
}

TEST(UidlTest, DovecotSchemeUidValidityComesFromFirstMessage) {
  // A later message carrying its own X-IMAPbase (forged, or pasted from another mailbox)
  // does not change the mailbox's UIDVALIDITY.
  const std::string mbox = Message("X-IMAPbase: 100 3\nX-UID: 1\n", "one\n") + "\n" +
                           Message("X-IMAPbase: 200 9\nX-UID: 2\n", "two\n") + "\n" +
                           Message("X-UID: 3\n", "three\n") + "\n";
  const std::vector<MessageInfo> m = Scan(mbox);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(AssignAll(m, {.scheme = UidlScheme::kDovecot}),
            (std::vector<std::string>{"0000000100000064", "0000000200000064", "0000000300000064"}));
  // Two messages with the same X-UID: the second one falls back to its digest.
  const std::string dup = Message("X-IMAPbase: 100 3\nX-UID: 1\n", "one\n") + "\n" +
                          Message("X-UID: 1\n", "two\n") + "\n";
  const std::vector<MessageInfo> d = Scan(dup);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(AssignAll(d, {.scheme = UidlScheme::kDovecot}),
            (std::vector<std::string>{"0000000100000064", d[1].uidl_digest}));
}

TEST(UidlTest, DigestIgnoresVolatileHeadersOnly) {
  const std::string headers = "From: a@b\nTo: c@d\nSubject: hello\nMessage-Id: <1@b>\n";
  const std::string body = "Hello,\n\nbody text.\n";
  const MessageInfo base = ScanOne(Message(headers, body));

  struct Case {
    std::string name;
    std::string mbox;
    bool want_same_digest;
  };
  const Case kCases[] = {
      // What MUAs, IMAP servers and Qpopper write into the mbox.
      {"status_added", Message(headers + "Status: RO\n", body), true},
      {"status_and_x_status_added", Message("Status: O\nX-Status: A\n" + headers, body), true},
      {"status_case", Message(headers + "STATUS: RO\n", body), true},
      {"x_keywords_folded", Message(headers + "X-Keywords: $Label1\n\t$Label2\n", body), true},
      {"x_uid_and_imapbase", Message("X-IMAPbase: 1 2\nX-UID: 1\n" + headers, body), true},
      {"x_uidl", Message(headers + "X-UIDL: 12345\n", body), true},
      {"content_length", Message(headers + "Content-Length: 20\n", body), true},
      {"lines", Message(headers + "Lines: 3\n", body), true},
      {"x_mozilla_status", Message(headers + "X-Mozilla-Status: 0001\n", body), true},
      // What identifies the message.
      {"subject_changed", Message("From: a@b\nTo: c@d\nSubject: hellO\nMessage-Id: <1@b>\n", body),
       false},
      {"header_added", Message(headers + "X-Spam: yes\n", body), false},
      {"status_lookalike_header", Message(headers + "X-Status-Report: 1\n", body), false},
      {"body_changed", Message(headers, "Hello,\n\nbody text!\n"), false},
      {"body_extended", Message(headers, body + "more\n"), false},
      {"body_line_ending", Message(headers, "Hello,\r\n\r\nbody text.\r\n"), false},
      {"envelope_sender", Message(headers, body, "From x@b Thu Nov 29 22:33:52 2001"), false},
      {"envelope_date", Message(headers, body, "From a@b Thu Nov 29 22:33:53 2001"), false},
      {"header_moved_into_body",
       Message("From: a@b\nTo: c@d\nSubject: hello\n", "Message-Id: <1@b>\n" + body), false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const MessageInfo m = ScanOne(c.mbox);
    EXPECT_EQ(m.uidl_digest == base.uidl_digest, c.want_same_digest) << m.uidl_digest;
    // The UIDL the assigner gives (no X-UIDL reuse, as the X-UIDL case would adopt it).
    UidlAssigner a({.reuse_x_uidl = false});
    EXPECT_EQ(a.Assign(m) == base.uidl_digest, c.want_same_digest);
    // The content hash identifies the stored bytes: any change shows.
    EXPECT_NE(m.content_hash, base.content_hash);
  }
}

// Assign() keeps RFC 1939 §7 whatever MessageInfo it is given (the indexer may build one from
// stored rows rather than from a scan): an invalid x_uidl is never output.
TEST(UidlTest, OutputValidForHandMadeMessageInfo) {
  struct Case {
    std::string name;
    std::string x_uidl;
    std::string digest;
    std::string want;
  };
  const std::string d(24, 'e');
  const Case kCases[] = {
      {"space", "has space", d, d}, {"too_long", std::string(71, 'x'), d, d},
      {"control", "a\x01b", d, d},  {"high_bit", "caf\xc3\xa9", d, d},
      {"valid", "ok", d, "ok"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    MessageInfo m;
    m.x_uidl = c.x_uidl;
    m.uidl_digest = c.digest;
    UidlAssigner a;
    const std::string got = a.Assign(m);
    EXPECT_EQ(got, c.want);
    EXPECT_TRUE(IsValidUidl(got));
  }
}

// Random mailboxes with colliding X-UIDLs, X-UIDs, duplicates and odd values: every UIDL is
// valid and unique within its mailbox, and the assignment is deterministic.
TEST(UidlTest, RandomMailboxesGiveValidUniqueUidls) {
  std::mt19937 rng(42);
  auto pick = [&](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  const std::vector<std::string> kXUidl = {
      "",
      "",
      "X-UIDL: a\n",
      "X-UIDL: a\n",
      "X-UIDL: b\n",
      "X-UIDL: \n",
      "X-UIDL: " + std::string(80, 'z') + "\n",
      "X-UIDL: a b\n",
      "X-UIDL: \x1b[0m\n",
      "X-UIDL: " + std::string(70, '!') + "\n",
  };
  const std::vector<std::string> kXUid = {"", "", "X-UID: 1\n", "X-UID: 2\n", "X-UID: x\n"};
  const std::vector<std::string> kBody = {"", "a\n", "b\n", "a\n"};
  for (int iter = 0; iter < 300; ++iter) {
    std::string mbox;
    const int n = std::uniform_int_distribution<int>(1, 12)(rng);
    for (int i = 0; i < n; ++i) {
      std::string headers = pick(kXUidl) + pick(kXUid);
      if (i == 0 && rng() % 2) headers = "X-IMAPbase: 7 9\n" + headers;
      mbox += Message(headers, pick(kBody)) + "\n";
    }
    SCOPED_TRACE(absl::CEscape(mbox));
    const std::vector<MessageInfo> m = Scan(mbox);
    ASSERT_EQ(m.size(), static_cast<size_t>(n));
    for (UidlOptions options : {UidlOptions{}, UidlOptions{.reuse_x_uidl = false},
                                UidlOptions{.scheme = UidlScheme::kDovecot}}) {
      const std::vector<std::string> got = AssignAll(m, options);
      absl::flat_hash_set<std::string> seen;
      for (const std::string& u : got) {
        EXPECT_TRUE(IsValidUidl(u)) << absl::CEscape(u);
        EXPECT_TRUE(seen.insert(u).second) << "duplicate UIDL " << u;
      }
      EXPECT_EQ(AssignAll(m, options), got);
    }
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace poplar::mbox
