// RETR/TOP byte source: one message's stored bytes, read from the mbox with pread in bounded
// chunks and turned into its POP3 wire form on the fly (design §6, style P6).
//
// Design invariant 5, correct bytes or an error: bytes are read only from the file the
// snapshot names, by identity (device, inode) and never through a symlink, and only at the
// snapshot's offsets. If the file is not what the snapshot says (replaced, shrunk, rewritten
// in place so a message's size no longer matches), the caller gets an error and answers
// -ERR [SYS/TEMP] or, once streaming has started, drops the connection; it never sends bytes
// that are not the message the client was promised.
//
// Memory: a MessageStream holds one chunk buffer (at most kMaxChunk bytes) and the
// WireTransform's few bytes of state; never a whole message.
#ifndef POPLAR_POPD_MESSAGE_STREAM_H_
#define POPLAR_POPD_MESSAGE_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/mbox/content_hash.h"
#include "common/pop3/wire_transform.h"
#include "common/util/unique_fd.h"
#include "popd/maildrop_view.h"

namespace poplar::popd {

// The session's mbox, opened read-only and checked against the snapshot once. Opened after
// login (popd never writes the spool, design invariant 3); later appends by MDAs are harmless,
// anything else is caught by MessageStream's short-read and size checks.
class MailboxFile {
 public:
  // open(O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), then fstat: a regular file with the
  // snapshot's device and inode, at least covered_size bytes long. O_NONBLOCK only keeps a
  // FIFO planted at the path from blocking open(); it does nothing to regular-file reads.
  // Unavailable ("mailbox changed since login: ...") otherwise, including any open() error.
  static absl::StatusOr<MailboxFile> Open(const MaildropView& view);

  MailboxFile(MailboxFile&&) noexcept = default;
  MailboxFile& operator=(MailboxFile&&) noexcept = default;

  int fd() const { return fd_.get(); }

 private:
  explicit MailboxFile(UniqueFd fd) : fd_(std::move(fd)) {}

  UniqueFd fd_;
};

class MessageStream {
 public:
  // Input read per Next() is at most min(max_bytes, kMaxChunk).
  static constexpr size_t kMaxChunk = 1 << 20;

  // `file` must outlive the stream. `top_lines` unset is RETR; then `expected_octets` is the
  // size the session announced (MaildropView::maildrop.octets), checked when the stream ends.
  // For TOP it is ignored (TOP's output size is not announced).
  MessageStream(const MailboxFile& file, const MessageLocation& where,
                std::optional<uint64_t> top_lines, uint64_t expected_octets);

  // Appends the next wire bytes to *out: reads at most max_bytes (at least 1) stored bytes,
  // so *out grows by at most 2 * max_bytes + 5 (every byte a bare LF, then "\r\n.\r\n").
  // The last call also appends the ".\r\n" terminator and makes done() true.
  // Unavailable if the read fails or comes up short (the file shrank); DataLoss if, for RETR,
  // the message's wire size differs from expected_octets or its bytes do not hash to the
  // snapshot's content hash (they changed under us); then
  // nothing more is appended (no terminator), and every later call returns the same error.
  // OK and no-op once done().
  absl::Status Next(std::string* out, size_t max_bytes);

  bool done() const { return done_; }

 private:
  absl::Status Finish(std::string* out);
  absl::Status ReadAt(uint64_t offset, size_t want);  // exactly `want` bytes into buffer_

  int fd_;
  uint64_t offset_;     // next stored byte to read
  uint64_t remaining_;  // stored bytes not yet read
  bool retr_;
  uint64_t expected_octets_;
  pop3::WireTransform transform_;
  // RETR only: the content hash recomputed from the bytes actually read (the From_ line, the
  // header block, then the body's own digest: common/mbox/content_hash.h), so a message
  // rewritten in place to the same size is caught too, not only a size change.
  uint64_t from_offset_;
  std::string expected_hash_;
  bool prefix_read_ = false;
  std::unique_ptr<mbox::ContentHasher> hasher_;
  std::string buffer_;  // the chunk buffer
  bool done_ = false;
  absl::Status error_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_MESSAGE_STREAM_H_
