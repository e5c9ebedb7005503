#include "indexer/session_registry.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mbox/snapshot_codec.h"

namespace poplar::indexer {

absl::StatusOr<std::vector<size_t>> CheckDeletions(const v1::Snapshot* snapshot,
                                                   const v1::Commit& commit) {
  std::set<uint64_t> seen;
  for (const v1::MessageRef& ref : commit.deleted()) {
    // Snapshot offsets are in file order: binary search, then compare the content hash.
    bool found = false;
    if (snapshot != nullptr) {
      const auto& offsets = snapshot->data_offsets();
      auto pos = std::lower_bound(offsets.begin(), offsets.end(), ref.data_offset());
      if (pos != offsets.end() && *pos == ref.data_offset()) {
        const size_t i = static_cast<size_t>(pos - offsets.begin());
        found = mbox::HashAt(snapshot->content_hashes(), i) == ref.content_hash();
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("deleted message at offset ", ref.data_offset(), " is not in the snapshot"));
    }
    if (!seen.insert(ref.data_offset()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("message at offset ", ref.data_offset(), " is deleted twice"));
    }
  }
  std::vector<size_t> deleted;
  deleted.reserve(seen.size());
  if (snapshot == nullptr) return deleted;
  const auto& offsets = snapshot->data_offsets();
  for (uint64_t off : seen) {  // std::set: ascending
    deleted.push_back(static_cast<size_t>(std::lower_bound(offsets.begin(), offsets.end(), off) -
                                          offsets.begin()));
  }
  return deleted;
}

void SessionRegistry::Add(const std::string& id, std::string mailbox,
                          std::shared_ptr<const v1::Snapshot> snapshot) {
  sessions_[id] = Shown{std::move(mailbox), std::move(snapshot)};
}

absl::StatusOr<CommitTarget> SessionRegistry::CheckCommit(const std::string& id,
                                                          const v1::Commit& commit) const {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return absl::FailedPreconditionError("no such session");
  absl::StatusOr<std::vector<size_t>> deleted = CheckDeletions(it->second.snapshot.get(), commit);
  if (!deleted.ok()) return deleted.status();
  return CommitTarget{it->second.mailbox, it->second.snapshot, *std::move(deleted)};
}

}  // namespace poplar::indexer
