// AccountStore: Poplar's own accounts, in the indexer's SQLite database (design §5 "Storage",
// §6 "Authentication", §8 "Least privilege").
//
// One row per login: the mailbox the login may open (a login name is never turned into a path),
// and a credential that is never the password itself:
//   * "scram-sha-256": a SCRAM-SHA-256 verifier in PostgreSQL's text form
//     (common/sasl/scram.h), made with a 16-byte RAND_bytes salt and the configured iteration
//     count. It serves USER/PASS, SASL PLAIN/LOGIN (recompute and compare) and, later, SASL
//     SCRAM-SHA-256 (the proof is checked against StoredKey).
//   * "crypt": a crypt(3) hash imported from an /etc/shadow-style source ("$y$", "$6$", "$5$",
//     ...), checked with crypt_rn. Usable for plaintext mechanisms only.
// apop_secret is reserved for the opt-in plaintext-equivalent APOP/CRAM-MD5 secret (Qpopper's
// popauth); nothing here sets it yet, and it is NULL for every account this class creates.
//
// These tables are not part of the disposable index (invariant 1): they are created with
// CREATE TABLE IF NOT EXISTS by Init() and versioned in their own account_schema table, not in
// PRAGMA user_version, which belongs to IndexStore's migrations.
//
// Thread-compatible, like IndexStore: use it on the thread that owns the sql::Db.
#ifndef POPLAR_INDEXER_ACCOUNT_STORE_H_
#define POPLAR_INDEXER_ACCOUNT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/sasl/scram.h"
#include "indexer/sqlite.h"

namespace poplar::indexer {

inline constexpr int kAccountSchemaVersion = 1;
inline constexpr uint32_t kDefaultScramIterations = 4096;
// Longest password accepted (octets). Bounds the work an attacker can ask for per attempt and
// is far beyond any real password; POP3 lines are 255 octets anyway.
inline constexpr size_t kMaxPasswordBytes = 1024;
// Longest mailbox path accepted (PATH_MAX).
inline constexpr size_t kMaxMailboxPathBytes = 4096;

enum class CredentialKind { kScramSha256, kCrypt };
// "scram-sha-256" / "crypt", as stored in accounts.credential_kind.
std::string_view CredentialKindName(CredentialKind kind);

struct AccountRecord {
  std::string user;
  std::string mailbox;
  CredentialKind credential_kind = CredentialKind::kScramSha256;
  std::string credential;  // encoded SCRAM verifier or crypt(3) hash; never a password
  std::optional<std::string> apop_secret;
  int64_t created_unix = 0;
};

// What Add/SetPassword store: a password (kept as a SCRAM verifier), or an existing crypt(3)
// hash taken over as it is.
struct PlainPassword {
  std::string_view password;
};
struct CryptHash {
  std::string_view hash;
};
using NewCredential = std::variant<PlainPassword, CryptHash>;

class AccountStore {
 public:
  // `db` must outlive the store. `scram_iterations` is used for new verifiers and for the dummy
  // verifier that unknown users are checked against; Init() rejects values outside
  // [sasl::kMinScramIterations, sasl::kMaxScramIterations].
  explicit AccountStore(sql::Db* db, uint32_t scram_iterations = kDefaultScramIterations);

  // Creates the tables if needed and checks their version. Call once before anything else;
  // until it succeeds, Add, SetPassword and CheckPassword return FailedPrecondition.
  absl::Status Init();

  // InvalidArgument: user fails sasl::IsValidUserName, password empty / longer than
  // kMaxPasswordBytes / containing NUL, crypt hash not recognised by crypt(3) (or a legacy
  // DES-style hash), mailbox not an absolute normalised path. AlreadyExists: user exists.
  absl::Status Add(std::string_view user, const NewCredential& credential,
                   std::string_view mailbox);
  // Replaces the credential (same validation as Add). NotFound if the user does not exist.
  absl::Status SetPassword(std::string_view user, const NewCredential& credential);
  // NotFound if absent; InvalidArgument for an invalid name.
  absl::Status Remove(std::string_view user);
  absl::StatusOr<AccountRecord> Get(std::string_view user);
  // All accounts, ordered by user.
  absl::StatusOr<std::vector<AccountRecord>> List();

  // The record if `password` is right. Unauthenticated, with the same message, for an unknown
  // user, an invalid name, an unacceptable password and a wrong password; the unknown-user and
  // invalid-name paths do the same database lookup and a full SCRAM check against a dummy
  // verifier of the configured iteration count, so the time taken does not tell them apart from
  // a wrong password. (A crypt account, or a verifier with a different iteration count, costs
  // what its own algorithm costs.) Other codes only for database failures (Unavailable /
  // Internal) and corrupt rows (DataLoss).
  absl::StatusOr<AccountRecord> CheckPassword(std::string_view user, std::string_view password);

  // CheckPassword in two halves, so that a server holds its database lock only for the lookup
  // and runs the deliberately slow credential check (PBKDF2, crypt) without it.
  struct LoginLookup {
    std::optional<AccountRecord> found;
    absl::Status read_status;  // a corrupt row: reported after the full check, never early
    bool name_ok = false;
  };
  absl::StatusOr<LoginLookup> LookupLogin(std::string_view user);  // uses the database
  // Pure CPU on its argument and immutable state: safe to call without the database's lock.
  absl::StatusOr<AccountRecord> VerifyLogin(LoginLookup lookup, std::string_view password) const;

  // SASL SCRAM-SHA-256 (RFC 5802/7677). The challenge: the stored verifier's salt and count, or,
  // for an unknown name or a crypt-hash account, a fake salt stable per name and the default
  // count, so the challenge does not reveal whether the account exists.
  struct ScramChallenge {
    std::string salt;
    uint32_t iterations = 0;
  };
  ScramChallenge ScramChallengeFor(const LoginLookup& lookup, std::string_view user) const;
  // The client's proof checked against the stored verifier (constant-time); the server
  // signature for the client. Unauthenticated like a wrong password otherwise. No lock needed.
  struct ScramLogin {
    AccountRecord account;
    std::string server_signature;
  };
  absl::StatusOr<ScramLogin> VerifyScram(LoginLookup lookup, std::string_view auth_message,
                                         std::string_view proof) const;
  // APOP / CRAM-MD5: `digest` (32 lowercase hex) against the account's apop_secret. An account
  // without one fails exactly like a wrong digest.
  enum class DigestKind { kApop, kCramMd5 };
  absl::StatusOr<AccountRecord> VerifyChallengeDigest(LoginLookup lookup, DigestKind kind,
                                                      std::string_view challenge,
                                                      std::string_view digest) const;
  // Sets (non-empty) or removes (empty) the APOP/CRAM-MD5 secret. NotFound for no account.
  absl::Status SetApopSecret(std::string_view user, std::string_view secret);

 private:
  absl::StatusOr<std::string> MakeCredential(const NewCredential& credential,
                                             CredentialKind* kind) const;

  sql::Db* db_;
  uint32_t scram_iterations_;
  sasl::ScramVerifier dummy_;  // random salt and keys: matches no password
  std::string fake_salt_key_;  // HMAC key for the fake SCRAM salts of unknown names
  bool initialized_ = false;   // Init() succeeded; Add/SetPassword/CheckPassword need it
};

// Exposed for tests and the admin tool: is `hash` a crypt(3) hash this store will import?
// Must be a complete modular-crypt hash ("$id$..."), accepted by crypt_checksalt as current or
// legacy (so "$5$" and "$1$" pass), with crypt_rn producing a hash of the same shape. Plain DES
// and BSDI "_" hashes are refused: DES silently ignores everything after 8 characters.
bool IsImportableCryptHash(std::string_view hash);

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_ACCOUNT_STORE_H_
