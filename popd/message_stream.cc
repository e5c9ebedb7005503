#include "popd/message_stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/util/errno_status.h"
#include "common/util/file_io.h"
#include "common/util/strings.h"

namespace poplar::popd {
namespace {

absl::Status Changed(const std::string& path, std::string_view why) {
  return absl::UnavailableError(
      absl::StrCat("mailbox changed since login: ", path, ": ", Absl(why)));
}

}  // namespace

absl::StatusOr<MailboxFile> MailboxFile::Open(const MaildropView& view) {
  UniqueFd fd(::open(view.mailbox_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return Changed(view.mailbox_path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Changed(view.mailbox_path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Changed(view.mailbox_path, "not a regular file");
  if (static_cast<uint64_t>(st.st_dev) != view.device ||
      static_cast<uint64_t>(st.st_ino) != view.inode) {
    return Changed(view.mailbox_path, "another file (device or inode differs)");
  }
  if (static_cast<uint64_t>(st.st_size) < view.covered_size) {
    return Changed(view.mailbox_path, absl::StrCat("shorter (", st.st_size, " bytes) than the ",
                                                   view.covered_size, " the snapshot covers"));
  }
  return MailboxFile(std::move(fd));
}

MessageStream::MessageStream(const MailboxFile& file, const MessageLocation& where,
                             std::optional<uint64_t> top_lines, uint64_t expected_octets)
    : fd_(file.fd()),
      offset_(where.data_offset),
      remaining_(where.length),
      retr_(!top_lines.has_value()),
      expected_octets_(expected_octets),
      transform_(pop3::WireTransform::Options{.dot_stuff = true, .top_lines = top_lines}),
      from_offset_(where.from_offset),
      expected_hash_(where.content_hash.data(), where.content_hash.size()) {
  if (retr_) {
    hasher_ = std::make_unique<mbox::ContentHasher>();
    // The head is the From_ line and the header block.
    hasher_->Start(where.data_offset + where.header_length - where.from_offset);
  }
}

absl::Status MessageStream::ReadAt(uint64_t offset, size_t want) {
  buffer_.resize(want);
  const ssize_t got = PreadAll(fd_, offset, buffer_.data(), want);
  if (got < 0) return ErrnoToStatus(errno, "reading the mailbox");
  if (static_cast<size_t>(got) < want) {
    return absl::UnavailableError(absl::StrCat("mailbox changed since login: it ends at ",
                                               offset + static_cast<uint64_t>(got),
                                               ", inside the message"));
  }
  return absl::OkStatus();
}

absl::Status MessageStream::Next(std::string* out, size_t max_bytes) {
  if (!error_.ok()) return error_;
  if (done_) return absl::OkStatus();
  const uint64_t want = std::min<uint64_t>({remaining_, std::max<size_t>(max_bytes, 1), kMaxChunk});
  // The From_ line is not sent, but the content hash starts with it: the first read of a RETR
  // takes it together with the first chunk (one pread per message, not two).
  const size_t prefix = retr_ && !prefix_read_ ? static_cast<size_t>(offset_ - from_offset_) : 0;
  if (want > 0 || prefix > 0) {
    const size_t got = static_cast<size_t>(want);
    if (absl::Status s = ReadAt(offset_ - prefix, prefix + got); !s.ok()) {
      error_ = s;
      return error_;
    }
    if (retr_) {
      hasher_->Update(std::string_view(buffer_.data(), prefix + got));
      prefix_read_ = true;
    }
    const std::string_view chunk(buffer_.data() + prefix, got);
    transform_.Feed(chunk, out);
    offset_ += got;
    remaining_ -= got;
  }
  if (remaining_ == 0 || transform_.done()) return Finish(out);
  return absl::OkStatus();
}

absl::Status MessageStream::Finish(std::string* out) {
  std::string tail;
  transform_.Finish(/*terminator=*/true, &tail);
  if (retr_ && transform_.octets() != expected_octets_) {
    // Without the terminator the client sees an unfinished response, never a complete wrong one.
    error_ =
        absl::DataLossError(absl::StrCat("message bytes changed since login: ", transform_.octets(),
                                         " octets, snapshot says ", expected_octets_));
    return error_;
  }
  if (retr_) {
    hasher_->Finish();
    if (hasher_->content_hash().Bytes() != expected_hash_) {
      error_ = absl::DataLossError("message bytes changed since login: content hash differs");
      return error_;
    }
  }
  out->append(tail);
  done_ = true;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return absl::OkStatus();
}

}  // namespace poplar::popd
