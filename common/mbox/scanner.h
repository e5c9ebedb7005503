// The mbox scanner: bytes in, complete messages out (design §3, style P5).
//
// Pure and restartable: no fds, clocks, logging or globals. The caller hands in a buffer that
// starts at `base_offset` of the file and says whether it reaches the end of a file whose
// writer is done (`final`). The scanner returns every message whose end is certain, plus
// `resume_offset`: the caller scans again from there when the file has grown. Scanning a file
// in one call, or in any sequence of calls that each start at the previous resume_offset and
// only the last of which is final, yields identical messages (tests/unit/mbox_scanner_test.cc
// and tests/fuzz/mbox_scanner_fuzz.cc check this).
//
// Rules (design §3):
//  * A separator is a line accepted by ParseFromLine() at the start of the buffer, or after an
//    empty line ("\n" or "\r\n").
//  * A message is the bytes after its From_ line up to, not including, the empty line before
//    the next separator; at the end of a final buffer a trailing empty line is likewise
//    excluded, so appending a message normally leaves the one before it as it was.
//  * `Content-Length:` is trusted only when the body it measures ends exactly at a separator,
//    at an empty line followed by a separator, or at the end of a final buffer. Then
//    separator-like lines inside that body do not split it (mboxcl2 written by Dovecot).
//  * A message whose end is not yet certain (a non-final buffer, a delivery in progress) is
//    not returned; resume_offset points at its From_ line. A From_ line without its newline
//    at the end of a final buffer is not a message yet either, and the message before it is
//    returned but tentative (see resume_offset).
//  * At the end of a final buffer, a last line that is a lone "\r" is an empty line whose "\n"
//    is still to come, and is left out like a trailing empty line.
//  * Quoting (">From ") is neither added nor removed: bodies are served as stored.
//
// Appending never changes the messages before the append (issue 15; content_hash.h): a
// message's UIDL digest, content hash, size and served bytes stay the same when its missing final
// "\n" is completed, when the empty line before the next separator is written, and when a next
// message follows. They change only when the message's own stored text changes: text glued onto
// its last line (an MDA that appends a From_ line to a file not ending in "\n"), or an empty line
// more before the next separator than the one that separates messages. Messages that end in "\n"
// hash as they always did, so an upgrade changes no UIDL (tests/testdata/identity_golden.tsv).
#ifndef POPLAR_COMMON_MBOX_SCANNER_H_
#define POPLAR_COMMON_MBOX_SCANNER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/mbox/qpopper_uidl.h"
#include "common/util/hash.h"

namespace poplar::mbox {

struct ScanOptions {
  // The buffer ends at the end of the file and nothing is being written to it (the MDA locks
  // are free): a trailing message without a following separator is complete.
  bool final = false;
  // Use Content-Length as described above; off means the From_ rule alone splits messages.
  bool trust_content_length = true;
  // Also compute each message's Qpopper UIDL (MessageInfo::qpopper) with these options.
  std::optional<QpopperUidlOptions> qpopper = std::nullopt;
};

struct MessageInfo {
  uint64_t offset = 0;         // of the From_ line
  uint64_t data_offset = 0;    // first byte after the From_ line: the message starts here
  uint64_t end_offset = 0;     // one past the last byte of the message
  uint64_t header_length = 0;  // header block, including its terminating empty line if any
  uint64_t lines = 0;          // lines in the message (a last line without "\n" counts)
  uint64_t octets = 0;         // RFC 1939 size: bare LF counted as CRLF, final CRLF ensured
  bool final_newline = false;  // the message's last byte is '\n'
  bool content_length_used = false;
  std::string sender;  // envelope sender from the From_ line
  std::string date;    // envelope date from the From_ line, as written
  // XXH3-128 over the From_ line, the header block and the body's own digest: identifies the
  // stored bytes of [offset, end_offset), a missing final "\n" counted as present
  // (mbox::ContentHasher).
  Hash128 content_hash;
  // 24 hex digits: SHA-256 of the From_ line, the header lines that no mail program rewrites
  // (Status:, X-Status:, X-UID: and friends are left out) and the body digest. The base of the
  // message's UIDL (common/mbox/uidl.h).
  std::string uidl_digest;
  std::string x_uidl;                    // first valid X-UIDL: value (Qpopper), else empty
  std::optional<uint32_t> x_uid;         // X-UID: (Dovecot / UW IMAP)
  std::optional<uint32_t> uid_validity;  // first number of X-IMAPbase: / X-IMAP:
  QpopperUidl qpopper = {};              // only with ScanOptions::qpopper

  uint64_t length() const { return end_offset - data_offset; }
  uint64_t body_offset() const { return data_offset + header_length; }
};

enum class AnomalyKind {
  kLeadingGarbage,        // bytes before the first separator (offset = where they start)
  kContentLengthIgnored,  // a Content-Length that does not land on a separator
};

struct Anomaly {
  uint64_t offset = 0;  // of the garbage, or of the message's From_ line
  AnomalyKind kind = AnomalyKind::kLeadingGarbage;
  friend bool operator==(const Anomaly&, const Anomaly&) = default;
};

struct ScanResult {
  std::vector<MessageInfo> messages;
  // Where the next scan starts: the From_ line of the first message not returned, or, when a
  // final buffer's last message ends at the end of the buffer, that message's From_ line: more
  // bytes appended later could still belong to it (text glued to its last line, or more empty
  // lines before the next separator), so it is returned now and returned again, possibly
  // longer, by the next scan. Callers replace messages at or after resume_offset.
  uint64_t resume_offset = 0;
  std::vector<Anomaly> anomalies;
};

ScanResult ScanMbox(std::string_view bytes, uint64_t base_offset, const ScanOptions& options);

// True if `name` (without the colon) is a header that mail programs rewrite in place and that
// therefore never contributes to a UIDL digest.
bool IsVolatileHeader(std::string_view name);

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_SCANNER_H_
