// SessionRegistry: what each open session was shown (its snapshot), and the commit's checks
// against it: every deleted message must be one of the snapshot's, by offset and content hash,
// and none twice. The leases themselves are the LeaseManager's; this is the Indexer's side.
// Not thread-safe: the Indexer holds it under its mutex.
#ifndef POPLAR_INDEXER_SESSION_REGISTRY_H_
#define POPLAR_INDEXER_SESSION_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "poplar/maildrop.pb.h"

namespace poplar::indexer {

// A checked commit: the session's mailbox and snapshot, and the deleted messages as indexes
// into the snapshot (ascending, no duplicates).
struct CommitTarget {
  std::string mailbox;
  std::shared_ptr<const v1::Snapshot> snapshot;  // null: the maildrop was empty
  std::vector<size_t> deleted;
};

// The commit's identity checks against the snapshot the session was shown: InvalidArgument for
// a message that is not in it (offset or content hash) or is deleted twice. Pure.
absl::StatusOr<std::vector<size_t>> CheckDeletions(const v1::Snapshot* snapshot,
                                                   const v1::Commit& commit);

class SessionRegistry {
 public:
  // The session `id` was shown `snapshot` of `mailbox`.
  void Add(const std::string& id, std::string mailbox,
           std::shared_ptr<const v1::Snapshot> snapshot);
  void Remove(const std::string& id) { sessions_.erase(id); }
  bool contains(const std::string& id) const { return sessions_.contains(id); }
  // The mailbox session `id` has open, or null.
  const std::string* MailboxOf(const std::string& id) const {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second.mailbox;
  }
  // FailedPrecondition for an unknown session; else CheckDeletions.
  absl::StatusOr<CommitTarget> CheckCommit(const std::string& id, const v1::Commit& commit) const;

 private:
  struct Shown {
    std::string mailbox;
    std::shared_ptr<const v1::Snapshot> snapshot;
  };
  absl::flat_hash_map<std::string, Shown> sessions_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_SESSION_REGISTRY_H_
