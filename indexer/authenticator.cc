#include "indexer/authenticator.h"

#include <sys/stat.h>

#include <utility>

#include "common/sasl/user_name.h"
#include "indexer/spool_watcher.h"

namespace poplar::indexer {

bool CarriesCredentials(const v1::OpenSession& open) {
  return open.has_scram() || open.has_challenge() || !open.password().empty();
}

std::string DefaultMailboxFor(const config::IndexerConfig& config, const std::string& user) {
  for (const config::Spool& s : config.spools()) {
    std::string p = MailboxPathFor(s, user);
    struct stat st {};
    if (!p.empty() && ::lstat(p.c_str(), &st) == 0) return p;
  }
  return config.spools_size() > 0 ? MailboxPathFor(config.spools(0), user) : std::string();
}

absl::StatusOr<AccountStore::LoginLookup> Authenticator::Lookup(const std::string& user) {
  absl::MutexLock lock(&db_mu_);
  return accounts_->LookupLogin(user);
}

absl::StatusOr<AccountRecord> Authenticator::Find(const std::string& user) {
  absl::MutexLock lock(&db_mu_);
  return accounts_->Get(user);
}

bool Authenticator::UsesPam(const std::string& user, const std::string& password,
                            AccountStore::LoginLookup* lookup) {
  // An invalid name never reaches PAM (or getpwnam): the store refuses it like a wrong password.
  if (pam_ == nullptr || password.empty() || !sasl::IsValidUserName(user)) return false;
  absl::StatusOr<AccountStore::LoginLookup> l = Lookup(user);
  if (!l.ok() || l->found.has_value() || !l->read_status.ok()) return false;
  *lookup = std::move(*l);
  return true;
}

void Authenticator::AuthenticateAsync(const std::string& user, const std::string& password,
                                      const std::string& client_address, AuthDone done) {
  AccountStore::LoginLookup lookup;
  if (UsesPam(user, password, &lookup)) {
    // The store's check of an unknown name (a dummy verifier) is made all the same, so a PAM
    // login never costs less than a wrong store password. Its answer is a refusal by design.
    (void)checks_->VerifyLogin(std::move(lookup), password);
    pam_->Authenticate(user, password, client_address,
                       [user, done = std::move(done)](absl::Status s) {
                         if (s.ok()) return done(user);
                         done(s);
                       });
    return;
  }
  done(StoreAuthenticate(user, password));
}

absl::StatusOr<std::string> Authenticator::StoreAuthenticate(const std::string& user,
                                                             const std::string& password) {
  absl::StatusOr<AccountStore::LoginLookup> lookup = Lookup(user);
  if (!lookup.ok()) return lookup.status();
  absl::StatusOr<AccountRecord> r = checks_->VerifyLogin(std::move(*lookup), password);
  if (!r.ok()) return r.status();
  return r->user;
}

absl::StatusOr<v1::ScramLookupReply> Authenticator::ScramLookup(const std::string& user) {
  absl::StatusOr<AccountStore::LoginLookup> lookup = Lookup(user);
  if (!lookup.ok()) return lookup.status();
  const AccountStore::ScramChallenge c = checks_->ScramChallengeFor(*lookup, user);
  v1::ScramLookupReply reply;
  reply.set_salt(c.salt);
  reply.set_iterations(c.iterations);
  return reply;
}

void Authenticator::LoginAsync(const v1::OpenSession& request, LoginDone done) {
  AccountStore::LoginLookup lookup;
  if (request.has_scram() || request.has_challenge() ||
      !UsesPam(request.user(), request.password(), &lookup)) {
    return done(StoreLogin(request));
  }
  // A system account: PAM on its own threads; the login continues there.
  (void)checks_->VerifyLogin(std::move(lookup), request.password());  // as for a store miss
  pam_->Authenticate(
      request.user(), request.password(), request.client_address(),
      [this, user = request.user(), done = std::move(done)](absl::Status s) {
        if (!s.ok()) return done(s);
        // Added to the store while PAM was asked: its own credential was not
        // checked. (`done` runs without the mutex: it reaches the gRPC reactor.)
        if (Find(user).ok()) {
          return done(absl::UnauthenticatedError("authentication failed"));
        }
        done(Login{user, DefaultMailboxFor(config_, user), /*credentials=*/true, ""});
      });
}

absl::StatusOr<Login> Authenticator::StoreLogin(const v1::OpenSession& request) {
  Login login;
  login.user = request.user();
  login.credentials = CarriesCredentials(request);
  if (request.has_scram()) {
    absl::StatusOr<AccountStore::LoginLookup> lookup = Lookup(login.user);
    if (!lookup.ok()) return lookup.status();
    absl::StatusOr<AccountStore::ScramLogin> scram = checks_->VerifyScram(
        std::move(*lookup), request.scram().auth_message(), request.scram().client_proof());
    if (!scram.ok()) return scram.status();
    login.user = scram->account.user;
    login.scram_signature = std::move(scram->server_signature);
  } else if (request.has_challenge()) {
    absl::StatusOr<AccountStore::LoginLookup> lookup = Lookup(login.user);
    if (!lookup.ok()) return lookup.status();
    absl::StatusOr<AccountRecord> account = checks_->VerifyChallengeDigest(
        std::move(*lookup),
        request.challenge().kind() == v1::ChallengeDigest::CRAM_MD5
            ? AccountStore::DigestKind::kCramMd5
            : AccountStore::DigestKind::kApop,
        request.challenge().challenge(), request.challenge().digest());
    if (!account.ok()) return account.status();
    login.user = account->user;
  } else if (!request.password().empty()) {
    absl::StatusOr<std::string> canonical = StoreAuthenticate(request.user(), request.password());
    if (!canonical.ok()) return canonical.status();
    login.user = *canonical;
  }
  absl::StatusOr<AccountRecord> account = Find(login.user);
  if (!account.ok()) {
    if (absl::IsNotFound(account.status()) || absl::IsInvalidArgument(account.status())) {
      return absl::UnauthenticatedError("no such account");
    }
    return account.status();
  }
  login.mailbox = account->mailbox;
  return login;
}

}  // namespace poplar::indexer
