// MailboxIndexer: brings one mailbox's index up to date with its file (design §5).
//
//  * Growth with an unchanged prefix (same device and inode, the bytes before the resume
//    point hash as recorded) is scanned incrementally from the resume point: O(new bytes).
//  * Anything else (a new inode, a shrink, a changed prefix: mutt or another server rewrote
//    the file) is re-indexed from the start; a message whose content hash matches one of the
//    old index keeps its UIDL, so a rewrite never makes a client download mail twice.
//  * The tail is scanned as final only while no MDA holds its locks (WriterProbe), so a
//    delivery in progress is never indexed half-written; it is picked up on the next update.
//  * The file is read with pread in bounded windows, never mmap'ed: a concurrent truncate by
//    another program must cost a rescan, not a SIGBUS.
// Thread-compatible; owned by the indexer's event thread together with its IndexStore.
#ifndef POPLAR_INDEXER_MAILBOX_INDEXER_H_
#define POPLAR_INDEXER_MAILBOX_INDEXER_H_

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mbox/scanner.h"
#include "common/mbox/uidl.h"
#include "common/util/unique_fd.h"
#include "indexer/index_store.h"
#include "indexer/mailbox_owner.h"

namespace poplar::indexer {

// Bytes before the resume point whose hash proves the indexed prefix is unchanged.
inline constexpr uint64_t kTailBytes = 4096;

// Tells whether a delivery agent is writing the mailbox right now.
class WriterProbe {
 public:
  virtual ~WriterProbe() = default;
  // `fd` is open read-only on `path`.
  virtual bool WriterActive(const std::string& path, int fd) = 0;
};

// The default probe, for the site's lock methods (config lock_methods): a dotlock file
// (PATH.lock) exists; someone holds an fcntl (POSIX or OFD) write lock on the file; someone
// holds an flock(2) lock (probed by a non-blocking shared flock taken and dropped at once: an
// MDA that asks for its exclusive lock in that instant retries, as MDAs do).
class LockFileProbe : public WriterProbe {
 public:
  LockFileProbe() : dotlock_(true), fcntl_(true), flock_(false) {}
  LockFileProbe(bool dotlock, bool fcntl_lock, bool flock_lock)
      : dotlock_(dotlock), fcntl_(fcntl_lock), flock_(flock_lock) {}
  bool WriterActive(const std::string& path, int fd) override;

 private:
  bool dotlock_;
  bool fcntl_;
  bool flock_;
};

struct IndexOutcome {
  enum class Kind { kUnchanged, kAppended, kReindexed, kRemoved, kNew };
  Kind kind = Kind::kUnchanged;
  uint64_t bytes_scanned = 0;
  uint64_t messages = 0;       // messages in the index after the update
  uint64_t new_messages = 0;   // messages added or re-scanned by this update
  bool writer_active = false;  // a trailing delivery in progress was left for later
  // kAppended only: the messages in [replaced_from, replaced_to) were replaced by `added` (what
  // an in-memory copy of the index needs to follow the append without reloading it all).
  // replaced_to is UINT64_MAX unless a delivery was in progress.
  uint64_t replaced_from = 0;
  uint64_t replaced_to = UINT64_MAX;
  std::vector<MessageRecord> added;
  bool exact_tail = false;  // the fields above describe the change completely
};

// FailedPrecondition "mailbox PATH refused: REASON": the one form of every refusal of a mailbox
// file (symlink, not a regular file, foreign owner), logged as is by the indexer.
absl::Status RefusedMailbox(const std::string& path, std::string_view reason);
// OK for a regular file; else RefusedMailbox naming what it is (directory, FIFO, ...).
absl::Status CheckMailboxFile(const std::string& path, const struct stat& st);
// open(O_RDONLY | O_NOFOLLOW | O_NONBLOCK): a symlink is RefusedMailbox, ENOENT NotFound.
absl::StatusOr<UniqueFd> OpenMailbox(const std::string& path);

// A fresh scan of the whole file as it is now (final unless a writer is active), for
// verification against the index.
struct FileScan {
  std::vector<mbox::MessageInfo> messages;
  uint64_t size = 0;
  uint64_t resume_offset = 0;
  bool writer_active = false;
};
absl::StatusOr<FileScan> ScanWholeFile(const std::string& path, WriterProbe* probe,
                                       bool trust_content_length);

// Scans [start, size) of an open file as final (the caller holds the MDA locks, so nothing is
// being delivered); `start` must be a From_ line. The expunge re-verifies the region it is
// about to rewrite with it.
absl::StatusOr<std::vector<mbox::MessageInfo>> ScanRegion(int fd, const std::string& path,
                                                          uint64_t start, uint64_t size,
                                                          bool trust_content_length);

// XXH3 of the (up to) kTailBytes before `resume`: what tells an append from a rewrite.
absl::StatusOr<Hash128> TailHash(int fd, uint64_t resume, const std::string& path);

// For updates made while the caller holds every MDA lock itself: no one else can be writing
// (and the default probe would see the caller's own locks).
class HeldLocksProbe : public WriterProbe {
 public:
  bool WriterActive(const std::string&, int) override { return false; }
};

class MailboxIndexer {
 public:
  MailboxIndexer(IndexStore* store, mbox::UidlOptions uidl, WriterProbe* probe)
      : store_(store), uidl_(uidl), probe_(probe) {}

  // Updates the index of the mailbox file at `path` (owned by account `user`, may be empty:
  // then the user the index recorded for it). A missing file removes the mailbox from the
  // index (kRemoved). A symlink, a non-regular file or (with set_owner) a file not owned as
  // expected is refused before it is read: RefusedMailbox, and the index is left as it was.
  // `force_full` re-indexes from the start even if the file only grew (admin reindex); UIDLs
  // of unchanged messages are kept all the same.
  absl::StatusOr<IndexOutcome> Update(const std::string& path, const std::string& user,
                                      bool force_full = false);

  // Window size for pread; tests make it tiny to exercise window growth.
  void set_window_bytes(size_t n) { window_bytes_ = n; }
  // Site option (config trust_content_length): see common/mbox/scanner.h.
  void set_trust_content_length(bool trust) { trust_content_length_ = trust; }
  bool trust_content_length() const { return trust_content_length_; }
  // Site option (config check_owner); null (the default) checks no owner. Must outlive this.
  void set_owner(const MailboxOwner* owner) { owner_ = owner; }

 private:
  IndexStore* store_;
  mbox::UidlOptions uidl_;
  WriterProbe* probe_;
  size_t window_bytes_ = 8 << 20;
  bool trust_content_length_ = false;
  const MailboxOwner* owner_ = nullptr;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_MAILBOX_INDEXER_H_
