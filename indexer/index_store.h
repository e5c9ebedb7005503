// IndexStore: the SQLite side of the index (design §5 "Storage").
//
// Holds, per mailbox, the file identity it indexed and where the next scan resumes, and per
// message everything popd needs to serve it. The mbox is the truth: every table here except
// accounts and expunge plans can be dropped and rebuilt from the spool (invariant 1).
// Thread-compatible: one IndexStore per thread (the indexer's event thread owns it).
#ifndef POPLAR_INDEXER_INDEX_STORE_H_
#define POPLAR_INDEXER_INDEX_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/util/hash.h"
#include "indexer/sqlite.h"

namespace poplar::indexer {

// 1: mailboxes, messages (accounts live in the same file, account_store.cc).
// 2: expunge_plans (the redo journal's record, design §5), hidden_messages (deferred
//    compaction).
// 3: mailboxes.x_uidl_cutoff (X-UIDL adopted only before it; NULL in rows of older indexes,
//    read as their file size: everything indexed before the upgrade was indexed when X-UIDL
//    was always adopted, and keeps its UIDL).
inline constexpr int kSchemaVersion = 3;

// MailboxRecord::x_uidl_cutoff of a mailbox indexed only while empty: its first content is
// still the switch.
inline constexpr uint64_t kXUidlCutoffPending = static_cast<uint64_t>(INT64_MAX);

struct MailboxRecord {
  int64_t id = 0;
  std::string path;
  std::string user;
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;  // file size when last indexed
  int64_t mtime_ns = 0;
  uint64_t resume_offset = 0;            // ScanResult::resume_offset of the last scan
  Hash128 tail_hash;                     // XXH3 of the (up to) kTailBytes before resume_offset
  std::optional<uint32_t> uid_validity;  // Dovecot scheme: from the first message
  int64_t indexed_unix_ms = 0;
  uint32_t anomalies = 0;
  bool final_scan = false;  // the last scan saw no writer: its tail decisions were final
  // Messages that start before this offset were in the mailbox when it was first indexed with
  // content (the switch to Poplar) and may adopt X-UIDL (uidl.h); later deliveries may not. Set
  // then; an expunge or rewrite that moves later messages below it lowers it (mailbox_indexer).
  // kXUidlCutoffPending while only an empty file was seen.
  std::optional<uint64_t> x_uidl_cutoff;
  uint64_t messages = 0;  // maintained by SaveScan
  uint64_t octets = 0;    // sum of the messages' octets, maintained by SaveScan
};

struct MessageRecord {
  uint64_t offset = 0;
  uint64_t data_offset = 0;
  uint64_t end_offset = 0;
  uint64_t header_length = 0;
  uint64_t lines = 0;
  uint64_t octets = 0;
  bool final_newline = false;
  std::string uidl;
  std::string uidl_digest;
  Hash128 content_hash;
  std::string sender;
  std::string date;
};

// One expunge's redo plan: what the journal at `journal_path` rewrites, and the facts recovery
// checks before it replays it (same file, unchanged prefix, intact journal).
struct ExpungePlanRecord {
  int64_t id = 0;
  std::string mailbox_path;
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t start = 0;
  uint64_t old_size = 0;
  uint64_t new_size = 0;
  Hash128 prefix_hash;
  Hash128 old_tail_hash;
  Hash128 image_hash;
  std::string journal_path;
  std::string state;  // "open", "done", "rejected", "superseded"
  int64_t created_unix_ms = 0;
};

// A message a session DELEted that deferred compaction has not removed yet: never served again.
struct HiddenMessage {
  uint64_t data_offset = 0;
  Hash128 content_hash;
  uint64_t bytes = 0;  // its segment (From_ line to the next From_ line)
  int64_t hidden_unix_ms = 0;
};

class IndexStore {
 public:
  // Opens or creates the database and migrates the schema to kSchemaVersion.
  static absl::StatusOr<std::unique_ptr<IndexStore>> Open(const std::string& path);

  absl::StatusOr<std::optional<MailboxRecord>> FindMailbox(const std::string& path);
  absl::StatusOr<std::vector<MailboxRecord>> ListMailboxes();
  // All messages of a mailbox in file order.
  absl::StatusOr<std::vector<MessageRecord>> LoadMessages(int64_t mailbox_id);

  // In one transaction: creates or updates the mailbox row (mailbox->id, ->messages and
  // ->octets are set), deletes its messages at or after `replace_from`, and inserts `messages`.
  // The counts are kept arithmetically, so an append costs O(new messages), not a COUNT(*).
  // Only messages before `replace_to` are replaced: a scan taken while an MDA writes leaves
  // the messages it could not decide as they were.
  absl::Status SaveScan(MailboxRecord* mailbox, uint64_t replace_from,
                        const std::vector<MessageRecord>& messages,
                        uint64_t replace_to = UINT64_MAX);
  absl::Status RemoveMailbox(int64_t mailbox_id);
  struct Totals {
    uint64_t mailboxes = 0;
    uint64_t messages = 0;
    uint64_t bytes = 0;
    uint64_t octets = 0;
  };
  absl::StatusOr<Totals> GetTotals();

  // Does a message before `before_offset` hold `uidl`?
  absl::StatusOr<bool> UidlInUse(int64_t mailbox_id, const std::string& uidl,
                                 uint64_t before_offset);

  // Expunge plans. Add records an open plan (the journal is already durable); SetPlanState
  // closes it. Replace, in one transaction, closes `old_id` as superseded and adds `plan`.
  absl::StatusOr<int64_t> AddExpungePlan(const ExpungePlanRecord& plan);
  absl::Status SetPlanState(int64_t id, std::string_view state);
  absl::StatusOr<int64_t> ReplaceExpungePlan(int64_t old_id, const ExpungePlanRecord& plan);
  absl::StatusOr<std::vector<ExpungePlanRecord>> OpenExpungePlans(
      const std::string& mailbox_path = "");
  absl::StatusOr<std::vector<ExpungePlanRecord>> AllExpungePlans();

  // Deferred compaction's hidden messages, per mailbox path.
  absl::Status HideMessages(const std::string& path, const std::vector<HiddenMessage>& hidden);
  absl::StatusOr<std::vector<HiddenMessage>> HiddenMessages(const std::string& path);
  absl::StatusOr<std::vector<std::string>> MailboxesWithHidden();
  absl::Status ClearHidden(const std::string& path);

  sql::Db* db() { return db_.get(); }

 private:
  explicit IndexStore(std::unique_ptr<sql::Db> db) : db_(std::move(db)) {}
  absl::Status Migrate();
  absl::StatusOr<int64_t> InsertPlanLocked(const ExpungePlanRecord& plan);
  absl::StatusOr<std::vector<ExpungePlanRecord>> SelectPlans(const std::string& where,
                                                             const std::string& arg);

  std::unique_ptr<sql::Db> db_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_INDEX_STORE_H_
