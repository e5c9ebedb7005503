#include "indexer/account_store.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/sasl/challenge.h"
#include "common/sasl/scram.h"
#include "common/sasl/user_name.h"
#include "common/util/strings.h"

namespace poplar::indexer {
namespace {

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS account_schema (
  version INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS accounts (
  user TEXT PRIMARY KEY NOT NULL,
  mailbox TEXT NOT NULL,
  credential_kind TEXT NOT NULL CHECK (credential_kind IN ('scram-sha-256', 'crypt')),
  credential TEXT NOT NULL,
  apop_secret BLOB,
  created_unix INTEGER NOT NULL
) STRICT;
)sql";

constexpr char kColumns[] = "user, mailbox, credential_kind, credential, apop_secret, created_unix";

// Same text for every authentication failure, so the message cannot tell them apart either.
absl::Status AuthFailed() { return absl::UnauthenticatedError("authentication failed"); }

absl::Status NotInitialized() {
  return absl::FailedPreconditionError("AccountStore::Init() has not succeeded");
}

// crypt_data is 32 KiB: too big for the stack of a server thread. Zeroed on allocation (its
// `initialized` field must start at 0) and wiped before it is freed, since crypt's scratch
// space holds password-derived state.
struct CryptScratch {
  CryptScratch() : data(std::make_unique<crypt_data>()) {}
  ~CryptScratch() { OPENSSL_cleanse(data.get(), sizeof(crypt_data)); }
  // nullptr on failure (libxcrypt's crypt_rn never returns the "*0" failure token).
  const char* Crypt(const std::string& phrase, const std::string& setting) {
    return crypt_rn(phrase.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  }
  std::unique_ptr<crypt_data> data;
};

bool AcceptablePassword(std::string_view password) {
  return !password.empty() && password.size() <= kMaxPasswordBytes &&
         password.find('\0') == std::string_view::npos;
}

// Absolute, normalised (no empty, "." or ".." components, no trailing '/'), no control
// characters. The mailbox is opened later without following symlinks; this only makes sure the
// record names one file unambiguously.
bool IsValidMailboxPath(std::string_view path) {
  if (path.size() < 2 || path.size() > kMaxMailboxPathBytes || path.front() != '/' ||
      path.back() == '/') {
    return false;
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  size_t start = 1;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view component = path.substr(start, slash - start);
    if (component.empty() || component == "." || component == "..") return false;
    start = slash + 1;
  }
  return true;
}

absl::StatusOr<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return absl::InternalError("RAND_bytes failed: no entropy for a salt");
  }
  return out;
}

absl::StatusOr<CredentialKind> ParseKind(std::string_view name) {
  if (name == "scram-sha-256") return CredentialKind::kScramSha256;
  if (name == "crypt") return CredentialKind::kCrypt;
  return absl::DataLossError(absl::StrCat("accounts: unknown credential_kind '", Absl(name), "'"));
}

absl::StatusOr<AccountRecord> ReadRow(const sql::Stmt& s) {
  AccountRecord r;
  r.user = s.Text(0);
  r.mailbox = s.Text(1);
  absl::StatusOr<CredentialKind> kind = ParseKind(s.Text(2));
  if (!kind.ok()) return kind.status();
  r.credential_kind = *kind;
  r.credential = s.Text(3);
  if (!s.IsNull(4)) r.apop_secret = s.Blob(4);
  r.created_unix = s.Int(5);
  return r;
}

// Does `password` match the record's credential? DataLoss if the stored credential cannot be
// used. Costs one full check of the credential's algorithm whatever the answer.
absl::StatusOr<bool> Matches(const AccountRecord& r, std::string_view password) {
  switch (r.credential_kind) {
    case CredentialKind::kScramSha256: {
      std::optional<sasl::ScramVerifier> v = sasl::ParseScramVerifier(r.credential);
      if (!v)
        return absl::DataLossError(absl::StrCat("accounts: unreadable verifier for ", r.user));
      return sasl::VerifyPlainPassword(*v, password);
    }
    case CredentialKind::kCrypt: {
      CryptScratch scratch;
      std::string phrase(password);
      const char* out = scratch.Crypt(phrase, r.credential);
      OPENSSL_cleanse(phrase.data(), phrase.size());
      if (out == nullptr) {
        return absl::DataLossError(absl::StrCat("accounts: unusable crypt hash for ", r.user));
      }
      return sasl::ConstantTimeEquals(out, r.credential);
    }
  }
  return absl::DataLossError("accounts: bad credential kind");
}

}  // namespace

std::string_view CredentialKindName(CredentialKind kind) {
  switch (kind) {
    case CredentialKind::kScramSha256:
      return "scram-sha-256";
    case CredentialKind::kCrypt:
      return "crypt";
  }
  return "";
}

bool IsImportableCryptHash(std::string_view hash) {
  if (hash.size() < 4 || hash.size() >= CRYPT_OUTPUT_SIZE || hash.front() != '$') return false;
  for (char c : hash) {
    // Printable ASCII without ':' (the shadow field separator) or space.
    if (c <= 0x20 || c >= 0x7f || c == ':') return false;
  }
  std::string setting(hash);
  int check = crypt_checksalt(setting.c_str());
  if (check != CRYPT_SALT_OK && check != CRYPT_SALT_METHOD_LEGACY) return false;
  // crypt_checksalt looks at the prefix only; a bare setting ("$6$salt") or a truncated hash
  // passes it. Hashing a probe with the stored value as setting must give a hash of exactly the
  // same shape: same length and same text up to the last '$' (method, parameters, salt).
  CryptScratch scratch;
  const char* out = scratch.Crypt("poplar import probe", setting);
  if (out == nullptr) return false;
  std::string_view probe(out);
  size_t last = hash.rfind('$');
  return probe.size() == hash.size() && last > 0 && probe.substr(0, last) == hash.substr(0, last) &&
         probe[last] == '$';
}

AccountStore::AccountStore(sql::Db* db, uint32_t scram_iterations)
    : db_(db), scram_iterations_(scram_iterations) {}

absl::Status AccountStore::Init() {
  if (scram_iterations_ < sasl::kMinScramIterations ||
      scram_iterations_ > sasl::kMaxScramIterations) {
    return absl::InvalidArgumentError(absl::StrCat("SCRAM iteration count ", scram_iterations_,
                                                   " is outside [", sasl::kMinScramIterations, ", ",
                                                   sasl::kMaxScramIterations, "]"));
  }
  // The dummy verifier for unknown users: random salt and keys, so it matches no password, but
  // checking against it costs exactly what checking a real verifier of this count costs.
  absl::StatusOr<std::string> salt = RandomBytes(sasl::kScramSaltBytes);
  if (!salt.ok()) return salt.status();
  absl::StatusOr<std::string> keys = RandomBytes(2 * sasl::kSha256Bytes);
  if (!keys.ok()) return keys.status();
  dummy_ = sasl::ScramVerifier{*salt, scram_iterations_, keys->substr(0, sasl::kSha256Bytes),
                               keys->substr(sasl::kSha256Bytes)};
  absl::StatusOr<std::string> fake_key = RandomBytes(sasl::kSha256Bytes);
  if (!fake_key.ok()) return fake_key.status();
  fake_salt_key_ = *fake_key;

  auto tx = sql::Transaction::Begin(db_);
  if (!tx.ok()) return tx.status();
  if (absl::Status s = db_->Exec(kSchema); !s.ok()) return s;
  auto v = db_->Prepare("SELECT version FROM account_schema");
  if (!v.ok()) return v.status();
  absl::StatusOr<bool> row = v->Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    v->Reset();
    if (absl::Status s = db_->Exec(absl::StrCat("INSERT INTO account_schema(version) VALUES(",
                                                kAccountSchemaVersion, ")"));
        !s.ok()) {
      return s;
    }
  } else {
    int64_t version = v->Int(0);
    v->Reset();
    if (version > kAccountSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "account tables have schema version ", version, ", newer than this poplar-indexer (",
          kAccountSchemaVersion, "); the accounts are not disposable: upgrade instead"));
    }
    // version < kAccountSchemaVersion: no older versions exist yet; migrations go here.
  }
  if (absl::Status s = (*tx)->Commit(); !s.ok()) return s;
  initialized_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> AccountStore::MakeCredential(const NewCredential& credential,
                                                         CredentialKind* kind) const {
  if (!initialized_) return NotInitialized();
  if (const PlainPassword* p = std::get_if<PlainPassword>(&credential)) {
    if (!AcceptablePassword(p->password)) {
      return absl::InvalidArgumentError(
          absl::StrCat("password must be 1..", kMaxPasswordBytes, " octets without NUL"));
    }
    absl::StatusOr<std::string> salt = RandomBytes(sasl::kScramSaltBytes);
    if (!salt.ok()) return salt.status();
    *kind = CredentialKind::kScramSha256;
    return sasl::EncodeScramVerifier(
        sasl::MakeScramVerifier(p->password, *salt, scram_iterations_));
  }
  const CryptHash& c = std::get<CryptHash>(credential);
  if (!IsImportableCryptHash(c.hash)) {
    // The hash is a secret too: do not echo it.
    return absl::InvalidArgumentError(
        "not a complete crypt(3) hash of a supported method ($y$, $gy$, $7$, $2b$, $6$, $5$, $1$)");
  }
  *kind = CredentialKind::kCrypt;
  return std::string(c.hash);
}

absl::Status AccountStore::Add(std::string_view user, const NewCredential& credential,
                               std::string_view mailbox) {
  if (!sasl::IsValidUserName(user)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", Absl(user), "'"));
  }
  if (!IsValidMailboxPath(mailbox)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mailbox for ", Absl(user), " must be an absolute normalised path: '", Absl(mailbox), "'"));
  }
  CredentialKind kind = CredentialKind::kScramSha256;
  absl::StatusOr<std::string> stored = MakeCredential(credential, &kind);
  if (!stored.ok()) return stored.status();
  auto s = db_->Prepare(
      "INSERT INTO accounts(user, mailbox, credential_kind, credential, apop_secret, created_unix)"
      " VALUES(?, ?, ?, ?, NULL, ?) ON CONFLICT(user) DO NOTHING");
  if (!s.ok()) return s.status();
  s->Bind(1, user).Bind(2, mailbox).Bind(3, CredentialKindName(kind)).Bind(4, *stored);
  s->Bind(5, static_cast<int64_t>(absl::ToUnixSeconds(absl::Now())));
  if (absl::Status r = s->Run(); !r.ok()) return r;
  if (db_->changes() == 0) {
    return absl::AlreadyExistsError(absl::StrCat("account '", Absl(user), "' already exists"));
  }
  return absl::OkStatus();
}

absl::Status AccountStore::SetPassword(std::string_view user, const NewCredential& credential) {
  if (!sasl::IsValidUserName(user)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", Absl(user), "'"));
  }
  CredentialKind kind = CredentialKind::kScramSha256;
  absl::StatusOr<std::string> stored = MakeCredential(credential, &kind);
  if (!stored.ok()) return stored.status();
  auto s = db_->Prepare("UPDATE accounts SET credential_kind=?, credential=? WHERE user=?");
  if (!s.ok()) return s.status();
  s->Bind(1, CredentialKindName(kind)).Bind(2, *stored).Bind(3, user);
  if (absl::Status r = s->Run(); !r.ok()) return r;
  if (db_->changes() == 0)
    return absl::NotFoundError(absl::StrCat("no account '", Absl(user), "'"));
  return absl::OkStatus();
}

absl::Status AccountStore::Remove(std::string_view user) {
  if (!sasl::IsValidUserName(user)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", Absl(user), "'"));
  }
  auto s = db_->Prepare("DELETE FROM accounts WHERE user=?");
  if (!s.ok()) return s.status();
  s->Bind(1, user);
  if (absl::Status r = s->Run(); !r.ok()) return r;
  if (db_->changes() == 0)
    return absl::NotFoundError(absl::StrCat("no account '", Absl(user), "'"));
  return absl::OkStatus();
}

absl::StatusOr<AccountRecord> AccountStore::Get(std::string_view user) {
  if (!sasl::IsValidUserName(user)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", Absl(user), "'"));
  }
  auto s = db_->Prepare(absl::StrCat("SELECT ", kColumns, " FROM accounts WHERE user=?"));
  if (!s.ok()) return s.status();
  s->Bind(1, user);
  absl::StatusOr<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no account '", Absl(user), "'"));
  return ReadRow(*s);
}

absl::StatusOr<std::vector<AccountRecord>> AccountStore::List() {
  auto s = db_->Prepare(absl::StrCat("SELECT ", kColumns, " FROM accounts ORDER BY user"));
  if (!s.ok()) return s.status();
  std::vector<AccountRecord> out;
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::StatusOr<AccountRecord> r = ReadRow(*s);
    if (!r.ok()) return r.status();
    out.push_back(std::move(*r));
  }
  return out;
}

absl::StatusOr<AccountStore::LoginLookup> AccountStore::LookupLogin(std::string_view user) {
  // The lookup runs even for an invalid name: such a name can never be stored (Add validates),
  // so it simply finds nothing, and costs what a real lookup costs.
  if (!initialized_) return NotInitialized();
  LoginLookup out;
  out.name_ok = sasl::IsValidUserName(user);
  auto s = db_->Prepare(absl::StrCat("SELECT ", kColumns, " FROM accounts WHERE user=?"));
  if (!s.ok()) return s.status();
  s->Bind(1, user);
  absl::StatusOr<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    absl::StatusOr<AccountRecord> r = ReadRow(*s);
    if (r.ok()) {
      out.found = std::move(*r);
    } else {
      out.read_status = r.status();
    }
  }
  s->Reset();
  return out;
}

absl::StatusOr<AccountRecord> AccountStore::VerifyLogin(LoginLookup lookup,
                                                        std::string_view password) const {
  // Every path does one full credential check, so an unknown or invalid name costs what a
  // wrong password costs.
  const bool password_ok = AcceptablePassword(password);
  AccountRecord dummy;
  dummy.credential_kind = CredentialKind::kScramSha256;
  dummy.credential = sasl::EncodeScramVerifier(dummy_);
  const bool real = lookup.found.has_value() && lookup.name_ok && password_ok;
  // An unacceptable password (empty, NUL, oversized) is never handed to crypt(3), where a NUL
  // would cut it short; the dummy check stands in for it.
  absl::StatusOr<bool> match = real ? Matches(*lookup.found, password) : Matches(dummy, "x");
  if (!lookup.read_status.ok()) return lookup.read_status;
  if (!match.ok()) return match.status();
  if (!real || !*match) return AuthFailed();
  return std::move(*lookup.found);
}

AccountStore::ScramChallenge AccountStore::ScramChallengeFor(const LoginLookup& lookup,
                                                             std::string_view user) const {
  if (lookup.found && lookup.name_ok &&
      lookup.found->credential_kind == CredentialKind::kScramSha256) {
    if (std::optional<sasl::ScramVerifier> v = sasl::ParseScramVerifier(lookup.found->credential)) {
      return {v->salt, v->iterations};
    }
  }
  // No verifier to offer (unknown name, or a crypt hash, which SCRAM cannot use): a salt that
  // is stable per name for this store's life, so a prober sees the same answer twice, and the
  // default count. The proof then fails like a wrong password.
  return {sasl::HmacSha256(fake_salt_key_, user).substr(0, sasl::kScramSaltBytes),
          scram_iterations_};
}

absl::StatusOr<AccountStore::ScramLogin> AccountStore::VerifyScram(LoginLookup lookup,
                                                                   std::string_view auth_message,
                                                                   std::string_view proof) const {
  std::optional<sasl::ScramVerifier> v;
  if (lookup.found && lookup.name_ok &&
      lookup.found->credential_kind == CredentialKind::kScramSha256) {
    v = sasl::ParseScramVerifier(lookup.found->credential);
  }
  // The dummy stands in for a missing verifier so both paths do the same (cheap) work.
  const bool ok = sasl::VerifyClientProof(v ? *v : dummy_, auth_message, proof) && v.has_value();
  if (!lookup.read_status.ok()) return lookup.read_status;
  if (!ok) return AuthFailed();
  ScramLogin out;
  out.server_signature = sasl::ServerSignature(v->server_key, auth_message);
  out.account = std::move(*lookup.found);
  return out;
}

absl::StatusOr<AccountRecord> AccountStore::VerifyChallengeDigest(LoginLookup lookup,
                                                                  DigestKind kind,
                                                                  std::string_view challenge,
                                                                  std::string_view digest) const {
  const bool real = lookup.found && lookup.name_ok && lookup.found->apop_secret.has_value();
  const std::string secret = real ? *lookup.found->apop_secret : std::string(16, 'x');
  const std::string expected = kind == DigestKind::kApop ? sasl::ApopDigest(challenge, secret)
                                                         : sasl::CramMd5Digest(challenge, secret);
  const bool match = sasl::ConstantTimeEquals(expected, digest);
  if (!lookup.read_status.ok()) return lookup.read_status;
  if (!real || !match) return AuthFailed();
  return std::move(*lookup.found);
}

absl::Status AccountStore::SetApopSecret(std::string_view user, std::string_view secret) {
  if (!initialized_) return NotInitialized();
  if (secret.size() > 255 || secret.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("an APOP secret is 1..255 octets without NUL");
  }
  if (!sasl::IsValidUserName(user)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", Absl(user), "'"));
  }
  auto s = db_->Prepare("UPDATE accounts SET apop_secret=? WHERE user=?");
  if (!s.ok()) return s.status();
  if (secret.empty()) {
    s->BindNull(1);
  } else {
    s->BindBlob(1, secret);
  }
  s->Bind(2, user);
  if (absl::Status r = s->Run(); !r.ok()) return r;
  if (db_->changes() == 0)
    return absl::NotFoundError(absl::StrCat("no account '", Absl(user), "'"));
  return absl::OkStatus();
}

absl::StatusOr<AccountRecord> AccountStore::CheckPassword(std::string_view user,
                                                          std::string_view password) {
  absl::StatusOr<LoginLookup> lookup = LookupLogin(user);
  if (!lookup.ok()) return lookup.status();
  return VerifyLogin(std::move(*lookup), password);
}

}  // namespace poplar::indexer
