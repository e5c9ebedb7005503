// SnapshotCache: the snapshot of each mailbox as the index has it now, shared by every session
// that opens the mailbox until an update changes it: a login to an unchanged 100,000-message
// mailbox costs a stat and a copy, not 100,000 SQLite rows. An append is spliced into the cached
// snapshot; any other change drops it (rebuilt from SQLite at the next login). Mailboxes with
// hidden messages (deferred compaction) get filtered snapshots.
//
// The Snapshot columns are written here (common/mbox/snapshot_codec.h for the packed ones).
// Not thread-safe: the Indexer holds it, with the IndexStore, under its mutex.
#ifndef POPLAR_INDEXER_SNAPSHOT_CACHE_H_
#define POPLAR_INDEXER_SNAPSHOT_CACHE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "indexer/index_store.h"
#include "indexer/mailbox_indexer.h"
#include "poplar/maildrop.pb.h"

namespace poplar::indexer {

// Appends one message to a snapshot's columns and keeps count, total and covered size current.
void AddToSnapshot(v1::Snapshot* snap, const MessageRecord& m);
// The snapshot of a mailbox's records, without the messages `hidden` marks (empty: all).
v1::Snapshot SnapshotOfRecords(const MailboxRecord& mailbox,
                               const std::vector<MessageRecord>& messages,
                               const std::vector<bool>& hidden = {});
// The cached snapshot after an incremental update: the messages whose From_ line lies in
// [from, to) give way to `added`.
std::shared_ptr<const v1::Snapshot> SpliceSnapshot(const v1::Snapshot& old, uint64_t from,
                                                   uint64_t to,
                                                   const std::vector<MessageRecord>& added);
// Which messages are hidden by deferred compaction: an entry matches the message at its offset
// with its content hash; an entry that matches nothing there (another program rewrote the file
// and offsets moved) hides the first not yet hidden message with its content hash.
std::vector<bool> HiddenMask(const std::vector<MessageRecord>& messages,
                             const std::vector<HiddenMessage>& hidden);

class SnapshotCache {
 public:
  explicit SnapshotCache(IndexStore* store) : store_(store) {}

  // Start-up: which mailboxes have hidden messages.
  absl::Status LoadHidden();

  // The cached snapshot, or one built from the index (and cached); null when the mailbox is not
  // indexed.
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> Get(const std::string& path);
  // After an update of `path` (MailboxIndexer::Update's answer): splices an exact append into the
  // cached snapshot, keeps it when nothing changed, drops it otherwise.
  void Follow(const std::string& path, const absl::StatusOr<IndexOutcome>& outcome);
  // The mailbox changed in a way only the index knows: rebuilt at the next Get.
  void Drop(const std::string& path) { snapshots_.erase(path); }

  // Deferred compaction's hidden messages: their mailboxes' snapshots are filtered.
  bool HasHidden(const std::string& path) const { return hidden_.contains(path); }
  void MarkHidden(const std::string& path);
  void ClearHidden(const std::string& path);
  std::vector<std::string> MailboxesWithHidden() const { return {hidden_.begin(), hidden_.end()}; }

 private:
  IndexStore* const store_;
  absl::flat_hash_map<std::string, std::shared_ptr<const v1::Snapshot>> snapshots_;
  absl::flat_hash_set<std::string> hidden_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_SNAPSHOT_CACHE_H_
