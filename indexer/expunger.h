// The expunge's file work (design §5, reliability.md §1.6-1.7): in-place compaction of an mbox
// with a redo journal, and the recovery of an interrupted one.
//
// Order of a compaction, on a file the caller holds every MDA lock on:
//   1. the post-image (the new bytes from the first deleted byte to the new end, which include
//      any mail appended since the session's snapshot) is written to a journal file, then the
//      journal and its directory are fsync'ed;             FaultPoint expunge.after_journal
//   2. the plan is recorded in SQLite (open);              expunge.after_plan
//   3. the post-image is written over the file at `start` (pwrite), fdatasync;
//                                                           expunge.mid_rewrite (half-way)
//                                                           expunge.before_truncate
//   4. ftruncate to the new size, fsync;                   expunge.after_truncate
//   5. the caller updates the index, then Finish() marks the plan done and removes the journal.
//                                                           expunge.before_done, expunge.after_done
// Recovery's replay of 3-4 has the same fault points named recovery.mid_rewrite,
// recovery.before_truncate and recovery.after_truncate (a crash while recovering from a crash).
// Replaying 3-4 is idempotent as long as the file's bytes before `start` are unchanged and it
// is the same inode, which recovery checks before it writes anything. Recovery also tells a
// file that grew after a crash (an MDA that broke the dead indexer's dotlock, as liblockfile
// does for a dead PID, and appended) from one that was already truncated, by the old file's
// last bytes past the new end (which the rewrite never touches): mail appended after the
// crash is folded into a new journal and kept byte-exact.
#ifndef POPLAR_INDEXER_EXPUNGER_H_
#define POPLAR_INDEXER_EXPUNGER_H_

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/lock/mailbox_lock.h"
#include "common/mbox/expunge_plan.h"
#include "indexer/index_store.h"

namespace poplar::indexer {

class Expunger {
 public:
  Expunger(IndexStore* store, std::string journal_dir)
      : store_(store), journal_dir_(std::move(journal_dir)) {}

  // Creates the journal directory (0700) if needed.
  absl::Status Init();

  // Steps 1-4 above on `path`, held by `lock`. On success returns the plan's id; on failure
  // before step 2 nothing was changed and no plan exists; after it the plan stays open and
  // recovery finishes it. `store_mu`: null if the caller holds the index store's lock for the
  // whole call; otherwise the caller does not hold it and Compact takes it only to record the
  // plan, so the long file work does not stop other mailboxes' logins.
  absl::StatusOr<int64_t> Compact(const std::string& path, lock::MailboxLock& lock,
                                  const mbox::CompactionPlan& plan,
                                  absl::Mutex* store_mu = nullptr);
  // Step 5: marks the plan done and removes its journal.
  absl::Status Finish(int64_t plan_id, const std::string& journal_path);

  enum class Recovery { kReplayed, kAlreadyComplete, kRejected, kBusy };
  struct RecoveryReport {
    Recovery outcome = Recovery::kBusy;
    std::string detail;  // for the log
  };
  // Finishes one open plan (takes the MDA locks itself). kRejected: the plan does not match the
  // file or its journal is damaged; the journal was moved aside (".rejected") and the mailbox
  // left as it is. kBusy: the locks were not available; the plan stays open.
  absl::StatusOr<RecoveryReport> Recover(const ExpungePlanRecord& plan,
                                         const lock::LockOptions& options);
  // Journals no open plan refers to (a crash before the plan was recorded, or after it was
  // done) are removed. Returns how many.
  absl::StatusOr<int> RemoveOrphanJournals();

  const std::string& journal_dir() const { return journal_dir_; }

 private:
  struct Written {
    std::string path;
    Hash128 image_hash;
  };
  // One stretch of a journal's image: `range` of `fd` (`name` for errors).
  struct Source {
    int fd = -1;
    mbox::ByteRange range;
    std::string name;
  };
  // Streams `sources` (in order) into a new journal after `header`'s slot; the header gets the
  // image's hash; journal and directory are fsync'ed.
  absl::StatusOr<Written> WriteJournal(const std::vector<Source>& sources,
                                       mbox::JournalHeader header, lock::MailboxLock* lock);
  // pwrite the journal's image at `start`, fdatasync, ftruncate, fsync.
  absl::Status Replay(const std::string& journal_path, const mbox::JournalHeader& h, int fd,
                      lock::MailboxLock* lock, std::string_view phase);
  absl::Status Reject(const ExpungePlanRecord& plan, const std::string& why, RecoveryReport* out);
  // Reject as Recover's answer.
  absl::StatusOr<RecoveryReport> Rejected(const ExpungePlanRecord& plan, const std::string& why);

  // Recover's steps. The checks answer an error (I/O), "" (passed) or why the plan is rejected.
  // The journal is intact and says what the plan says.
  absl::StatusOr<std::string> CheckJournal(const ExpungePlanRecord& plan);
  // The locked mailbox `fd` is the plan's file, long enough, with the plan's prefix; sets *size.
  absl::StatusOr<std::string> CheckMailbox(const ExpungePlanRecord& plan, int fd, uint64_t* size);
  // Has the rewrite reached its truncate (the old file's last bytes are gone)?
  absl::StatusOr<bool> WasTruncated(const ExpungePlanRecord& plan, int fd, uint64_t size);
  // A truncated file must hold the image; then only the plan is left to close.
  absl::StatusOr<RecoveryReport> CloseCompleted(const ExpungePlanRecord& plan, int fd,
                                                uint64_t size);
  // Mail appended (to `size`) after the crash: a new journal of the old image plus the appended
  // bytes replaces the plan. Returns the new plan.
  absl::StatusOr<ExpungePlanRecord> FoldAppended(const ExpungePlanRecord& plan, int fd,
                                                 uint64_t size, lock::MailboxLock* lock);

  IndexStore* store_;
  std::string journal_dir_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_EXPUNGER_H_
