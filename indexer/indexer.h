// Indexer: the domain behind poplar-indexer's gRPC services (style P8: the services are thin
// adapters over this class; no SQL or file logic lives in them).
//
// A facade over parts with one job each (all in indexer/):
//   MailboxIndexer      one mailbox's file -> the index (catch-up, re-index)
//   SnapshotCache       each mailbox's snapshot as the index has it; hidden messages filtered
//   Authenticator       credentials -> a Login (account store, PAM, SCRAM, APOP/CRAM-MD5)
//   LeaseManager        who holds which maildrop; SessionRegistry what each session was shown
//   ExpungeCoordinator  a commit's deletions: verify, compact (Expunger), re-index, log
//   AdminQueries        the admin service's accounts, mailboxes, verify and status
// Here: the spool watching loop, the login's steps (credentials, lease, catch-up, snapshot),
// the commit's and deferred compaction's steps, and the one mutex.
//
// Thread-safe: gRPC threads and the event thread call in concurrently; one mutex (mu_)
// serialises everything that touches SQLite or the spool (the work under it is bounded: one
// mailbox's catch-up, one admin query), while the leases have their own lock so an [IN-USE]
// answer never waits behind an indexing run, and the slow credential checks run outside it.
#ifndef POPLAR_INDEXER_INDEXER_H_
#define POPLAR_INDEXER_INDEXER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/lock/mailbox_lock.h"
#include "indexer/account_store.h"
#include "indexer/admin_queries.h"
#include "indexer/authenticator.h"
#include "indexer/expunge_coordinator.h"
#include "indexer/expunger.h"
#include "indexer/index_store.h"
#include "indexer/lease_manager.h"
#include "indexer/mailbox_indexer.h"
#include "indexer/mailbox_owner.h"
#include "indexer/pam_authenticator.h"
#include "indexer/session_registry.h"
#include "indexer/snapshot_cache.h"
#include "indexer/spool_watcher.h"
#include "poplar/admin.pb.h"
#include "poplar/config.pb.h"
#include "poplar/maildrop.pb.h"

namespace poplar::indexer {

class Indexer {
 public:
  // Opens the database and prepares the watcher; does not scan yet (RescanAll does).
  static absl::StatusOr<std::unique_ptr<Indexer>> Create(const config::IndexerConfig& config);
  // Ends the logins waiting for a lease (Unavailable) before anything they use goes.
  ~Indexer();

  // ---- spool watching (the event thread) ----
  int watch_fd() const { return watcher_->fd(); }
  // Lists every spool and brings every mailbox up to date; drops index entries of mailboxes
  // that vanished. `progress` (optional) is called after each mailbox.
  using Progress = std::function<void(const v1::ReindexProgress&)>;
  absl::Status RescanAll(bool force_full = false, const Progress& progress = {});
  // Reads pending inotify events and updates the mailboxes they name.
  absl::Status HandleWatchEvents();
  // Re-stats every known mailbox (cheap when unchanged).
  absl::Status ReconcileKnown();

  // ---- maildrop service ----
  // A plaintext password: the store's account, or (config pam) PAM for a name that is not in
  // the store. Every refusal is the same Unauthenticated. The async form runs PAM checks on the
  // PAM threads and calls `done` there (or inline for store accounts); the sync form waits.
  absl::StatusOr<std::string> Authenticate(const std::string& user, const std::string& password);
  using AuthDone = Authenticator::AuthDone;
  void AuthenticateAsync(const std::string& user, const std::string& password,
                         const std::string& client_address, AuthDone done);
  absl::StatusOr<v1::ScramLookupReply> ScramLookup(const std::string& user);
  struct Opened {
    LeaseInfo lease;
    v1::Snapshot snapshot;
  };
  // Leases the user's maildrop, catches the index up with the file, returns the snapshot.
  // `hooks` reach the session while it holds the lease (an admin's revoke; another login's
  // liveness check, LeaseManager). Waits, if the maildrop's holder may be ending, up to
  // lease_wait_ms: for tests and tools, not for gRPC threads.
  absl::StatusOr<Opened> OpenSession(const v1::OpenSession& request, LeaseHooks hooks);
  // OpenSession for the gRPC streams, never blocking on a wait: a login that PAM must check is
  // handed to the PAM threads and `done` runs there; a login that finds its maildrop held by a
  // session that may be ending waits in the LeaseManager (no thread) and `done` runs on the
  // LeaseManager's thread; any other login is opened inline and `done` runs before this
  // returns.
  using OpenDone = std::function<void(absl::StatusOr<Opened>)>;
  void OpenSessionAsync(const v1::OpenSession& request, LeaseHooks hooks, OpenDone done);
  // The expunge (design §5): under every MDA lock, re-verifies the session's snapshot against
  // the file (same inode, every message where and what it was, only appends since), compacts
  // the file in place with a redo journal (indexer/expunger.h) and updates the index in the
  // same step, so the next session sees the new numbering with the survivors' UIDLs. Only the
  // listed messages go, identified by (data_offset, content hash). UNAVAILABLE (popd:
  // -ERR [SYS/TEMP]) with nothing deleted when the locks are busy past lock_timeout_ms or the
  // file changed in any way other than an append.
  absl::StatusOr<v1::CommitResult> Commit(const std::string& session_id, const v1::Commit& commit);
  void CloseSession(const std::string& session_id);
  // The session holding `session_id` answered a liveness probe: it is alive, so the logins
  // waiting for its maildrop get RESOURCE_EXHAUSTED now (LeaseManager::Alive).
  void LeaseAlive(const std::string& session_id) { leases_.Alive(session_id); }

  // ---- deferred compaction (config deferred_expunge) ----
  bool deferred_expunge() const { return config_.deferred_expunge(); }
  // Compacts every mailbox whose hidden messages are due (deferred_expunge_bytes reached or
  // the oldest older than deferred_expunge_delay_s; all of them with `force`) and that no
  // session holds. Returns how many mailboxes were compacted. Called by the event thread.
  absl::StatusOr<int> CompactDue(bool force = false);

  // ---- admin service ----
  absl::StatusOr<v1::Account> AddAccount(const v1::AddAccountRequest& request);
  absl::StatusOr<v1::Account> SetPassword(const v1::SetPasswordRequest& request);
  absl::StatusOr<v1::Account> SetApopSecret(const v1::SetApopSecretRequest& request);
  absl::Status RemoveAccount(const std::string& user);
  absl::StatusOr<v1::AccountList> ListAccounts();
  absl::StatusOr<v1::MailboxList> ListMailboxes();
  absl::StatusOr<v1::MailboxDetail> ShowMailbox(const std::string& name, uint32_t first,
                                                uint32_t limit);
  absl::Status Reindex(const std::string& name, const Progress& progress);
  absl::StatusOr<v1::VerifyReply> Verify(const std::string& name);
  v1::SessionList ListSessions() const;
  absl::Status EndSession(const std::string& session_id);
  absl::StatusOr<v1::IndexerStatus> Status();

 private:
  Indexer(config::IndexerConfig config, std::unique_ptr<IndexStore> store,
          std::unique_ptr<SpoolWatcher> watcher, MailboxOwner owner);
  // Catches the index of `path` up with the file and the cached snapshot with the index. A
  // refused mailbox (symlink, not a regular file, foreign owner) or a failed update is logged
  // once per path and reason, unless `quiet` (the caller logs it itself).
  absl::StatusOr<IndexOutcome> UpdateLocked(const std::string& path, const std::string& user,
                                            bool force_full, bool quiet = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OpenSession after the credentials: the lease (possibly after a wait), then FinishOpen.
  void OpenAuthenticatedAsync(Login login, const std::string& client_address,
                              const std::string& front_end, LeaseHooks hooks, OpenDone done);
  // With the lease held: the catch-up and the snapshot; the lease goes again on failure.
  absl::StatusOr<Opened> FinishOpen(const Login& login, const LeaseInfo& lease);
  // Commit's immediate expunge once the session's deletions are checked: recovery of an
  // interrupted one first, the MDA locks (waited for without mu_), then the coordinator.
  absl::StatusOr<v1::CommitResult> ExpungeNow(const CommitTarget& target);
  // CompactDue's step for one due mailbox, with its lease held.
  absl::StatusOr<bool> CompactHiddenOf(const std::string& path);
  // Start-up: removes the dotlocks a killed poplar-indexer left (lock::RemoveDeadPoplarDotlock)
  // beside every mailbox of the index and of an open plan, and every *.lock in the spools; one
  // log line per lock removed. Other programs' locks and live writers' are left alone.
  // Returns how many were removed.
  int RemoveDeadDotlocksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const config::IndexerConfig config_;
  LeaseManager leases_;

  mutable absl::Mutex mu_;
  std::unique_ptr<IndexStore> store_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<AccountStore> accounts_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SpoolWatcher> watcher_;  // fd() is immutable; Drain/ListAll under mu_
  LockFileProbe probe_;                    // the site's lock methods
  const MailboxOwner owner_;               // config check_owner
  std::unique_ptr<MailboxIndexer> mailbox_indexer_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Expunger> expunger_ ABSL_GUARDED_BY(mu_);
  lock::LockOptions lock_options_;
  std::unique_ptr<SnapshotCache> snapshots_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ExpungeCoordinator> expunge_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<AdminQueries> admin_ ABSL_GUARDED_BY(mu_);
  SessionRegistry sessions_ ABSL_GUARDED_BY(mu_);
  // Mailboxes whose last update failed, with the reason logged (one line per change).
  absl::flat_hash_map<std::string, std::string> refused_ ABSL_GUARDED_BY(mu_);
  int64_t last_rescan_unix_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_lag_ms_ ABSL_GUARDED_BY(mu_) = 0;
  // Takes mu_ itself for the store's reads; set in the constructor, never changed.
  std::unique_ptr<Authenticator> auth_;
  // Last member: destroyed first, so no PAM callback runs into a half-destroyed Indexer.
  std::unique_ptr<PamAuthenticator> pam_;  // null unless config pam
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_INDEXER_H_
