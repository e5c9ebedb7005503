// ExpungeCoordinator: a commit's deletions, from the session's snapshot to the file and the
// index (design §5). Immediate mode, Expunge(), in named steps:
//   1. Verify   under every MDA lock, the file is the snapshot's (same inode, every message
//               where and what it was, only appends since), read again from the file;
//   2. Compact  the journal and the rewrite (Expunger), with the Indexer's mutex released;
//   3. Reindex  the index follows in the same step (survivors keep their UIDLs);
//   4. Log      one line with what was done and how long each step took.
// Deferred mode: Hide() verifies and hides the deletions; CompactHidden() compacts them later.
// Recover() finishes expunges a crash interrupted.
//
// Every method runs under `mu`, the Indexer's mutex (it guards the SQLite connection, the
// snapshot cache and the set of mailboxes being compacted); Expunge() releases it only for
// step 2, with the mailbox fenced off (Compacting()).
#ifndef POPLAR_INDEXER_EXPUNGE_COORDINATOR_H_
#define POPLAR_INDEXER_EXPUNGE_COORDINATOR_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/lock/mailbox_lock.h"
#include "common/mbox/expunge_plan.h"
#include "common/mbox/uidl.h"
#include "indexer/expunger.h"
#include "indexer/index_store.h"
#include "indexer/mailbox_owner.h"
#include "indexer/snapshot_cache.h"
#include "poplar/maildrop.pb.h"

namespace poplar::indexer {

class ExpungeCoordinator {
 public:
  struct Options {
    mbox::UidlOptions uidl;
    bool trust_content_length = false;
    lock::LockOptions lock;
  };
  // A full re-index of a mailbox whose file changed under the index (after a recovery); called
  // with `mu` held.
  using FullReindex = std::function<void(const std::string& path)>;

  ExpungeCoordinator(absl::Mutex& mu, IndexStore* store, Expunger* expunger, SnapshotCache* cache,
                     const MailboxOwner* owner, Options options, FullReindex reindex)
      : mu_(mu),
        store_(store),
        expunger_(expunger),
        cache_(cache),
        owner_(owner),
        options_(std::move(options)),
        reindex_(std::move(reindex)) {}

  // `mu` is the Indexer's own mutex; the thread-safety analysis sees two names for it. The
  // Indexer calls this after locking mu_ so the analysis (and, at run time, absl) knows.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK(mu_) { mu_.AssertHeld(); }

  // Mailboxes an expunge is rewriting right now (step 2). Until it is done their index is left
  // alone and no session may open them.
  bool Compacting(const std::string& path) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return compacting_.contains(path);
  }
  const absl::flat_hash_set<std::string>& compacting() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return compacting_;
  }

  // Deletes messages `deleted` (indexes into `snap`, ascending) of `mailbox`, whose MDA locks
  // `held` are taken. UNAVAILABLE with nothing deleted when the file changed in any way other
  // than an append.
  absl::StatusOr<v1::CommitResult> Expunge(const std::string& mailbox, const v1::Snapshot& snap,
                                           const std::vector<size_t>& deleted,
                                           lock::MailboxLock held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes open expunge plans (of one mailbox, or all when empty) and re-indexes the
  // mailboxes they touched. UNAVAILABLE if a plan could not get its locks (it stays open).
  absl::Status Recover(const std::string& mailbox) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Deferred mode's commit: verifies the deletions against the index (which the caller has
  // just caught up with the file) and hides them.
  absl::StatusOr<v1::CommitResult> Hide(const std::string& mailbox, const v1::Snapshot& snap,
                                        const std::vector<size_t>& deleted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Compacts the hidden messages of `path` (its lease and MDA locks held). True when it
  // compacted something.
  absl::StatusOr<bool> CompactHidden(const std::string& path, lock::MailboxLock held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the hidden messages of `path` (compacted, or the mailbox is gone); a failure to
  // clear them in the index is logged.
  void ForgetHidden(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

 private:
  // What step 1 established: the index now (the snapshot plus appends) and the plan.
  struct Verified {
    MailboxRecord mailbox;
    std::vector<MessageRecord> messages;
    mbox::CompactionPlan plan;
  };
  struct Timings {
    absl::Time start, verified, compacted;
  };
  absl::StatusOr<Verified> Verify(const std::string& mailbox, const v1::Snapshot& snap,
                                  const std::vector<size_t>& deleted, int fd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 1's first part: the index caught up with the locked file (size `size`, owner `uid`).
  absl::StatusOr<MailboxRecord> CatchUpUnderLocks(const std::string& mailbox, uint64_t device,
                                                  uint64_t inode, uint64_t size, uid_t uid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int64_t> CompactWithoutMutex(const std::string& mailbox, lock::MailboxLock& held,
                                              const mbox::CompactionPlan& plan)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Step 3; returns how many messages moved.
  absl::StatusOr<size_t> Reindex(const std::string& mailbox, int fd, Verified& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks plan `plan_id` done (logs a failure: the next recovery closes it).
  void ClosePlan(const std::string& mailbox, int64_t plan_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex& mu_;
  IndexStore* const store_ ABSL_PT_GUARDED_BY(mu_);
  Expunger* const expunger_;  // Compact() takes mu_ itself; everything else runs under it
  SnapshotCache* const cache_ ABSL_PT_GUARDED_BY(mu_);
  const MailboxOwner* const owner_;
  const Options options_;
  const FullReindex reindex_;
  absl::flat_hash_set<std::string> compacting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_EXPUNGE_COORDINATOR_H_
