// Authenticator: who logs in, and with which maildrop. Plaintext passwords (the account store,
// or PAM for a valid name that is not in the store, when config pam is set), SCRAM proofs and
// APOP/CRAM-MD5 digests. Every refusal is the same Unauthenticated.
//
// The account store shares the index's SQLite connection, so its reads take the connection's
// mutex (`db_mu`, the Indexer's): once, in Lookup/Find, never by the callers. The slow checks
// (PBKDF2, crypt, SCRAM proofs, digests) are the store's const methods, which read only their
// argument and immutable state: they run outside the mutex, so logins do not queue behind one
// another or behind indexing. Thread-safe.
#ifndef POPLAR_INDEXER_AUTHENTICATOR_H_
#define POPLAR_INDEXER_AUTHENTICATOR_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "indexer/account_store.h"
#include "indexer/pam_authenticator.h"
#include "poplar/config.pb.h"
#include "poplar/maildrop.pb.h"

namespace poplar::indexer {

// Does the open carry the user's credentials (a password, a SCRAM proof or a challenge digest)?
// Without them OpenSession believes the caller authenticated the user (maildrop.proto).
bool CarriesCredentials(const v1::OpenSession& open);

// The spool layout applied to a validated name: the first spool that holds a file of that name,
// else the first spool. For accounts added without a path and for PAM logins.
std::string DefaultMailboxFor(const config::IndexerConfig& config, const std::string& user);

// Who logs in, once the credentials were checked.
struct Login {
  std::string user;
  std::string mailbox;
  bool credentials = false;  // OpenSession carried credentials and they were checked
  std::string scram_signature;
};

class Authenticator {
 public:
  // `accounts` is read under `db_mu`; `pam` is null unless config pam and must outlive every
  // callback it runs (the Indexer destroys it first). `config` gives the PAM users' maildrops.
  Authenticator(AccountStore* accounts, absl::Mutex& db_mu, PamAuthenticator* pam,
                const config::IndexerConfig& config)
      : accounts_(accounts), checks_(accounts), db_mu_(db_mu), pam_(pam), config_(config) {}

  // A plaintext password. PAM checks run on the PAM threads and call `done` there; store
  // accounts call `done` before this returns.
  using AuthDone = std::function<void(absl::StatusOr<std::string>)>;
  void AuthenticateAsync(const std::string& user, const std::string& password,
                         const std::string& client_address, AuthDone done)
      ABSL_LOCKS_EXCLUDED(db_mu_);
  absl::StatusOr<v1::ScramLookupReply> ScramLookup(const std::string& user)
      ABSL_LOCKS_EXCLUDED(db_mu_);
  // OpenSession's credentials (or none: the caller vouches for the user) to a Login. As above:
  // `done` runs on a PAM thread for a PAM login, else before this returns.
  using LoginDone = std::function<void(absl::StatusOr<Login>)>;
  void LoginAsync(const v1::OpenSession& request, LoginDone done) ABSL_LOCKS_EXCLUDED(db_mu_);

 private:
  // The one "look up the login under the connection's mutex".
  absl::StatusOr<AccountStore::LoginLookup> Lookup(const std::string& user)
      ABSL_LOCKS_EXCLUDED(db_mu_);
  absl::StatusOr<AccountRecord> Find(const std::string& user) ABSL_LOCKS_EXCLUDED(db_mu_);
  // True for a plaintext login that PAM checks: PAM on, a password, a valid name that is not an
  // account of the store. Sets *lookup to the store's answer (for the timing-equal check).
  bool UsesPam(const std::string& user, const std::string& password,
               AccountStore::LoginLookup* lookup) ABSL_LOCKS_EXCLUDED(db_mu_);
  // The store's own check of a plaintext password (no PAM).
  absl::StatusOr<std::string> StoreAuthenticate(const std::string& user,
                                                const std::string& password)
      ABSL_LOCKS_EXCLUDED(db_mu_);
  // The store's part of LoginAsync: password, SCRAM or APOP/CRAM-MD5, then the account's maildrop.
  absl::StatusOr<Login> StoreLogin(const v1::OpenSession& request) ABSL_LOCKS_EXCLUDED(db_mu_);

  AccountStore* const accounts_ ABSL_PT_GUARDED_BY(db_mu_);
  // The same store for its const checks, outside the mutex by design (see above): being const
  // it cannot reach the database.
  const AccountStore* const checks_;
  absl::Mutex& db_mu_;
  PamAuthenticator* const pam_;
  const config::IndexerConfig& config_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_AUTHENTICATOR_H_
