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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/util/hash.h"
#include "indexer/sqlite.h"

namespace poplar::indexer {

inline constexpr int kSchemaVersion = 1;

struct MailboxRecord {
  int64_t id = 0;
  std::string path;
  std::string user;
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;       // file size when last indexed
  int64_t mtime_ns = 0;
  uint64_t resume_offset = 0;  // ScanResult::resume_offset of the last scan
  Hash128 tail_hash;           // XXH3 of the (up to) kTailBytes before resume_offset
  std::optional<uint32_t> uid_validity;  // Dovecot scheme: from the first message
  int64_t indexed_unix_ms = 0;
  uint32_t anomalies = 0;
  bool final_scan = false;  // the last scan saw no writer: its tail decisions were final
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
  absl::StatusOr<bool> UidlInUse(int64_t mailbox_id, const std::string& uidl, uint64_t before_offset);

  sql::Db* db() { return db_.get(); }

 private:
  explicit IndexStore(std::unique_ptr<sql::Db> db) : db_(std::move(db)) {}
  absl::Status Migrate();

  std::unique_ptr<sql::Db> db_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_INDEX_STORE_H_
