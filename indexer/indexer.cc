#include "indexer/indexer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/mbox/expunge_plan.h"
#include "common/mbox/snapshot_codec.h"
#include "common/sasl/user_name.h"
#include "common/util/strings.h"

namespace poplar::indexer {
namespace {

// An empty list means the default methods (ApplyDefaults): dotlock and fcntl.
bool HasLock(const config::IndexerConfig& c, config::LockMethod m) {
  if (c.lock_methods_size() == 0) return m != config::LOCK_FLOCK;
  return std::find(c.lock_methods().begin(), c.lock_methods().end(), m) != c.lock_methods().end();
}

mbox::UidlOptions UidlFromConfig(const config::IndexerConfig& c) {
  mbox::UidlOptions o;
  o.scheme =
      c.uidl().scheme() == "dovecot" ? mbox::UidlScheme::kDovecot : mbox::UidlScheme::kPoplar;
  o.reuse_x_uidl = c.uidl().reuse_x_uidl();
  return o;
}

// Appends one message to a snapshot's columns and keeps count, total and covered size
// current: the one place that knows the column layout of maildrop.proto's Snapshot.
void AddToSnapshot(v1::Snapshot* snap, uint64_t from_offset, uint64_t data_offset, uint64_t length,
                   uint64_t header_length, uint64_t octets, uint64_t lines, std::string_view uidl,
                   std::string_view content_hash) {
  snap->add_from_offsets(from_offset);
  snap->add_data_offsets(data_offset);
  snap->add_lengths(length);
  snap->add_header_lengths(header_length);
  snap->add_octets(octets);
  snap->add_lines(lines);
  mbox::AppendUidls(snap->mutable_uidls(), static_cast<size_t>(snap->data_offsets_size() - 1),
                    uidl);
  mbox::AppendHash(snap->mutable_content_hashes(), content_hash);
  snap->set_count(static_cast<uint32_t>(snap->data_offsets_size()));
  snap->set_total_octets(snap->total_octets() + octets);
  snap->mutable_file()->set_size(std::max(snap->file().size(), data_offset + length));
}

// Appends messages [begin, end) of `old` to `snap`, as AddToSnapshot would one by one.
void CopyToSnapshot(v1::Snapshot* snap, const v1::Snapshot& old, int begin, int end) {
  if (begin >= end) return;
  auto copy = [&](const google::protobuf::RepeatedField<uint64_t>& from,
                  google::protobuf::RepeatedField<uint64_t>* to) {
    to->Add(from.begin() + begin, from.begin() + end);
  };
  copy(old.from_offsets(), snap->mutable_from_offsets());
  copy(old.data_offsets(), snap->mutable_data_offsets());
  copy(old.lengths(), snap->mutable_lengths());
  copy(old.header_lengths(), snap->mutable_header_lengths());
  copy(old.octets(), snap->mutable_octets());
  copy(old.lines(), snap->mutable_lines());
  const size_t before = static_cast<size_t>(snap->data_offsets_size() - (end - begin));
  mbox::AppendUidls(
      snap->mutable_uidls(), before,
      mbox::UidlSlice(old.uidls(), static_cast<size_t>(begin), static_cast<size_t>(end)));
  snap->mutable_content_hashes()->append(
      mbox::HashSlice(old.content_hashes(), static_cast<size_t>(begin), static_cast<size_t>(end)));
  uint64_t octets = 0;
  for (int i = begin; i < end; ++i) octets += old.octets(i);
  snap->set_count(static_cast<uint32_t>(snap->data_offsets_size()));
  snap->set_total_octets(snap->total_octets() + octets);
  snap->mutable_file()->set_size(
      std::max(snap->file().size(), old.data_offsets(end - 1) + old.lengths(end - 1)));
}

void AddToSnapshot(v1::Snapshot* snap, const MessageRecord& m) {
  AddToSnapshot(snap, m.offset, m.data_offset, m.end_offset - m.data_offset, m.header_length,
                m.octets, m.lines, m.uidl, m.content_hash.Bytes());
}

v1::MailboxSummary Summary(const MailboxRecord& m, uint64_t messages, uint64_t octets) {
  v1::MailboxSummary s;
  s.set_path(m.path);
  s.set_user(m.user);
  s.set_messages(static_cast<uint32_t>(messages));
  s.set_octets(octets);
  s.set_file_size(m.size);
  s.set_indexed_bytes(m.resume_offset);
  s.set_indexed_unix_ms(m.indexed_unix_ms);
  s.set_anomalies(m.anomalies);
  return s;
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

// Which messages are hidden by deferred compaction: an entry matches the message at its
// offset with its content hash; an entry that matches nothing there (another program rewrote
// the file and offsets moved) hides the first not yet hidden message with its content hash.
std::vector<bool> HiddenMask(const std::vector<MessageRecord>& messages,
                             const std::vector<HiddenMessage>& hidden) {
  std::vector<bool> mask(messages.size(), false);
  if (hidden.empty()) return mask;
  absl::flat_hash_map<uint64_t, size_t> by_offset;
  for (size_t i = 0; i < messages.size(); ++i) by_offset[messages[i].data_offset] = i;
  std::vector<const HiddenMessage*> moved;
  for (const HiddenMessage& h : hidden) {
    auto it = by_offset.find(h.data_offset);
    if (it != by_offset.end() && messages[it->second].content_hash == h.content_hash) {
      mask[it->second] = true;
    } else {
      moved.push_back(&h);
    }
  }
  for (const HiddenMessage* h : moved) {
    for (size_t i = 0; i < messages.size(); ++i) {
      if (!mask[i] && messages[i].content_hash == h->content_hash) {
        mask[i] = true;
        break;
      }
    }
  }
  return mask;
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
  if (absl::Status s = idx->accounts_->Init(); !s.ok()) return s;
  if (absl::Status s = idx->expunger_->Init(); !s.ok()) return s;
  // A killed indexer's dotlocks go first: MDAs waiting on them deliver at once, and the
  // recovery below finds the mailboxes free.
  idx->RemoveDeadDotlocksLocked();
  // An expunge interrupted by a crash is finished before anything is served (design §5). A
  // plan whose mailbox is locked right now stays open and is retried at the next commit.
  if (absl::Status s = idx->RecoverLocked(""); !s.ok()) {
    std::cerr << "poplar-indexer: recovery: " << s << "\n";
  }
  absl::StatusOr<std::vector<std::string>> hidden = idx->store_->MailboxesWithHidden();
  if (!hidden.ok()) return hidden.status();
  idx->hidden_mailboxes_.insert(hidden->begin(), hidden->end());
  absl::StatusOr<int> orphans = idx->expunger_->RemoveOrphanJournals();
  if (!orphans.ok()) return orphans.status();
  if (*orphans > 0) {
    std::cerr << "poplar-indexer: recovery: removed " << *orphans
              << " expunge journal(s) of no open plan (a crash before the plan was recorded or "
                 "after it was done)\n";
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
  account_checks_ = accounts_.get();
  mailbox_indexer_ =
      std::make_unique<MailboxIndexer>(store_.get(), UidlFromConfig(config_), &probe_);
  mailbox_indexer_->set_trust_content_length(config_.trust_content_length());
  mailbox_indexer_->set_owner(&owner_);
  expunger_ = std::make_unique<Expunger>(store_.get(), JournalDirFromConfig(config_));
  lock_options_ = LockOptionsFromConfig(config_);
  if (config_.has_pam()) pam_ = std::make_unique<PamAuthenticator>(config_.pam());
}

Indexer::~Indexer() {
  // A login waiting for a lease continues on the LeaseManager's thread into FinishOpen, which
  // uses the store: those end (or finish) here, while everything is still in place.
  leases_.Shutdown();
}

absl::StatusOr<IndexOutcome> Indexer::UpdateLocked(const std::string& path, const std::string& user,
                                                   bool force_full, bool quiet) {
  // Half-rewritten by an expunge that holds the MDA locks: the expunge sets the index itself.
  if (compacting_.contains(path)) return IndexOutcome{};
  absl::StatusOr<IndexOutcome> o = mailbox_indexer_->Update(path, user, force_full);
  if (o.ok() || !absl::IsFailedPrecondition(o.status())) {
    refused_.erase(path);
  } else if (std::string why(o.status().message()); refused_[path] != why) {
    // A refused mailbox is retried at every reconcile: its line is logged once per reason.
    if (!quiet) std::cerr << "poplar-indexer: " << why << "\n";
    refused_[path] = std::move(why);
  }
  if (o.ok() && o->kind == IndexOutcome::Kind::kUnchanged) return o;
  auto it = snapshots_.find(path);
  if (it == snapshots_.end()) return o;
  if (hidden_mailboxes_.contains(path)) {
    snapshots_.erase(it);  // rebuilt, filtered, at the next login
    return o;
  }
  if (o.ok() && o->kind == IndexOutcome::Kind::kAppended && o->exact_tail) {
    if (o->added.empty() && o->replaced_to <= o->replaced_from) return o;  // nothing changed
    it->second = SpliceSnapshot(*it->second, o->replaced_from, o->replaced_to, o->added);
  } else {
    snapshots_.erase(it);  // rebuilt from SQLite at the next login
  }
  return o;
}

// The cached snapshot after an incremental update: the messages whose From_ line lies in
// [from, to) give way to `added`. Offsets are From_ line boundaries, so a message starts
// before `from` exactly when its data_offset does. Sessions holding the old snapshot keep it:
// it is what they were shown. The unchanged messages are copied column by column in bulk: the
// first login after a delivery to a 100,000-message mailbox pays a few memcpy()s, not 100,000
// appends to eight columns.
std::shared_ptr<const v1::Snapshot> Indexer::SpliceSnapshot(
    const v1::Snapshot& old, uint64_t from, uint64_t to, const std::vector<MessageRecord>& added) {
  auto snap = std::make_shared<v1::Snapshot>();
  snap->set_mailbox_path(old.mailbox_path());
  *snap->mutable_file() = old.file();
  snap->mutable_file()->set_size(0);
  const auto& offsets = old.data_offsets();
  const int n = old.data_offsets_size();
  const int prefix =
      static_cast<int>(std::lower_bound(offsets.begin(), offsets.end(), from) - offsets.begin());
  const int suffix = to == UINT64_MAX
                         ? n
                         : static_cast<int>(std::lower_bound(offsets.begin(), offsets.end(), to) -
                                            offsets.begin());
  const int tail = std::max(suffix, prefix);
  snap->mutable_uidls()->reserve(old.uidls().size() + 32 * added.size());
  snap->mutable_content_hashes()->reserve(old.content_hashes().size() + 16 * added.size());
  CopyToSnapshot(snap.get(), old, 0, prefix);
  for (const MessageRecord& m : added) AddToSnapshot(snap.get(), m);
  CopyToSnapshot(snap.get(), old, tail, n);
  return snap;
}

absl::StatusOr<std::shared_ptr<const v1::Snapshot>> Indexer::CachedSnapshotLocked(
    const std::string& path) {
  if (auto it = snapshots_.find(path); it != snapshots_.end()) return it->second;
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(path);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return std::shared_ptr<const v1::Snapshot>();
  absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages((*rec)->id);
  if (!messages.ok()) return messages.status();
  auto snap = std::make_shared<v1::Snapshot>();
  snap->set_mailbox_path(path);
  v1::FileIdentity* file = snap->mutable_file();
  file->set_device((*rec)->device);
  file->set_inode((*rec)->inode);
  const size_t n = messages->size();
  snap->mutable_data_offsets()->Reserve(static_cast<int>(n));
  snap->mutable_lengths()->Reserve(static_cast<int>(n));
  snap->mutable_header_lengths()->Reserve(static_cast<int>(n));
  snap->mutable_octets()->Reserve(static_cast<int>(n));
  snap->mutable_lines()->Reserve(static_cast<int>(n));
  snap->mutable_uidls()->reserve(25 * n);
  snap->mutable_content_hashes()->reserve(16 * n);
  std::vector<HiddenMessage> hidden;
  if (hidden_mailboxes_.contains(path)) {
    absl::StatusOr<std::vector<HiddenMessage>> h = store_->HiddenMessages(path);
    if (!h.ok()) return h.status();
    hidden = std::move(*h);
  }
  const std::vector<bool> mask = HiddenMask(*messages, hidden);
  for (size_t i = 0; i < n; ++i) {
    if (!mask[i]) AddToSnapshot(snap.get(), (*messages)[i]);
  }
  std::shared_ptr<const v1::Snapshot> shared = std::move(snap);
  snapshots_[path] = shared;
  return shared;
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
        // Errors on one mailbox (a symlink, a permission problem) must not stop the others;
        // the next reconcile retries.
        (void)UpdateLocked(f.path, f.user, false);
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
  for (const MailboxRecord& r : *known) (void)UpdateLocked(r.path, r.user, false);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- maildrop service

bool Indexer::UsesPam(const std::string& user, const std::string& password,
                      AccountStore::LoginLookup* lookup) {
  // An invalid name never reaches PAM (or getpwnam): the store refuses it like a wrong password.
  if (!pam_ || password.empty() || !sasl::IsValidUserName(user)) return false;
  absl::StatusOr<AccountStore::LoginLookup> l;
  {
    absl::MutexLock lock(&mu_);
    l = accounts_->LookupLogin(user);
  }
  if (!l.ok() || l->found.has_value() || !l->read_status.ok()) return false;
  *lookup = std::move(*l);
  return true;
}

void Indexer::AuthenticateAsync(const std::string& user, const std::string& password,
                                const std::string& client_address, AuthDone done) {
  AccountStore::LoginLookup lookup;
  if (UsesPam(user, password, &lookup)) {
    // The store's check of an unknown name (a dummy verifier) is made all the same, so a PAM
    // login never costs less than a wrong store password.
    (void)account_checks_->VerifyLogin(std::move(lookup), password);
    pam_->Authenticate(user, password, client_address,
                       [user, done = std::move(done)](absl::Status s) {
                         if (s.ok()) return done(user);
                         done(s);
                       });
    return;
  }
  done(StoreAuthenticate(user, password));
}

absl::StatusOr<std::string> Indexer::StoreAuthenticate(const std::string& user,
                                                       const std::string& password) {
  absl::StatusOr<AccountStore::LoginLookup> lookup;
  {
    absl::MutexLock lock(&mu_);
    lookup = accounts_->LookupLogin(user);
  }
  if (!lookup.ok()) return lookup.status();
  // The slow part (PBKDF2 or crypt, by design) runs outside the lock: logins on other threads
  // and the index's own work never wait behind it.
  absl::StatusOr<AccountRecord> r = account_checks_->VerifyLogin(std::move(*lookup), password);
  if (!r.ok()) return r.status();
  return r->user;
}

absl::StatusOr<std::string> Indexer::Authenticate(const std::string& user,
                                                  const std::string& password) {
  struct Result {
    absl::Notification ready;
    absl::StatusOr<std::string> user;
  };
  auto result = std::make_shared<Result>();
  AuthenticateAsync(user, password, "", [result](absl::StatusOr<std::string> u) {
    result->user = std::move(u);
    result->ready.Notify();
  });
  result->ready.WaitForNotification();
  return result->user;
}

absl::StatusOr<v1::ScramLookupReply> Indexer::ScramLookup(const std::string& user) {
  absl::StatusOr<AccountStore::LoginLookup> lookup;
  {
    absl::MutexLock lock(&mu_);
    lookup = accounts_->LookupLogin(user);
  }
  if (!lookup.ok()) return lookup.status();
  const AccountStore::ScramChallenge c = account_checks_->ScramChallengeFor(*lookup, user);
  v1::ScramLookupReply reply;
  reply.set_salt(c.salt);
  reply.set_iterations(c.iterations);
  return reply;
}

absl::StatusOr<Indexer::Opened> Indexer::OpenSession(const v1::OpenSession& request,
                                                     LeaseHooks hooks) {
  struct Result {
    absl::Notification ready;
    absl::StatusOr<Opened> opened;
  };
  auto result = std::make_shared<Result>();
  OpenSessionAsync(request, std::move(hooks), [result](absl::StatusOr<Opened> o) {
    result->opened = std::move(o);
    result->ready.Notify();
  });
  result->ready.WaitForNotification();
  return std::move(result->opened);
}

void Indexer::OpenSessionAsync(const v1::OpenSession& request, LeaseHooks hooks, OpenDone done) {
  AccountStore::LoginLookup lookup;
  if (request.has_scram() || request.has_challenge() ||
      !UsesPam(request.user(), request.password(), &lookup)) {
    absl::StatusOr<Login> login = StoreLogin(request);
    if (!login.ok()) return done(login.status());
    return OpenAuthenticatedAsync(*std::move(login), request, std::move(hooks), std::move(done));
  }
  // A system account: PAM on its own threads; the rest of the open continues there.
  (void)account_checks_->VerifyLogin(std::move(lookup), request.password());  // as for a store miss
  v1::OpenSession open;  // what the continuation needs, without the password
  open.set_user(request.user());
  open.set_client_address(request.client_address());
  open.set_front_end(request.front_end());
  pam_->Authenticate(request.user(), request.password(), request.client_address(),
                     [this, open = std::move(open), hooks = std::move(hooks),
                      done = std::move(done)](absl::Status s) mutable {
                       if (!s.ok()) return done(s);
                       bool in_store = false;
                       {
                         absl::MutexLock lock(&mu_);
                         in_store = accounts_->Get(open.user()).ok();
                       }
                       // Added to the store while PAM was asked: its own credential was not
                       // checked. (`done` runs without mu_: it reaches the gRPC reactor.)
                       if (in_store)
                         return done(absl::UnauthenticatedError("authentication failed"));
                       Login login{open.user(), DefaultMailboxFor(open.user()),
                                   /*credentials=*/true, ""};
                       OpenAuthenticatedAsync(std::move(login), open, std::move(hooks),
                                              std::move(done));
                     });
}

bool CarriesCredentials(const v1::OpenSession& open) {
  return open.has_scram() || open.has_challenge() || !open.password().empty();
}

absl::StatusOr<Indexer::Login> Indexer::StoreLogin(const v1::OpenSession& request) {
  Login login;
  login.user = request.user();
  login.credentials = CarriesCredentials(request);
  if (request.has_scram()) {
    absl::StatusOr<AccountStore::LoginLookup> lookup;
    {
      absl::MutexLock lock(&mu_);
      lookup = accounts_->LookupLogin(login.user);
    }
    if (!lookup.ok()) return lookup.status();
    absl::StatusOr<AccountStore::ScramLogin> scram = account_checks_->VerifyScram(
        std::move(*lookup), request.scram().auth_message(), request.scram().client_proof());
    if (!scram.ok()) return scram.status();
    login.user = scram->account.user;
    login.scram_signature = std::move(scram->server_signature);
  } else if (request.has_challenge()) {
    absl::StatusOr<AccountStore::LoginLookup> lookup;
    {
      absl::MutexLock lock(&mu_);
      lookup = accounts_->LookupLogin(login.user);
    }
    if (!lookup.ok()) return lookup.status();
    absl::StatusOr<AccountRecord> account = account_checks_->VerifyChallengeDigest(
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
  absl::MutexLock lock(&mu_);
  absl::StatusOr<AccountRecord> account = accounts_->Get(login.user);
  if (!account.ok()) {
    if (absl::IsNotFound(account.status()) || absl::IsInvalidArgument(account.status())) {
      return absl::UnauthenticatedError("no such account");
    }
    return account.status();
  }
  login.mailbox = account->mailbox;
  return login;
}

void Indexer::OpenAuthenticatedAsync(Login login, const v1::OpenSession& request, LeaseHooks hooks,
                                     OpenDone done) {
  LeaseInfo info;
  info.mailbox = login.mailbox;
  info.user = login.user;
  info.client_address = request.client_address();
  info.front_end = request.front_end();
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
  auto fail = [&](absl::Status s) -> absl::Status {
    leases_.Release(lease.session_id);
    return s;
  };
  // The session that deleted may have been ended (`poplarctl sessions end`) while its expunge
  // still rewrites the file: the mailbox stays in use until the rewrite is done.
  if (compacting_.contains(mailbox)) {
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("maildrop ", mailbox, " is in use: an expunge is rewriting it")));
  }
  // Catch-up: the index must cover the file as it is now (design §5). A missing file is an
  // empty maildrop (RFC 1939 allows it; the MDA creates the file on first delivery).
  absl::StatusOr<IndexOutcome> o = UpdateLocked(mailbox, login.user, false, /*quiet=*/true);
  if (!o.ok() && !absl::IsNotFound(o.status())) {
    if (absl::IsFailedPrecondition(o.status())) {
      // A symlink, FIFO, directory or foreign-owned file: popd answers -ERR [SYS/PERM].
      std::cerr << "poplar-indexer: login " << login.user << ": " << o.status().message() << "\n";
    }
    return fail(o.status());
  }
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> cached = CachedSnapshotLocked(mailbox);
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
  sessions_[lease.session_id] = SessionState{mailbox, *cached};
  return out;
}

absl::StatusOr<v1::CommitResult> Indexer::Commit(const std::string& session_id,
                                                 const v1::Commit& commit) {
  std::string mailbox;
  std::shared_ptr<const v1::Snapshot> snap;
  std::vector<size_t> deleted;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return absl::FailedPreconditionError("no such session");
    const SessionState& state = it->second;
    if (compacting_.contains(state.mailbox)) {
      return absl::FailedPreconditionError("an expunge of this maildrop is already running");
    }
    std::set<uint64_t> seen;
    for (const v1::MessageRef& ref : commit.deleted()) {
      // Snapshot offsets are in file order: binary search, then compare the content hash.
      bool found = false;
      if (state.snapshot) {
        const auto& offsets = state.snapshot->data_offsets();
        auto pos = std::lower_bound(offsets.begin(), offsets.end(), ref.data_offset());
        if (pos != offsets.end() && *pos == ref.data_offset()) {
          size_t i = static_cast<size_t>(pos - offsets.begin());
          found = state.snapshot->content_hashes().compare(16 * i, 16, ref.content_hash()) == 0 &&
                  ref.content_hash().size() == 16;
        }
      }
      if (!found) {
        return absl::InvalidArgumentError(absl::StrCat(
            "deleted message at offset ", ref.data_offset(), " is not in the snapshot"));
      }
      if (!seen.insert(ref.data_offset()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("message at offset ", ref.data_offset(), " is deleted twice"));
      }
    }
    if (commit.deleted_size() == 0) return v1::CommitResult();  // a read-only session never writes
    deleted.reserve(seen.size());
    {
      const auto& offsets = state.snapshot->data_offsets();
      for (uint64_t off : seen) {  // std::set: ascending
        deleted.push_back(static_cast<size_t>(
            std::lower_bound(offsets.begin(), offsets.end(), off) - offsets.begin()));
      }
    }
    mailbox = state.mailbox;
    snap = state.snapshot;
    if (config_.deferred_expunge()) return HideLocked(mailbox, *snap, deleted);
    // An interrupted expunge of this mailbox is finished first: only then do file and index
    // agree.
    if (absl::Status s = RecoverLocked(mailbox); !s.ok()) {
      return absl::UnavailableError(absl::StrCat(s.message(), "; nothing deleted"));
    }
  }
  // The MDA locks are waited for without mu_, so other logins and deliveries go on meanwhile;
  // the lease keeps every other session off this mailbox.
  absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(mailbox, lock_options_);
  absl::MutexLock lock(&mu_);
  if (!held.ok()) {
    if (absl::IsFailedPrecondition(held.status())) {
      // E.g. EACCES on the spool directory: the indexer cannot create MBOX.lock, so it cannot
      // exclude dotlocking MDAs. Deleting anyway could lose a delivery: refuse, loudly.
      std::cerr << "poplar-indexer: expunge " << mailbox << ": cannot take the MDA locks ("
                << held.status().message()
                << "); run poplar-indexer with write access to the spool directory (group mail) "
                   "or drop LOCK_DOTLOCK from lock_methods if no MDA uses dotlocks\n";
      return absl::FailedPreconditionError(
          absl::StrCat("cannot lock the mailbox: ", held.status().message()));
    }
    std::cerr << "poplar-indexer: expunge " << mailbox
              << ": nothing deleted: " << held.status().message() << "\n";
    return absl::UnavailableError(absl::StrCat(held.status().message(), "; nothing deleted"));
  }
  return ExpungeLocked(mailbox, *snap, std::move(deleted), std::move(*held));
}

absl::Status Indexer::RecoverLocked(const std::string& mailbox) {
  absl::StatusOr<std::vector<ExpungePlanRecord>> plans = store_->OpenExpungePlans(mailbox);
  if (!plans.ok()) return plans.status();
  absl::Status result;
  for (const ExpungePlanRecord& p : *plans) {
    absl::StatusOr<Expunger::RecoveryReport> r = expunger_->Recover(p, lock_options_);
    if (!r.ok()) {
      std::cerr << "poplar-indexer: recovery of expunge plan " << p.id << " for " << p.mailbox_path
                << " failed: " << r.status() << "\n";
      if (result.ok()) result = absl::UnavailableError(std::string(r.status().message()));
      continue;
    }
    std::cerr << "poplar-indexer: recovery: " << r->detail << "\n";
    if (r->outcome == Expunger::Recovery::kBusy) {
      if (result.ok()) result = absl::UnavailableError(r->detail);
      continue;
    }
    // The file changed under the index: re-index it fully (UIDLs carried by content hash).
    snapshots_.erase(p.mailbox_path);
    absl::StatusOr<IndexOutcome> o = UpdateLocked(p.mailbox_path, "", /*force_full=*/true);
    if (!o.ok())
      std::cerr << "poplar-indexer: re-index of " << p.mailbox_path << ": " << o.status() << "\n";
  }
  return result;
}

int Indexer::RemoveDeadDotlocksLocked() {
  std::set<std::string> candidates;
  if (absl::StatusOr<std::vector<MailboxRecord>> known = store_->ListMailboxes(); known.ok()) {
    for (const MailboxRecord& m : *known) candidates.insert(m.path + ".lock");
  } else {
    std::cerr << "poplar-indexer: dotlock sweep: listing the index: " << known.status() << "\n";
  }
  if (absl::StatusOr<std::vector<ExpungePlanRecord>> plans = store_->OpenExpungePlans("");
      plans.ok()) {
    for (const ExpungePlanRecord& p : *plans) candidates.insert(p.mailbox_path + ".lock");
  }
  for (std::string& path : watcher_->ListDotlocks()) candidates.insert(std::move(path));
  int removed = 0;
  for (const std::string& path : candidates) {
    absl::StatusOr<std::optional<lock::DotlockOwner>> r = lock::RemoveDeadPoplarDotlock(path);
    if (!r.ok()) {
      std::cerr << "poplar-indexer: dotlock sweep: " << r.status() << "\n";
      continue;
    }
    if (!r->has_value()) continue;
    ++removed;
    const lock::DotlockOwner& o = **r;
    std::cerr << "poplar-indexer: removed dotlock " << path
              << " left by a dead poplar-indexer (pid " << o.pid << " on " << o.host << ", boot "
              << o.incarnation.boot_id << ", started at " << o.incarnation.start_ticks
              << " ticks)\n";
  }
  return removed;
}

absl::StatusOr<v1::CommitResult> Indexer::HideLocked(const std::string& mailbox,
                                                     const v1::Snapshot& snap,
                                                     const std::vector<size_t>& deleted) {
  // The messages must still be in the file as the snapshot shows them (as for an immediate
  // expunge, minus the locks: hiding writes nothing to the mailbox).
  absl::StatusOr<IndexOutcome> o = UpdateLocked(mailbox, "", false);
  if (!o.ok())
    return absl::UnavailableError(absl::StrCat("mailbox check failed: ", o.status().message()));
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(mailbox);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value())
    return absl::UnavailableError("mailbox vanished since the snapshot; nothing deleted");
  if ((*rec)->device != snap.file().device() || (*rec)->inode != snap.file().inode()) {
    return absl::UnavailableError("the mailbox was replaced since the snapshot; nothing deleted");
  }
  std::vector<HiddenMessage> hide;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  // Fast path: the cached snapshot is the index in columns (UpdateLocked just spliced it), so
  // QUIT on a 100,000-message mailbox needs no 100,000-row read from SQLite. Only while no
  // message is hidden yet: a filtered snapshot no longer tells where each message ends.
  std::shared_ptr<const v1::Snapshot> current;
  if (!hidden_mailboxes_.contains(mailbox)) {
    absl::StatusOr<std::shared_ptr<const v1::Snapshot>> cached = CachedSnapshotLocked(mailbox);
    if (cached.ok() && *cached && (*cached)->file().device() == (*rec)->device &&
        (*cached)->file().inode() == (*rec)->inode) {
      current = *cached;
    }
  }
  if (current) {
    const auto& offsets = current->data_offsets();
    for (size_t d : deleted) {
      const uint64_t off = snap.data_offsets(static_cast<int>(d));
      auto pos = std::lower_bound(offsets.begin(), offsets.end(), off);
      const size_t i = static_cast<size_t>(pos - offsets.begin());
      HiddenMessage h;
      if (pos == offsets.end() || *pos != off ||
          snap.content_hashes().compare(16 * d, 16, current->content_hashes(), 16 * i, 16) != 0 ||
          !Hash128::FromBytes(std::string_view(current->content_hashes()).substr(16 * i, 16),
                              &h.content_hash)) {
        return absl::UnavailableError("mailbox changed since the snapshot; nothing deleted");
      }
      const int ii = static_cast<int>(i);
      const uint64_t end =
          ii + 1 < current->from_offsets_size() ? current->from_offsets(ii + 1) : (*rec)->size;
      h.data_offset = off;
      h.bytes = end - current->from_offsets(ii);
      h.hidden_unix_ms = now_ms;
      hide.push_back(h);
    }
  } else {
    absl::StatusOr<std::vector<MessageRecord>> now = store_->LoadMessages((*rec)->id);
    if (!now.ok()) return now.status();
    absl::flat_hash_map<uint64_t, size_t> at;
    for (size_t i = 0; i < now->size(); ++i) at[(*now)[i].data_offset] = i;
    for (size_t d : deleted) {
      const int si = static_cast<int>(d);
      auto it = at.find(snap.data_offsets(si));
      if (it == at.end() ||
          snap.content_hashes().compare(16 * d, 16, (*now)[it->second].content_hash.Bytes()) != 0) {
        return absl::UnavailableError("mailbox changed since the snapshot; nothing deleted");
      }
      const size_t i = it->second;
      const MessageRecord& m = (*now)[i];
      const uint64_t end = i + 1 < now->size() ? (*now)[i + 1].offset : (*rec)->size;
      hide.push_back(HiddenMessage{m.data_offset, m.content_hash, end - m.offset, now_ms});
    }
  }
  if (absl::Status s = store_->HideMessages(mailbox, hide); !s.ok()) return s;
  hidden_mailboxes_.insert(mailbox);
  snapshots_.erase(mailbox);
  std::cerr << "poplar-indexer: expunge " << mailbox << ": hid " << hide.size()
            << " message(s) for deferred compaction\n";
  v1::CommitResult result;
  result.set_deleted(static_cast<uint32_t>(hide.size()));
  return result;  // bytes_removed: 0, nothing is removed yet
}

absl::StatusOr<int> Indexer::CompactDue(bool force) {
  std::vector<std::string> due;
  {
    absl::MutexLock lock(&mu_);
    const int64_t now_ms = absl::ToUnixMillis(absl::Now());
    for (const std::string& path : hidden_mailboxes_) {
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
    absl::StatusOr<lock::MailboxLock> held = lock::MailboxLock::Acquire(path, lock_options_);
    {
      absl::MutexLock lock(&mu_);
      if (!held.ok()) {
        std::cerr << "poplar-indexer: deferred expunge " << path << ": " << held.status() << "\n";
        if (absl::IsNotFound(held.status())) {
          (void)store_->ClearHidden(path);
          hidden_mailboxes_.erase(path);
        }
      } else {
        absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(path);
        absl::StatusOr<std::vector<HiddenMessage>> hidden = store_->HiddenMessages(path);
        if (rec.ok() && rec->has_value() && hidden.ok()) {
          absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages((*rec)->id);
          if (messages.ok()) {
            // What the index holds now, unfiltered: ExpungeLocked re-verifies it under the locks.
            v1::Snapshot snap;
            snap.mutable_file()->set_device((*rec)->device);
            snap.mutable_file()->set_inode((*rec)->inode);
            for (const MessageRecord& m : *messages) AddToSnapshot(&snap, m);
            const std::vector<bool> mask = HiddenMask(*messages, *hidden);
            std::vector<size_t> deleted;
            for (size_t i = 0; i < mask.size(); ++i) {
              if (mask[i]) deleted.push_back(i);
            }
            bool done = deleted.empty();
            if (!deleted.empty()) {
              absl::StatusOr<v1::CommitResult> r =
                  ExpungeLocked(path, snap, std::move(deleted), std::move(*held));
              done = r.ok();
              if (r.ok()) ++compacted;
            }
            if (done) {
              (void)store_->ClearHidden(path);
              hidden_mailboxes_.erase(path);
              snapshots_.erase(path);
            }
          }
        }
      }
    }
    leases_.Release(lease->session_id);
  }
  return compacted;
}

absl::StatusOr<v1::CommitResult> Indexer::ExpungeLocked(const std::string& mailbox,
                                                        const v1::Snapshot& snap,
                                                        std::vector<size_t> deleted,
                                                        lock::MailboxLock held_lock) {
  const absl::Time t0 = absl::Now();
  auto refuse = [&](std::string_view why) {
    std::cerr << "poplar-indexer: expunge " << mailbox << ": nothing deleted: " << why << "\n";
    return absl::UnavailableError(absl::StrCat(Absl(why), "; nothing deleted"));
  };
  lock::MailboxLock* held = &held_lock;
  const int fd = held->fd();
  struct stat st {};
  if (::fstat(fd, &st) != 0) return refuse("fstat failed");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (st.st_dev != snap.file().device() || st.st_ino != snap.file().inode()) {
    return refuse("the mailbox was replaced since the snapshot");
  }
  if (size < snap.file().size()) return refuse("the mailbox shrank since the snapshot");

  // Under the locks no MDA writes: bring the index up to the file as it is now.
  HeldLocksProbe held_probe;
  MailboxIndexer under_lock(store_.get(), UidlFromConfig(config_), &held_probe);
  under_lock.set_trust_content_length(config_.trust_content_length());
  under_lock.set_owner(&owner_);
  snapshots_.erase(mailbox);
  absl::StatusOr<IndexOutcome> o = under_lock.Update(mailbox, "", false);
  if (!o.ok() && absl::IsFailedPrecondition(o.status())) {  // refused: symlink, owner, ...
    std::cerr << "poplar-indexer: expunge: nothing deleted: " << o.status().message() << "\n";
    return o.status();
  }
  if (!o.ok()) return refuse(absl::StrCat("re-index failed: ", o.status().message()));
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(mailbox);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return refuse("the mailbox is not indexed");
  MailboxRecord mb = **rec;
  if (mb.device != st.st_dev || mb.inode != st.st_ino || mb.size != size) {
    return refuse("the mailbox changed while it was locked");
  }
  // The file about to be rewritten is the one just checked (same inode); its owner once more,
  // from the locked descriptor itself.
  if (absl::Status s = owner_.Check(st.st_uid, mb.user); !s.ok()) {
    absl::Status refused = RefusedMailbox(mailbox, Std(s.message()));
    std::cerr << "poplar-indexer: expunge: nothing deleted: " << refused.message() << "\n";
    return refused;
  }
  absl::StatusOr<std::vector<MessageRecord>> now = store_->LoadMessages(mb.id);
  if (!now.ok()) return now.status();
  // Every message of the snapshot must still be where and what it was: the snapshot is a
  // prefix of the file's messages now (anything else is not a pure append).
  if (now->size() < static_cast<size_t>(snap.data_offsets_size())) {
    return refuse("messages of the snapshot are gone");
  }
  for (int i = 0; i < snap.data_offsets_size(); ++i) {
    const MessageRecord& m = (*now)[static_cast<size_t>(i)];
    if (m.data_offset != snap.data_offsets(i) ||
        snap.content_hashes().compare(16 * static_cast<size_t>(i), 16, m.content_hash.Bytes()) !=
            0) {
      return refuse(absl::StrCat("message ", i + 1, " of the snapshot changed"));
    }
  }
  // The region about to be rewritten is read again from the file, not trusted from the index.
  const uint64_t first = (*now)[deleted.front()].offset;
  absl::StatusOr<std::vector<mbox::MessageInfo>> fresh =
      ScanRegion(fd, mailbox, first, size, config_.trust_content_length());
  if (!fresh.ok()) return refuse(absl::StrCat("re-read failed: ", fresh.status().message()));
  const size_t from = deleted.front();
  if (fresh->size() != now->size() - from) return refuse("the file does not match its index");
  for (size_t i = 0; i < fresh->size(); ++i) {
    const MessageRecord& m = (*now)[from + i];
    const mbox::MessageInfo& f = (*fresh)[i];
    if (f.offset != m.offset || f.data_offset != m.data_offset || f.end_offset != m.end_offset ||
        !(f.content_hash == m.content_hash)) {
      return refuse("the file does not match its index");
    }
  }
  std::vector<uint64_t> offsets;
  offsets.reserve(now->size());
  for (const MessageRecord& m : *now) offsets.push_back(m.offset);
  absl::StatusOr<mbox::CompactionPlan> plan = mbox::PlanCompaction(offsets, size, deleted);
  if (!plan.ok()) return refuse(Std(plan.status().message()));

  const absl::Time t_verified = absl::Now();
  // The journal and the rewrite (seconds for a big mailbox) run without mu_: logins to other
  // mailboxes, deliveries and admin calls go on. This mailbox is fenced off meanwhile: the MDA
  // locks keep writers out, the lease and compacting_ keep sessions out, and UpdateLocked
  // leaves its index alone. Compact takes mu_ itself only to record the plan.
  Expunger* expunger = expunger_.get();
  compacting_.insert(mailbox);
  mu_.Unlock();
  absl::StatusOr<int64_t> plan_id = expunger->Compact(mailbox, held_lock, *plan, &mu_);
  mu_.Lock();
  compacting_.erase(mailbox);
  const absl::Time t_compacted = absl::Now();
  if (!plan_id.ok()) {
    held->Release();
    // If the plan was recorded, the file may be part-way: finish it now if possible.
    absl::Status r = RecoverLocked(mailbox);
    std::cerr << "poplar-indexer: expunge " << mailbox << " failed: " << plan_id.status()
              << (r.ok() ? "" : absl::StrCat("; recovery pending: ", r.message())) << "\n";
    return absl::UnavailableError(absl::StrCat("expunge failed: ", plan_id.status().message()));
  }

  // The index follows in the same step: kept messages after `start` move by their segment's
  // shift and keep their UIDLs; the mailbox row gets the new size, mtime and resume point.
  std::vector<MessageRecord> moved;
  uint64_t resume = plan->start;
  for (const MessageRecord& m : *now) {
    if (m.offset < plan->start) {
      resume = m.offset;
      continue;
    }
    std::optional<uint64_t> to = mbox::MapOffset(*plan, m.offset);
    if (!to) continue;  // deleted
    MessageRecord n = m;
    const uint64_t shift = m.offset - *to;
    n.offset -= shift;
    n.data_offset -= shift;
    n.end_offset -= shift;
    resume = n.offset;
    moved.push_back(std::move(n));
  }
  if (std::optional<uint64_t> r = mbox::MapOffset(*plan, mb.resume_offset); r && *r >= resume) {
    resume = *r;  // the old resume point survived (the end of the file, or a kept message)
  }
  // else: it was a deleted message's From_ line: resume at the last message kept (re-scanned
  // as tentative next time, as the scanner would have left it).
  if (::fstat(fd, &st) != 0) return refuse("fstat failed");
  absl::StatusOr<Hash128> tail = TailHash(fd, resume, mailbox);
  if (!tail.ok()) return tail.status();
  mb.size = static_cast<uint64_t>(st.st_size);
  mb.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  mb.resume_offset = resume;
  mb.tail_hash = *tail;
  mb.final_scan = true;
  mb.indexed_unix_ms = absl::ToUnixMillis(absl::Now());
  if (absl::Status s = store_->SaveScan(&mb, plan->start, moved); !s.ok()) {
    // The file is final but the index is not: the plan stays open, so the next commit on this
    // mailbox (or the next start-up) closes it and re-indexes the mailbox fully. The client
    // hears [SYS/TEMP]; its messages are gone all the same, which RFC 1939 §6 allows.
    std::cerr << "poplar-indexer: expunge " << mailbox << ": index update failed: " << s << "\n";
    return absl::UnavailableError("index update failed after the expunge");
  }
  snapshots_.erase(mailbox);
  held->Release();
  absl::StatusOr<std::vector<ExpungePlanRecord>> open = store_->OpenExpungePlans(mailbox);
  if (open.ok()) {
    for (const ExpungePlanRecord& p : *open) {
      if (p.id == *plan_id) {
        if (absl::Status s = expunger_->Finish(p.id, p.journal_path); !s.ok()) {
          std::cerr << "poplar-indexer: expunge " << mailbox << ": closing plan " << p.id << ": "
                    << s << "\n";
        }
      }
    }
  }
  v1::CommitResult result;
  result.set_deleted(static_cast<uint32_t>(plan->deleted_messages));
  result.set_bytes_removed(plan->bytes_removed());
  std::cerr << "poplar-indexer: expunge " << mailbox << ": deleted " << plan->deleted_messages
            << " message(s), " << plan->bytes_removed() << " bytes; rewrote " << plan->image_size()
            << " bytes from offset " << plan->start << "; " << moved.size()
            << " message(s) moved; size " << plan->old_size << " -> " << plan->new_size
            << "; lock attempts " << held->attempts() << "; "
            << absl::FormatDuration(absl::Now() - t0) << " (verify "
            << absl::FormatDuration(t_verified - t0) << ", journal+rewrite "
            << absl::FormatDuration(t_compacted - t_verified) << ", index "
            << absl::FormatDuration(absl::Now() - t_compacted) << ")\n";
  return result;
}

void Indexer::CloseSession(const std::string& session_id) {
  {
    absl::MutexLock lock(&mu_);
    sessions_.erase(session_id);
  }
  leases_.Release(session_id);
}

// ---------------------------------------------------------------- admin service

absl::StatusOr<v1::Account> Indexer::ToAccount(const AccountRecord& r) const {
  v1::Account a;
  a.set_user(r.user);
  a.set_mailbox(r.mailbox);
  a.set_credential_kind(std::string(CredentialKindName(r.credential_kind)));
  a.set_apop(r.apop_secret.has_value());
  a.set_created_unix(r.created_unix);
  return a;
}

namespace {
absl::StatusOr<NewCredential> CredentialFrom(const std::string& password,
                                             const std::string& crypt_hash) {
  if (!password.empty() && !crypt_hash.empty()) {
    return absl::InvalidArgumentError("give either a password or a crypt hash, not both");
  }
  if (!crypt_hash.empty()) return NewCredential(CryptHash{crypt_hash});
  if (password.empty()) return absl::InvalidArgumentError("a password or a crypt hash is required");
  return NewCredential(PlainPassword{password});
}
}  // namespace

std::string Indexer::DefaultMailboxFor(const std::string& user) const {
  // The first spool that already holds a mailbox for this name, else the first spool.
  for (const config::Spool& s : config_.spools()) {
    std::string p = MailboxPathFor(s, user);
    struct stat st {};
    if (!p.empty() && ::lstat(p.c_str(), &st) == 0) return p;
  }
  return config_.spools_size() > 0 ? MailboxPathFor(config_.spools(0), user) : std::string();
}

absl::StatusOr<v1::Account> Indexer::AddAccount(const v1::AddAccountRequest& req) {
  absl::StatusOr<NewCredential> cred = CredentialFrom(req.password(), req.crypt_hash());
  if (!cred.ok()) return cred.status();
  if (!sasl::IsValidUserName(req.user())) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", req.user(), "'"));
  }
  const std::string mailbox = req.mailbox().empty() ? DefaultMailboxFor(req.user()) : req.mailbox();
  absl::MutexLock lock(&mu_);
  if (absl::Status s = accounts_->Add(req.user(), *cred, mailbox); !s.ok()) return s;
  absl::StatusOr<AccountRecord> r = accounts_->Get(req.user());
  if (!r.ok()) return r.status();
  return ToAccount(*r);
}

absl::StatusOr<v1::Account> Indexer::SetPassword(const v1::SetPasswordRequest& req) {
  absl::StatusOr<NewCredential> cred = CredentialFrom(req.password(), req.crypt_hash());
  if (!cred.ok()) return cred.status();
  absl::MutexLock lock(&mu_);
  if (absl::Status s = accounts_->SetPassword(req.user(), *cred); !s.ok()) return s;
  absl::StatusOr<AccountRecord> r = accounts_->Get(req.user());
  if (!r.ok()) return r.status();
  return ToAccount(*r);
}

absl::StatusOr<v1::Account> Indexer::SetApopSecret(const v1::SetApopSecretRequest& req) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = accounts_->SetApopSecret(req.user(), req.secret()); !s.ok()) return s;
  absl::StatusOr<AccountRecord> r = accounts_->Get(req.user());
  if (!r.ok()) return r.status();
  return ToAccount(*r);
}

absl::Status Indexer::RemoveAccount(const std::string& user) {
  absl::MutexLock lock(&mu_);
  return accounts_->Remove(user);
}

absl::StatusOr<v1::AccountList> Indexer::ListAccounts() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<AccountRecord>> all = accounts_->List();
  if (!all.ok()) return all.status();
  v1::AccountList out;
  for (const AccountRecord& r : *all) {
    absl::StatusOr<v1::Account> a = ToAccount(r);
    if (!a.ok()) return a.status();
    *out.add_accounts() = *a;
  }
  return out;
}

absl::StatusOr<v1::MailboxList> Indexer::ListMailboxes() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<MailboxRecord>> all = store_->ListMailboxes();
  if (!all.ok()) return all.status();
  v1::MailboxList out;
  for (const MailboxRecord& m : *all) *out.add_mailboxes() = Summary(m, m.messages, m.octets);
  return out;
}

absl::StatusOr<std::string> Indexer::ResolveMailboxLocked(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("a mailbox path or user name is required");
  if (name[0] == '/') return name;
  absl::StatusOr<AccountRecord> r = accounts_->Get(name);
  if (r.ok()) return r->mailbox;
  if (!absl::IsNotFound(r.status()) && !absl::IsInvalidArgument(r.status())) return r.status();
  // Not an account: a mailbox indexed for that user name.
  absl::StatusOr<std::vector<MailboxRecord>> all = store_->ListMailboxes();
  if (!all.ok()) return all.status();
  for (const MailboxRecord& m : *all) {
    if (m.user == name) return m.path;
  }
  return absl::NotFoundError(absl::StrCat("no account or mailbox named '", name, "'"));
}

absl::StatusOr<v1::MailboxDetail> Indexer::ShowMailbox(const std::string& name, uint32_t first,
                                                       uint32_t limit) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::string> path = ResolveMailboxLocked(name);
  if (!path.ok()) return path.status();
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(*path);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value())
    return absl::NotFoundError(absl::StrCat("mailbox ", *path, " is not indexed"));
  absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages((*rec)->id);
  if (!messages.ok()) return messages.status();
  uint64_t octets = 0;
  for (const MessageRecord& m : *messages) octets += m.octets;
  v1::MailboxDetail out;
  *out.mutable_summary() = Summary(**rec, messages->size(), octets);
  if (first == 0) first = 1;
  if (limit == 0 || limit > 10000) limit = 10000;  // bounded reply
  out.set_first(first);
  for (uint64_t i = first; i <= messages->size() && i < uint64_t{first} + limit; ++i) {
    const MessageRecord& m = (*messages)[i - 1];
    v1::MessageRow* row = out.add_messages();
    row->set_number(static_cast<uint32_t>(i));
    row->set_offset(m.offset);
    row->set_octets(m.octets);
    row->set_lines(m.lines);
    row->set_uidl(m.uidl);
    row->set_sender(m.sender);
    row->set_date(m.date);
  }
  return out;
}

absl::Status Indexer::Reindex(const std::string& name, const Progress& progress) {
  if (name.empty()) return RescanAll(/*force_full=*/true, progress);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::string> path = ResolveMailboxLocked(name);
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
  std::vector<MailboxRecord> targets;
  if (name.empty()) {
    absl::StatusOr<std::vector<MailboxRecord>> all = store_->ListMailboxes();
    if (!all.ok()) return all.status();
    targets = std::move(*all);
  } else {
    absl::StatusOr<std::string> path = ResolveMailboxLocked(name);
    if (!path.ok()) return path.status();
    absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(*path);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value())
      return absl::NotFoundError(absl::StrCat("mailbox ", *path, " is not indexed"));
    targets.push_back(**rec);
  }
  // A mailbox being rewritten by an expunge is checked next time, not reported as damaged.
  std::erase_if(targets, [this](const MailboxRecord& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return compacting_.contains(r.path);
  });
  v1::VerifyReply reply;
  auto problem = [&](const std::string& path, std::string what) {
    v1::VerifyProblem* p = reply.add_problems();
    p->set_path(path);
    p->set_description(std::move(what));
  };
  for (const MailboxRecord& rec : targets) {
    reply.set_mailboxes(reply.mailboxes() + 1);
    absl::StatusOr<std::vector<MessageRecord>> indexed = store_->LoadMessages(rec.id);
    if (!indexed.ok()) return indexed.status();
    absl::StatusOr<FileScan> fresh =
        ScanWholeFile(rec.path, &probe_, mailbox_indexer_->trust_content_length());
    if (!fresh.ok()) {
      problem(rec.path, std::string(fresh.status().message()));
      continue;
    }
    reply.set_messages(reply.messages() + static_cast<uint32_t>(indexed->size()));
    // Only what the index covers is compared: mail delivered since then is not a problem.
    size_t n = 0;
    for (const mbox::MessageInfo& m : fresh->messages) {
      if (m.offset < rec.resume_offset ||
          (n < indexed->size() && (*indexed)[n].offset == m.offset)) {
        if (n >= indexed->size()) {
          problem(rec.path,
                  absl::StrCat("message at offset ", m.offset, " is missing from the index"));
          break;
        }
        const MessageRecord& x = (*indexed)[n];
        if (x.offset != m.offset || x.end_offset != m.end_offset || x.octets != m.octets ||
            !(x.content_hash == m.content_hash)) {
          problem(rec.path, absl::StrCat("message ", n + 1, " (offset ", x.offset,
                                         ") differs from the file (file: offset ", m.offset,
                                         ", octets ", m.octets, "; index: octets ", x.octets, ")"));
          break;
        }
        ++n;
      }
    }
    if (n < indexed->size() && reply.problems_size() == 0) {
      problem(rec.path, absl::StrCat("the index has ", indexed->size(), " messages, the file ", n));
    }
  }
  return reply;
}

v1::SessionList Indexer::ListSessions() const {
  v1::SessionList out;
  for (const LeaseInfo& l : leases_.List()) {
    v1::SessionInfo* s = out.add_sessions();
    s->set_session_id(l.session_id);
    s->set_user(l.user);
    s->set_mailbox(l.mailbox);
    s->set_client_address(l.client_address);
    s->set_front_end(l.front_end);
    s->set_started_unix_ms(absl::ToUnixMillis(l.started));
  }
  return out;
}

absl::Status Indexer::EndSession(const std::string& session_id) {
  return leases_.Revoke(session_id);
}

absl::StatusOr<v1::IndexerStatus> Indexer::Status() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<IndexStore::Totals> t = store_->GetTotals();
  if (!t.ok()) return t.status();
  v1::IndexerStatus s;
  s.set_mailboxes(static_cast<uint32_t>(t->mailboxes));
  s.set_messages(t->messages);
  s.set_bytes(t->bytes);
  s.set_index_lag_ms(last_lag_ms_);
  s.set_last_rescan_unix_ms(last_rescan_unix_ms_);
  s.set_sessions(static_cast<uint32_t>(leases_.size()));
  s.set_version("poplar-indexer 0.1.0");
  return s;
}

}  // namespace poplar::indexer
