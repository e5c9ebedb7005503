// Indexer: the domain behind poplar-indexer's gRPC services (style P8: the services are thin
// adapters over this class; no SQL or file logic lives in them).
//
// Owns the SQLite connection (index + accounts), the spool watcher, the mailbox indexer and
// the leases. Thread-safe: gRPC threads and the event thread call in concurrently; one mutex
// serialises everything that touches SQLite or the spool (the work under it is bounded: one
// mailbox's catch-up, one admin query), while the leases have their own lock so an [IN-USE]
// answer never waits behind an indexing run.
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
#include "indexer/expunger.h"
#include "indexer/index_store.h"
#include "indexer/lease_manager.h"
#include "indexer/mailbox_indexer.h"
#include "indexer/mailbox_owner.h"
#include "indexer/pam_authenticator.h"
#include "indexer/spool_watcher.h"
#include "poplar/admin.pb.h"
#include "poplar/config.pb.h"
#include "poplar/maildrop.pb.h"

namespace poplar::indexer {

// Does the open carry the user's credentials (a password, a SCRAM proof or a challenge digest)?
// Without them OpenSession believes the caller authenticated the user (maildrop.proto).
bool CarriesCredentials(const v1::OpenSession& open);

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
  using AuthDone = std::function<void(absl::StatusOr<std::string>)>;
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
  // The mailbox path an account or user name refers to (admin commands accept both).
  absl::StatusOr<std::string> ResolveMailboxLocked(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A refused mailbox (symlink, not a regular file, foreign owner) is logged once per path and
  // reason, unless `quiet` (the caller logs it itself).
  absl::StatusOr<IndexOutcome> UpdateLocked(const std::string& path, const std::string& user,
                                            bool force_full, bool quiet = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Account> ToAccount(const AccountRecord& r) const;
  // The spool layout applied to a validated name: the first spool that holds a file of that
  // name, else the first spool. For accounts added without a path and for PAM logins.
  std::string DefaultMailboxFor(const std::string& user) const;
  // True for a plaintext login that PAM checks: PAM on, a password, a valid name that is not
  // an account of the store. Sets *lookup to the store's answer (for the timing-equal check).
  bool UsesPam(const std::string& user, const std::string& password,
               AccountStore::LoginLookup* lookup);
  // The store's own check of a plaintext password (no PAM).
  absl::StatusOr<std::string> StoreAuthenticate(const std::string& user,
                                                const std::string& password);
  // Who logs in, once the credentials were checked.
  struct Login {
    std::string user;
    std::string mailbox;
    bool credentials = false;  // OpenSession carried credentials and they were checked
    std::string scram_signature;
  };
  // The store's part of OpenSession: the credentials (password, SCRAM, APOP/CRAM-MD5).
  absl::StatusOr<Login> StoreLogin(const v1::OpenSession& request);
  // OpenSession after the credentials: the lease (possibly after a wait), then FinishOpen.
  void OpenAuthenticatedAsync(Login login, const v1::OpenSession& request, LeaseHooks hooks,
                              OpenDone done);
  // With the lease held: the catch-up and the snapshot; the lease goes again on failure.
  absl::StatusOr<Opened> FinishOpen(const Login& login, const LeaseInfo& lease);
  // Finishes open expunge plans (of one mailbox, or all when empty) and re-indexes the
  // mailboxes they touched. UNAVAILABLE if a plan could not get its locks (it stays open).
  absl::Status RecoverLocked(const std::string& mailbox) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Start-up: removes the dotlocks a killed poplar-indexer left (lock::RemoveDeadPoplarDotlock)
  // beside every mailbox of the index and of an open plan, and every *.lock in the spools; one
  // log line per lock removed. Other programs' locks and live writers' are left alone.
  // Returns how many were removed.
  int RemoveDeadDotlocksLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deferred mode's Commit: verifies the deletions against the file and hides them.
  absl::StatusOr<v1::CommitResult> HideLocked(const std::string& mailbox, const v1::Snapshot& snap,
                                              const std::vector<size_t>& deleted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::CommitResult> ExpungeLocked(const std::string& mailbox,
                                                 const v1::Snapshot& snap,
                                                 std::vector<size_t> deleted,
                                                 lock::MailboxLock held)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const config::IndexerConfig config_;
  LeaseManager leases_;

  mutable absl::Mutex mu_;
  std::unique_ptr<IndexStore> store_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<AccountStore> accounts_ ABSL_GUARDED_BY(mu_);
  // The same store for its const checks (PBKDF2, crypt, SCRAM proofs, digests), which read only
  // their argument and immutable state and run outside mu_ by design, so logins do not queue
  // behind one another. Set in the constructor, never changed: needs no lock, and being const
  // it cannot reach the database.
  const AccountStore* account_checks_ = nullptr;
  std::unique_ptr<SpoolWatcher> watcher_;  // fd() is immutable; Drain/ListAll under mu_
  LockFileProbe probe_;                    // the site's lock methods
  const MailboxOwner owner_;               // config check_owner
  std::unique_ptr<MailboxIndexer> mailbox_indexer_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Expunger> expunger_ ABSL_GUARDED_BY(mu_);
  lock::LockOptions lock_options_;
  // The snapshot of a mailbox as the index has it now, shared by every session that opens it
  // until the next update changes the mailbox: a login to an unchanged 100,000-message mailbox
  // costs a stat and a copy, not 100,000 SQLite rows.
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> CachedSnapshotLocked(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::shared_ptr<const v1::Snapshot> SpliceSnapshot(
      const v1::Snapshot& old, uint64_t from, uint64_t to, const std::vector<MessageRecord>& added);
  absl::flat_hash_map<std::string, std::shared_ptr<const v1::Snapshot>> snapshots_
      ABSL_GUARDED_BY(mu_);
  // Mailboxes an expunge is rewriting right now, with mu_ released for the file work (seconds
  // for a big mailbox: other mailboxes' logins must not wait for it). Until it is done their
  // index is left alone (UpdateLocked reports them unchanged; our own writes raise inotify
  // events) and no session may open them.
  absl::flat_hash_set<std::string> compacting_ ABSL_GUARDED_BY(mu_);
  // What each open session was shown, for Commit's identity checks.
  struct SessionState {
    std::string mailbox;
    std::shared_ptr<const v1::Snapshot> snapshot;  // null: the maildrop was empty
  };
  absl::flat_hash_map<std::string, SessionState> sessions_ ABSL_GUARDED_BY(mu_);
  // Mailboxes with hidden (deleted, not yet compacted) messages: their snapshots are filtered.
  absl::flat_hash_set<std::string> hidden_mailboxes_ ABSL_GUARDED_BY(mu_);
  // Mailboxes refused at their last update, with the reason logged (one line per change).
  absl::flat_hash_map<std::string, std::string> refused_ ABSL_GUARDED_BY(mu_);
  int64_t last_rescan_unix_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_lag_ms_ ABSL_GUARDED_BY(mu_) = 0;
  // Last member: destroyed first, so no PAM callback runs into a half-destroyed Indexer.
  std::unique_ptr<PamAuthenticator> pam_;  // null unless config pam
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_INDEXER_H_
