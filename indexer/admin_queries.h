// AdminQueries: the domain side of the admin service (admin_service.cc is the gRPC adapter):
// accounts, the index's mailboxes and messages, the index checked against the files, the status.
// Answers are the admin.proto replies the adapter sends as they are.
// Not thread-safe: the Indexer calls it under the mutex of the SQLite connection it reads.
#ifndef POPLAR_INDEXER_ADMIN_QUERIES_H_
#define POPLAR_INDEXER_ADMIN_QUERIES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "indexer/account_store.h"
#include "indexer/index_store.h"
#include "indexer/lease_manager.h"
#include "indexer/mailbox_indexer.h"
#include "poplar/admin.pb.h"

namespace poplar::indexer {

v1::Account ToAccount(const AccountRecord& r);
v1::MailboxSummary Summary(const MailboxRecord& m, uint64_t messages, uint64_t octets);
v1::SessionList SessionListOf(const std::vector<LeaseInfo>& leases);

class AdminQueries {
 public:
  // `probe` tells a delivery in progress when Verify scans a file.
  AdminQueries(IndexStore* store, AccountStore* accounts, WriterProbe* probe,
               bool trust_content_length)
      : store_(store), accounts_(accounts), probe_(probe), trust_(trust_content_length) {}

  // ---- accounts ----
  // `mailbox`: the request's, or the default for the name (DefaultMailboxFor) when it has none.
  absl::StatusOr<v1::Account> AddAccount(const v1::AddAccountRequest& request,
                                         const std::string& mailbox);
  absl::StatusOr<v1::Account> SetPassword(const v1::SetPasswordRequest& request);
  absl::StatusOr<v1::Account> SetApopSecret(const v1::SetApopSecretRequest& request);
  absl::Status RemoveAccount(const std::string& user) { return accounts_->Remove(user); }
  absl::StatusOr<v1::AccountList> ListAccounts();

  // ---- the index ----
  absl::StatusOr<v1::MailboxList> ListMailboxes();
  // The mailbox path an account or user name refers to (admin commands accept both).
  absl::StatusOr<std::string> ResolveMailbox(const std::string& name);
  absl::StatusOr<v1::MailboxDetail> ShowMailbox(const std::string& name, uint32_t first,
                                                uint32_t limit);
  // The index against a fresh scan of the file, for `name` (empty: every mailbox), except the
  // mailboxes in `skip` (an expunge is rewriting them: checked next time, not reported damaged).
  absl::StatusOr<v1::VerifyReply> Verify(const std::string& name,
                                         const absl::flat_hash_set<std::string>& skip);
  absl::StatusOr<v1::IndexerStatus> Status(int64_t index_lag_ms, int64_t last_rescan_unix_ms,
                                           size_t sessions);

 private:
  absl::StatusOr<v1::Account> AccountOf(const std::string& user);
  // ResolveMailbox, then its index record; NotFound when the mailbox is not indexed.
  absl::StatusOr<MailboxRecord> FindIndexed(const std::string& name);
  // Verify's check of one mailbox: appends what is wrong to `reply`.
  absl::Status VerifyOne(const MailboxRecord& rec, v1::VerifyReply* reply);

  IndexStore* const store_;
  AccountStore* const accounts_;
  WriterProbe* const probe_;
  const bool trust_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_ADMIN_QUERIES_H_
