#include "indexer/indexer.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/util/log.h"
#include "indexer/indexer_config.h"

namespace poplar::indexer {
namespace {

// ---- configuration adapters

// An empty list means the default methods (ApplyDefaults): dotlock and fcntl.
bool HasLock(const config::IndexerConfig& c, config::LockMethod m) {
  if (c.lock_methods_size() == 0) return m != config::LOCK_FLOCK;
  return std::find(c.lock_methods().begin(), c.lock_methods().end(), m) != c.lock_methods().end();
}

lock::LockOptions LockOptionsFromConfig(const config::IndexerConfig& c) {
  lock::LockOptions o;
  o.methods.clear();
  if (c.lock_methods_size() == 0) {
    o.methods = {lock::Method::kDotlock, lock::Method::kFcntl};
  }
  for (int m : c.lock_methods()) {
    o.methods.push_back(m == config::LOCK_DOTLOCK ? lock::Method::kDotlock
                        : m == config::LOCK_FCNTL ? lock::Method::kFcntl
                                                  : lock::Method::kFlock);
  }
  o.timeout = absl::Milliseconds(c.lock_timeout_ms());
  o.stale_after_s = c.dotlock_stale_s();
  return o;
}

std::string JournalDirFromConfig(const config::IndexerConfig& c) {
  if (!c.expunge_journal_dir().empty()) return c.expunge_journal_dir();
  const std::string& db = c.database_path();
  size_t slash = db.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "" : db.substr(0, slash));
  return dir + "/expunge-journal";
}

// The answer of an async call, waited for (the sync forms, for tests and tools).
template <typename T, typename Start>
T Wait(Start start) {
  struct Result {
    absl::Notification ready;
    T value;
  };
  auto result = std::make_shared<Result>();
  start([result](T v) {
    result->value = std::move(v);
    result->ready.Notify();
  });
  result->ready.WaitForNotification();
  return std::move(result->value);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Indexer>> Indexer::Create(const config::IndexerConfig& config) {
  absl::StatusOr<std::unique_ptr<IndexStore>> store = IndexStore::Open(config.database_path());
  if (!store.ok()) return store.status();
  std::vector<config::Spool> spools(config.spools().begin(), config.spools().end());
  absl::StatusOr<std::unique_ptr<SpoolWatcher>> watcher = SpoolWatcher::Create(std::move(spools));
  if (!watcher.ok()) return watcher.status();
  absl::StatusOr<MailboxOwner> owner = MailboxOwner::FromConfig(config.check_owner());
  if (!owner.ok()) return owner.status();
  std::unique_ptr<Indexer> idx(
      new Indexer(config, std::move(*store), std::move(*watcher), std::move(*owner)));
  absl::MutexLock lock(&idx->mu_);
  idx->expunge_->AssertHeld();
  if (absl::Status s = idx->accounts_->Init(); !s.ok()) return s;
  if (absl::Status s = idx->expunger_->Init(); !s.ok()) return s;
  // A killed indexer's dotlocks go first: MDAs waiting on them deliver at once, and the
  // recovery below finds the mailboxes free.
  idx->RemoveDeadDotlocksLocked();
  // An expunge interrupted by a crash is finished before anything is served (design §5). A
  // plan whose mailbox is locked right now stays open and is retried at the next commit.
  if (absl::Status s = idx->expunge_->Recover(""); !s.ok()) log::Warning("recovery: ", s);
  if (absl::Status s = idx->snapshots_->LoadHidden(); !s.ok()) return s;
  absl::StatusOr<int> orphans = idx->expunger_->RemoveOrphanJournals();
  if (!orphans.ok()) return orphans.status();
  if (*orphans > 0) {
    log::Info("recovery: removed ", *orphans,
              " expunge journal(s) of no open plan (a crash before the plan was recorded or "
              "after it was done)");
  }
  return idx;
}

Indexer::Indexer(config::IndexerConfig config, std::unique_ptr<IndexStore> store,
                 std::unique_ptr<SpoolWatcher> watcher, MailboxOwner owner)
    : config_(std::move(config)),
      store_(std::move(store)),
      watcher_(std::move(watcher)),
      probe_(HasLock(config_, config::LOCK_DOTLOCK), HasLock(config_, config::LOCK_FCNTL),
             HasLock(config_, config::LOCK_FLOCK)),
      owner_(std::move(owner)) {
  accounts_ = std::make_unique<AccountStore>(store_->db(), config_.scram_iterations());
  mailbox_indexer_ =
      std::make_unique<MailboxIndexer>(store_.get(), UidlFromConfig(config_), &probe_);
  mailbox_indexer_->set_trust_content_length(config_.trust_content_length());
  mailbox_indexer_->set_owner(&owner_);
  expunger_ = std::make_unique<Expunger>(store_.get(), JournalDirFromConfig(config_));
  lock_options_ = LockOptionsFromConfig(config_);
  snapshots_ = std::make_unique<SnapshotCache>(store_.get());
  ExpungeCoordinator::Options expunge_options{UidlFromConfig(config_),
                                              config_.trust_content_length(), lock_options_};
  // After a recovery the file changed under the index: a full re-index (UIDLs carried by
  // content hash). The coordinator calls it with mu_ held.
  auto reindex = [this](const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<IndexOutcome> o = UpdateLocked(path, "", /*force_full=*/true, /*quiet=*/true);
    if (!o.ok()) log::Warning("re-index of ", path, ": ", o.status());
  };
  expunge_ =
      std::make_unique<ExpungeCoordinator>(mu_, store_.get(), expunger_.get(), snapshots_.get(),
                                           &owner_, std::move(expunge_options), reindex);
  admin_ = std::make_unique<AdminQueries>(store_.get(), accounts_.get(), &probe_,
                                          config_.trust_content_length());
  if (config_.has_pam()) pam_ = std::make_unique<PamAuthenticator>(config_.pam());
  auth_ = std::make_unique<Authenticator>(accounts_.get(), mu_, pam_.get(), config_);
}

Indexer::~Indexer() {
  // A login waiting for a lease continues on the LeaseManager's thread into FinishOpen, which
  // uses the store: those end (or finish) here, while everything is still in place.
  leases_.Shutdown();
}

absl::StatusOr<IndexOutcome> Indexer::UpdateLocked(const std::string& path, const std::string& user,
                                                   bool force_full, bool quiet) {
  expunge_->AssertHeld();
  // Half-rewritten by an expunge that holds the MDA locks: the expunge sets the index itself.
  if (expunge_->Compacting(path)) return IndexOutcome{};
  absl::StatusOr<IndexOutcome> o = mailbox_indexer_->Update(path, user, force_full);
  // A missing file is no failure (an empty maildrop, or one that went: kRemoved). A failing
  // mailbox is retried at every reconcile: its line is logged once per reason.
  if (o.ok() || absl::IsNotFound(o.status())) {
    refused_.erase(path);
  } else if (std::string why(o.status().message()); refused_[path] != why) {
    if (!quiet) {
      if (absl::IsFailedPrecondition(o.status())) {
        log::Warning(why);  // "mailbox PATH refused: REASON"
      } else {
        log::Warning("update of ", path, ": ", o.status());
      }
    }
    refused_[path] = std::move(why);
  }
  snapshots_->Follow(path, o);
  return o;
}

// ---------------------------------------------------------------- spool watching

absl::Status Indexer::RescanAll(bool force_full, const Progress& progress) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<MailboxFile>> files = watcher_->ListAll();
  if (!files.ok()) return files.status();
  absl::StatusOr<std::vector<MailboxRecord>> known = store_->ListMailboxes();
  if (!known.ok()) return known.status();

  // Mailboxes in the spools, plus indexed ones elsewhere (an account's own path).
  std::vector<MailboxFile> todo = *files;
  std::set<std::string> listed;
  for (const MailboxFile& f : *files) listed.insert(f.path);
  for (const MailboxRecord& r : *known) {
    if (!listed.contains(r.path)) todo.push_back({r.path, r.user});
  }
  v1::ReindexProgress p;
  p.set_mailboxes_total(static_cast<uint32_t>(todo.size()));
  for (const MailboxFile& f : todo) {
    struct stat st {};
    if (::lstat(f.path.c_str(), &st) == 0) p.set_bytes_total(p.bytes_total() + st.st_size);
  }
  absl::Status first_error;
  for (const MailboxFile& f : todo) {
    p.set_current(f.path);
    absl::StatusOr<IndexOutcome> o = UpdateLocked(f.path, f.user, force_full);
    if (!o.ok() && first_error.ok()) first_error = o.status();
    if (o.ok()) p.set_bytes_done(p.bytes_done() + o->bytes_scanned);
    p.set_mailboxes_done(p.mailboxes_done() + 1);
    if (progress) progress(p);
  }
  last_rescan_unix_ms_ = absl::ToUnixMillis(absl::Now());
  return first_error;
}

absl::Status Indexer::HandleWatchEvents() {
  absl::Time start = absl::Now();
  bool rescan = false;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<SpoolWatcher::Events> ev = watcher_->Drain();
    if (!ev.ok()) return ev.status();
    rescan = ev->rescan_all;
    if (!rescan) {
      std::set<std::string> done;
      for (const MailboxFile& f : ev->changed) {
        if (!done.insert(f.path).second) continue;
        // Errors on one mailbox (a symlink, a permission problem) must not stop the others:
        // UpdateLocked logs them, the next reconcile retries.
        UpdateLocked(f.path, f.user, false).IgnoreError();
      }
      last_lag_ms_ = absl::ToInt64Milliseconds(absl::Now() - start);
    }
  }
  if (rescan) return RescanAll();
  return absl::OkStatus();
}

absl::Status Indexer::ReconcileKnown() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<MailboxRecord>> known = store_->ListMailboxes();
  if (!known.ok()) return known.status();
  // As above: logged by UpdateLocked, retried next time.
  for (const MailboxRecord& r : *known) UpdateLocked(r.path, r.user, false).IgnoreError();
  return absl::OkStatus();
}

int Indexer::RemoveDeadDotlocksLocked() {
  std::set<std::string> candidates;
  if (absl::StatusOr<std::vector<MailboxRecord>> known = store_->ListMailboxes(); known.ok()) {
    for (const MailboxRecord& m : *known) candidates.insert(m.path + ".lock");
  } else {
    log::Warning("dotlock sweep: listing the index: ", known.status());
  }
  if (absl::StatusOr<std::vector<ExpungePlanRecord>> plans = store_->OpenExpungePlans("");
      plans.ok()) {
    for (const ExpungePlanRecord& p : *plans) candidates.insert(p.mailbox_path + ".lock");
  } else {
    log::Warning("dotlock sweep: listing the open expunge plans: ", plans.status());
  }
  for (std::string& path : watcher_->ListDotlocks()) candidates.insert(std::move(path));
  int removed = 0;
  for (const std::string& path : candidates) {
    absl::StatusOr<std::optional<lock::DotlockOwner>> r = lock::RemoveDeadPoplarDotlock(path);
    if (!r.ok()) {
      log::Warning("dotlock sweep: ", r.status());
      continue;
    }
    if (!r->has_value()) continue;
    ++removed;
    const lock::DotlockOwner& o = **r;
    log::Info("removed dotlock ", path, " left by a dead poplar-indexer (pid ", o.pid, " on ",
              o.host, ", boot ", o.incarnation.boot_id, ", started at ", o.incarnation.start_ticks,
              " ticks)");
  }
  return removed;
}

// ---------------------------------------------------------------- maildrop service

void Indexer::AuthenticateAsync(const std::string& user, const std::string& password,
                                const std::string& client_address, AuthDone done) {
  auth_->AuthenticateAsync(user, password, client_address, std::move(done));
}

absl::StatusOr<std::string> Indexer::Authenticate(const std::string& user,
                                                  const std::string& password) {
  return Wait<absl::StatusOr<std::string>>(
      [&](AuthDone done) { auth_->AuthenticateAsync(user, password, "", std::move(done)); });
}

absl::StatusOr<v1::ScramLookupReply> Indexer::ScramLookup(const std::string& user) {
  return auth_->ScramLookup(user);
}

absl::StatusOr<Indexer::Opened> Indexer::OpenSession(const v1::OpenSession& request,
                                                     LeaseHooks hooks) {
  return Wait<absl::StatusOr<Opened>>(
      [&](OpenDone done) { OpenSessionAsync(request, std::move(hooks), std::move(done)); });
}

void Indexer::OpenSessionAsync(const v1::OpenSession& request, LeaseHooks hooks, OpenDone done) {
  // The credentials (inline, or on a PAM thread), then the lease and the snapshot.
  auth_->LoginAsync(request, [this, client = request.client_address(),
                              front_end = request.front_end(), hooks = std::move(hooks),
                              done = std::move(done)](absl::StatusOr<Login> login) mutable {
    if (!login.ok()) return done(login.status());
    OpenAuthenticatedAsync(*std::move(login), client, front_end, std::move(hooks), std::move(done));
  });
}

void Indexer::OpenAuthenticatedAsync(Login login, const std::string& client_address,
                                     const std::string& front_end, LeaseHooks hooks,
                                     OpenDone done) {
  LeaseInfo info;
  info.mailbox = login.mailbox;
  info.user = login.user;
  info.client_address = client_address;
  info.front_end = front_end;
  // A wait (the holder may be ending) holds no thread and no lock of ours: the continuation
  // runs on the LeaseManager's thread once the lease is granted or refused.
  leases_.AcquireAsync(
      std::move(info), std::move(hooks), absl::Milliseconds(config_.lease_wait_ms()),
      [this, login = std::move(login), done = std::move(done)](absl::StatusOr<LeaseInfo> lease) {
        if (!lease.ok()) return done(lease.status());
        done(FinishOpen(login, *lease));
      });
}

absl::StatusOr<Indexer::Opened> Indexer::FinishOpen(const Login& login, const LeaseInfo& lease) {
  const std::string& mailbox = login.mailbox;
  absl::MutexLock lock(&mu_);
  expunge_->AssertHeld();
  auto fail = [&](absl::Status s) -> absl::Status {
    leases_.Release(lease.session_id);
    return s;
  };
  // The session that deleted may have been ended (`poplarctl sessions end`) while its expunge
  // still rewrites the file: the mailbox stays in use until the rewrite is done.
  if (expunge_->Compacting(mailbox)) {
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("maildrop ", mailbox, " is in use: an expunge is rewriting it")));
  }
  // Catch-up: the index must cover the file as it is now (design §5). A missing file is an
  // empty maildrop (RFC 1939 allows it; the MDA creates the file on first delivery).
  absl::StatusOr<IndexOutcome> o = UpdateLocked(mailbox, login.user, false, /*quiet=*/true);
  if (!o.ok() && !absl::IsNotFound(o.status())) {
    if (absl::IsFailedPrecondition(o.status())) {
      // A symlink, FIFO, directory or foreign-owned file: popd answers -ERR [SYS/PERM].
      log::Warning("login ", login.user, ": ", o.status().message());
    }
    return fail(o.status());
  }
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> cached = snapshots_->Get(mailbox);
  if (!cached.ok()) return fail(cached.status());
  Opened out;
  out.lease = lease;
  if (*cached) out.snapshot = **cached;
  out.snapshot.set_session_id(lease.session_id);
  if (!login.scram_signature.empty()) {
    out.snapshot.set_scram_server_signature(login.scram_signature);
  }
  out.snapshot.set_credentials_checked(login.credentials);
  out.snapshot.set_mailbox_path(mailbox);
  sessions_.Add(lease.session_id, mailbox, *cached);
  return out;
}

absl::StatusOr<v1::CommitResult> Indexer::Commit(const std::string& session_id,
                                                 const v1::Commit& commit) {
  CommitTarget target;
  {
    absl::MutexLock lock(&mu_);
    expunge_->AssertHeld();
    const std::string* mailbox = sessions_.MailboxOf(session_id);
    if (mailbox == nullptr) return absl::FailedPreconditionError("no such session");
    if (expunge_->Compacting(*mailbox)) {
      return absl::FailedPreconditionError("an expunge of this maildrop is already running");
    }
    absl::StatusOr<CommitTarget> checked = sessions_.CheckCommit(session_id, commit);
    if (!checked.ok()) return checked.status();
    if (checked->deleted.empty()) return v1::CommitResult();  // a read-only session never writes
    if (config_.deferred_expunge()) {
      // The messages must still be in the file as the snapshot shows them (as for an immediate
      // expunge, minus the locks: hiding writes nothing to the mailbox).
      absl::StatusOr<IndexOutcome> o = UpdateLocked(checked->mailbox, "", false);
      if (!o.ok()) {
        return absl::UnavailableError(absl::StrCat("mailbox check failed: ", o.status().message()));
      }
      return expunge_->Hide(checked->mailbox, *checked->snapshot, checked->deleted);
    }
    // An interrupted expunge of this mailbox is finished first: only then do file and index
    // agree.
    if (absl::Status s = expunge_->Recover(checked->mailbox); !s.ok()) {
      return absl::UnavailableError(absl::StrCat(s.message(), "; nothing deleted"));
    }
    target = *std::move(checked);
  }
  return ExpungeNow(target);
}

absl::StatusOr<v1::CommitResult> Indexer::ExpungeNow(const CommitTarget& target) {
  const std::string& mailbox = target.mailbox;
  // The MDA locks are waited for without mu_, so other logins and deliveries go on meanwhile;
  // the lease keeps every other session off this mailbox.
  absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(mailbox, lock_options_);
  absl::MutexLock lock(&mu_);
  expunge_->AssertHeld();
  if (held.ok())
    return expunge_->Expunge(mailbox, *target.snapshot, target.deleted, *std::move(held));
  if (absl::IsFailedPrecondition(held.status())) {
    // E.g. EACCES on the spool directory: the indexer cannot create MBOX.lock, so it cannot
    // exclude dotlocking MDAs. Deleting anyway could lose a delivery: refuse, loudly.
    log::Error("expunge ", mailbox, ": cannot take the MDA locks (", held.status().message(),
               "); run poplar-indexer with write access to the spool directory (group mail) "
               "or drop LOCK_DOTLOCK from lock_methods if no MDA uses dotlocks");
    return absl::FailedPreconditionError(
        absl::StrCat("cannot lock the mailbox: ", held.status().message()));
  }
  log::Warning("expunge ", mailbox, ": nothing deleted: ", held.status().message());
  return absl::UnavailableError(absl::StrCat(held.status().message(), "; nothing deleted"));
}

void Indexer::CloseSession(const std::string& session_id) {
  {
    absl::MutexLock lock(&mu_);
    sessions_.Remove(session_id);
  }
  leases_.Release(session_id);
}

// ---------------------------------------------------------------- deferred compaction

absl::StatusOr<int> Indexer::CompactDue(bool force) {
  std::vector<std::string> due;
  {
    absl::MutexLock lock(&mu_);
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (const std::string& path : snapshots_->MailboxesWithHidden()) {
      absl::StatusOr<std::vector<HiddenMessage>> h = store_->HiddenMessages(path);
      if (!h.ok()) return h.status();
      uint64_t bytes = 0;
      int64_t oldest = now_ms;
      for (const HiddenMessage& m : *h) {
        bytes += m.bytes;
        oldest = std::min(oldest, m.hidden_unix_ms);
      }
      if (force || h->empty() || bytes >= config_.deferred_expunge_bytes() ||
          now_ms - oldest >= int64_t{1000} * config_.deferred_expunge_delay_s()) {
        due.push_back(path);
      }
    }
  }
  int compacted = 0;
  for (const std::string& path : due) {
    // The lease keeps POP sessions off the mailbox while its numbering changes; a mailbox in
    // use waits for the next round.
    LeaseInfo info;
    info.mailbox = path;
    info.front_end = "poplar-indexer deferred expunge";
    absl::StatusOr<LeaseInfo> lease = leases_.Acquire(std::move(info), [] {});
    if (!lease.ok()) continue;
    absl::StatusOr<bool> r = CompactHiddenOf(path);
    if (r.ok() && *r) ++compacted;
    if (!r.ok()) log::Warning("deferred expunge ", path, ": ", r.status());
    leases_.Release(lease->session_id);
  }
  return compacted;
}

absl::StatusOr<bool> Indexer::CompactHiddenOf(const std::string& path) {
  absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(path, lock_options_);
  absl::MutexLock lock(&mu_);
  expunge_->AssertHeld();
  if (held.ok()) return expunge_->CompactHidden(path, *std::move(held));
  // The mailbox is gone: so are its hidden messages.
  if (absl::IsNotFound(held.status())) expunge_->ForgetHidden(path);
  return held.status();
}

// ---------------------------------------------------------------- admin service

absl::StatusOr<v1::Account> Indexer::AddAccount(const v1::AddAccountRequest& req) {
  const std::string mailbox =
      req.mailbox().empty() ? DefaultMailboxFor(config_, req.user()) : req.mailbox();
  absl::MutexLock lock(&mu_);
  return admin_->AddAccount(req, mailbox);
}

absl::StatusOr<v1::Account> Indexer::SetPassword(const v1::SetPasswordRequest& req) {
  absl::MutexLock lock(&mu_);
  return admin_->SetPassword(req);
}

absl::StatusOr<v1::Account> Indexer::SetApopSecret(const v1::SetApopSecretRequest& req) {
  absl::MutexLock lock(&mu_);
  return admin_->SetApopSecret(req);
}

absl::Status Indexer::RemoveAccount(const std::string& user) {
  absl::MutexLock lock(&mu_);
  return admin_->RemoveAccount(user);
}

absl::StatusOr<v1::AccountList> Indexer::ListAccounts() {
  absl::MutexLock lock(&mu_);
  return admin_->ListAccounts();
}

absl::StatusOr<v1::MailboxList> Indexer::ListMailboxes() {
  absl::MutexLock lock(&mu_);
  return admin_->ListMailboxes();
}

absl::StatusOr<v1::MailboxDetail> Indexer::ShowMailbox(const std::string& name, uint32_t first,
                                                       uint32_t limit) {
  absl::MutexLock lock(&mu_);
  return admin_->ShowMailbox(name, first, limit);
}

absl::Status Indexer::Reindex(const std::string& name, const Progress& progress) {
  if (name.empty()) return RescanAll(/*force_full=*/true, progress);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::string> path = admin_->ResolveMailbox(name);
  if (!path.ok()) return path.status();
  std::string user;
  if (auto rec = store_->FindMailbox(*path); rec.ok() && rec->has_value()) user = (*rec)->user;
  absl::StatusOr<IndexOutcome> o = UpdateLocked(*path, user, /*force_full=*/true);
  if (!o.ok()) return o.status();
  if (o->kind == IndexOutcome::Kind::kRemoved) {
    return absl::NotFoundError(absl::StrCat("mailbox ", *path, " does not exist"));
  }
  if (progress) {
    v1::ReindexProgress p;
    p.set_mailboxes_done(1);
    p.set_mailboxes_total(1);
    p.set_bytes_done(o->bytes_scanned);
    p.set_bytes_total(o->bytes_scanned);
    p.set_current(*path);
    progress(p);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::VerifyReply> Indexer::Verify(const std::string& name) {
  absl::MutexLock lock(&mu_);
  expunge_->AssertHeld();
  return admin_->Verify(name, expunge_->compacting());
}

v1::SessionList Indexer::ListSessions() const { return SessionListOf(leases_.List()); }

absl::Status Indexer::EndSession(const std::string& session_id) {
  return leases_.Revoke(session_id);
}

absl::StatusOr<v1::IndexerStatus> Indexer::Status() {
  absl::MutexLock lock(&mu_);
  return admin_->Status(last_lag_ms_, last_rescan_unix_ms_, leases_.size());
}

}  // namespace poplar::indexer
