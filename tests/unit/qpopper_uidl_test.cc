// Qpopper's UIDL algorithm (common/mbox/qpopper_uidl.h, qpopper.md §3) and the Qpopper scheme of
// the UidlAssigner. The generated corpus against an independent implementation is
// qpopper_uidl_oracle_test.py; the golden values here come from that implementation and, for the
// hex form, from md5sum(1) over the same bytes.
#include "common/mbox/qpopper_uidl.h"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "gtest/gtest.h"

namespace poplar::mbox {
namespace {

constexpr std::string_view kFrom = "From alice@example.org Thu Nov 29 22:33:52 2001\n";
constexpr std::string_view kHeader =
    "Received: from mx by mail\nDate: Thu, 29 Nov 2001 22:33:52 +0000\nMessage-Id: <1@x>\n"
    "Subject: hello\nStatus: RO\n";

QpopperUidlOptions Q(bool old_style, bool server_mode = false, bool content_length = true,
                     std::optional<int64_t> nonce = std::nullopt) {
  QpopperUidlOptions o;
  o.old_style = old_style;
  o.server_mode = server_mode;
  o.content_length = content_length;
  o.nonce = nonce;
  return o;
}
QpopperUidlOptions Nonce(int64_t n) { return Q(false, false, true, n); }

UidlOptions QScheme(bool trust = false) {
  UidlOptions o;
  o.scheme = UidlScheme::kQpopper;
  o.trust_x_uidl = trust;
  return o;
}

ScanOptions QScan(std::optional<QpopperUidlOptions> q) {
  ScanOptions o;
  o.final = true;
  o.qpopper = q;
  return o;
}

std::string Generated(std::string_view header, QpopperUidlOptions o = {},
                      std::string_view from = kFrom) {
  return ComputeQpopperUidl(from, header, o).generated;
}

TEST(QpopperUidlTest, GoldenValues) {
  struct Case {
    std::string name;
    std::string_view from;
    std::string_view header;
    QpopperUidlOptions options;
    std::string want;
  };
  const Case kCases[] = {
      {"base80", kFrom, kHeader, {}, "l*6!!h=\"#!G/M\"!N9L!!"},
      // md5sum of the From_ line and the four hashed lines, once.
      {"old_style_hex", kFrom, kHeader, Q(true), "a13d9900cce7630236ec8120c6ef9722"},
      {"nonce", kFrom, kHeader, Nonce(1007000001), "/nQ\"!9NE\"!M_)\"!(^2!!"},
      {"remote_from",
       "From bob Mon Jan  5 04:03:02 2004 remote from uucphost\n",
       kHeader,
       {},
       "Cd%\"!bMW!!Df##!=S>!!"},
      {"no_header", kFrom, "", {}, "n_;!!'7?\"!aI?\"!R\"G\"!"},
  };
  for (const Case& c : kCases) {
    EXPECT_EQ(ComputeQpopperUidl(c.from, c.header, c.options).generated, c.want) << c.name;
  }
}

TEST(QpopperUidlTest, WhichLinesAreHashed) {
  const std::string base = Generated(kHeader);
  struct Case {
    std::string name;
    std::string extra_line;
    bool changes;
  };
  const Case kCases[] = {
      {"received", "Received: by relay\n", true},
      {"received_lowercase", "received: by relay\n", true},
      {"date", "Date: Fri, 30 Nov 2001 00:00:00 +0000\n", true},
      {"message_id_upper", "Message-ID: <2@x>\n", true},
      {"subject_upper", "SUBJECT: more\n", true},
      {"content_length", "Content-Length: 12\n", true},
      {"content_length_lowercase_not", "content-length: 12\n", false},
      {"status_not", "Status: O\n", false},
      {"x_status_not", "X-Status: A\n", false},
      {"from_header_not", "From: someone@else\n", false},
      {"to_not", "To: x@y\n", false},
      {"space_before_colon_not", "Received : x\n", false},
      {"continuation_not", "\tcontinued\n", false},
      {"short_x_uidl_not", "X-UIDL: short\n", false},
  };
  for (const Case& c : kCases) {
    std::string header = std::string(kHeader) + c.extra_line;
    EXPECT_EQ(Generated(header) != base, c.changes) << c.name;
  }
}

TEST(QpopperUidlTest, Variants) {
  const std::string folded = std::string(kHeader) + " folded\n";
  // Continuation lines count only with the status-header nonce.
  EXPECT_EQ(Generated(folded), Generated(kHeader));
  EXPECT_NE(Generated(folded, Nonce(5)), Generated(kHeader, Nonce(5)));
  // The nonce is ignored with old-style UIDs (Qpopper: update-status-headers && !old-style-uid).
  EXPECT_EQ(Generated(kHeader, Q(true, false, true, 5)), Generated(kHeader, Q(true)));
  EXPECT_NE(Generated(kHeader, Nonce(5)), Generated(kHeader, Nonce(6)));
  // Without CONTENT_LENGTH, Content-Length: is not hashed.
  const std::string cl = std::string(kHeader) + "Content-Length: 3\n";
  EXPECT_EQ(Generated(cl, Q(false, false, false)), Generated(kHeader));
  // The From_ line counts (twice in the base-80 form, once in hex).
  EXPECT_NE(Generated(kHeader, {}, "From bob Thu Nov 29 22:33:52 2001\n"), Generated(kHeader));
  EXPECT_EQ(Generated(kHeader).size(), 20u);
  EXPECT_EQ(Generated(kHeader).find('.'), std::string::npos);
}

TEST(QpopperUidlTest, XUidlWindow) {
  // Qpopper measures the value with its line end: normal mode 12 < n < 33, server mode
  // 12 <= n <= 33.
  struct Case {
    std::string name;
    size_t value_length;
    std::string eol;
    bool normal;
    bool server;
  };
  const Case kCases[] = {
      {"10", 10, "\n", false, false},        {"11", 11, "\n", false, true},
      {"12", 12, "\n", true, true},          {"31", 31, "\n", true, true},
      {"32", 32, "\n", false, true},         {"33", 33, "\n", false, false},
      {"crlf_10", 10, "\r\n", false, true},  {"crlf_11", 11, "\r\n", true, true},
      {"crlf_30", 30, "\r\n", true, true},   {"crlf_31", 31, "\r\n", false, true},
      {"crlf_32", 32, "\r\n", false, false},
  };
  for (const Case& c : kCases) {
    const std::string value(c.value_length, 'u');
    const std::string header = std::string(kHeader) + "X-UIDL: " + value + c.eol;
    QpopperUidl normal = ComputeQpopperUidl(kFrom, header, {});
    QpopperUidl server = ComputeQpopperUidl(kFrom, header, Q(false, true));
    EXPECT_EQ(normal.x_uidl, c.normal ? value : "") << c.name;
    EXPECT_EQ(server.x_uidl, c.server ? value : "") << c.name;
    EXPECT_EQ(normal.served(), c.normal ? value : normal.generated) << c.name;
  }
}

TEST(QpopperUidlTest, WhichXUidlWins) {
  const std::string a(20, 'a'), b(20, 'b');
  EXPECT_EQ(ComputeQpopperUidl(kFrom, "X-UIDL: " + a + "\nx-uidl:\t" + b + "\n", {}).x_uidl, a);
  // Out of the window: skipped, the next in-window one wins.
  EXPECT_EQ(ComputeQpopperUidl(kFrom, "X-UIDL: short\nX-Uidl: " + b + "\n", {}).x_uidl, b);
  // The hash (used when the X-UIDL is not: a stranger's header, a value taken) covers every
  // line as if there were no X-UIDL.
  QpopperUidl adopted = ComputeQpopperUidl(kFrom, "X-UIDL: " + a + "\nSubject: s\n", {});
  EXPECT_EQ(adopted.generated, Generated("Subject: s\n"));
}

TEST(QpopperUidlTest, LongLinesAreReadIn1023BytePieces) {
  const std::string head = "Received: ";
  auto line = [&](char fill, size_t total, char last) {
    std::string l = head + std::string(total - head.size() - 1, fill);
    l.back() = last;
    return l + "\n";
  };
  // A 1030-byte line: bytes past the first 1023 are a second piece, which matches no prefix.
  EXPECT_EQ(Generated(line('x', 1030, 'y')), Generated(line('x', 1030, 'z')));
  // Within the first piece every byte counts.
  EXPECT_NE(Generated(line('x', 1000, 'y')), Generated(line('x', 1000, 'z')));
  // A line of exactly 1023 bytes before its "\n": the lone "\n" is an empty line to Qpopper,
  // which ends the header there, so later header lines do not count.
  const std::string exact = head + std::string(1023 - head.size(), 'x') + "\n";
  EXPECT_EQ(Generated(exact + "Subject: one\n"), Generated(exact + "Subject: two\n"));
  // NUL bytes are read as spaces.
  EXPECT_EQ(Generated(std::string("Subject: a\0b\n", 13)), Generated("Subject: a b\n"));
}

TEST(QpopperUidlTest, CrlfHeaderLinesAreHashedAsStored) {
  EXPECT_NE(Generated("Subject: hello\r\n"), Generated("Subject: hello\n"));
  std::string mbox = std::string(kFrom) + "Subject: hello\r\n\r\nbody\r\n";
  ScanResult r = ScanMbox(mbox, 0, QScan(QpopperUidlOptions{}));
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].qpopper.generated, Generated("Subject: hello\r\n"));
}

std::vector<std::string> AssignQpopper(std::string_view mbox, std::vector<bool> switched,
                                       UidlOptions o) {
  ScanResult r = ScanMbox(mbox, 0, QScan(QpopperScanOptions(o)));
  UidlAssigner a(o);
  std::vector<std::string> out;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    out.push_back(a.Assign(r.messages[i], i < switched.size() ? switched[i] : true));
  }
  return out;
}

TEST(QpopperUidlTest, AssignerDuplicatesAndStrangers) {
  const std::string msg = std::string(kFrom) + std::string(kHeader) + "\nbody\n";
  const std::string gen = Generated(kHeader);
  // Identical messages: Qpopper served one UIDL twice; the first keeps it.
  EXPECT_EQ(AssignQpopper(msg + "\n" + msg, {}, QScheme()),
            (std::vector<std::string>{gen, gen + "-2"}));

  const std::string x(20, 'q');
  const std::string with_x =
      std::string(kFrom) + "X-UIDL: " + x + "\n" + std::string(kHeader) + "\nbody\n";
  EXPECT_EQ(AssignQpopper(with_x, {true}, QScheme()), std::vector<std::string>{x});
  // Delivered after the switch: a copied X-UIDL is not adopted...
  std::vector<std::string> hidden = AssignQpopper(msg + "\n" + with_x, {true, false}, QScheme());
  EXPECT_EQ(hidden[0], gen);
  EXPECT_NE(hidden[1], x);
  // ...unless the site trusts the header.
  UidlOptions trust = QScheme(true);
  EXPECT_EQ(AssignQpopper(with_x, {false}, trust), std::vector<std::string>{x});
  // A forged X-UIDL equal to an older message's UIDL never takes it.
  const std::string forged = std::string(kFrom) + "X-UIDL: " + gen + "\nSubject: x\n\nb\n";
  std::vector<std::string> both = AssignQpopper(msg + "\n" + forged, {true, true}, QScheme());
  EXPECT_EQ(both[0], gen);
  EXPECT_NE(both[1], gen);
}

TEST(QpopperUidlTest, PerSpoolOptions) {
  UidlOptions site;
  UidlOptions q = QScheme();
  site.per_spool = std::make_shared<std::vector<SpoolUidlOptions>>(
      std::vector<SpoolUidlOptions>{{"/var/mail/old", q}});
  EXPECT_EQ(UidlOptionsForPath(site, "/var/mail/old/bob").scheme, UidlScheme::kQpopper);
  EXPECT_EQ(UidlOptionsForPath(site, "/var/mail/oldish/bob").scheme, UidlScheme::kPoplar);
  EXPECT_EQ(UidlOptionsForPath(site, "/var/mail/bob").scheme, UidlScheme::kPoplar);
}

}  // namespace
}  // namespace poplar::mbox
