#include "indexer/indexer.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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
  o.scheme = c.uidl().scheme() == "dovecot" ? mbox::UidlScheme::kDovecot : mbox::UidlScheme::kPoplar;
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
  if (snap->data_offsets_size() > 1) snap->mutable_uidls()->push_back('\n');
  snap->mutable_uidls()->append(uidl);
  snap->mutable_content_hashes()->append(content_hash);
  snap->set_count(static_cast<uint32_t>(snap->data_offsets_size()));
  snap->set_total_octets(snap->total_octets() + octets);
  snap->mutable_file()->set_size(std::max(snap->file().size(), data_offset + length));
}

void AddToSnapshot(v1::Snapshot* snap, const MessageRecord& m) {
  AddToSnapshot(snap, m.offset, m.data_offset, m.end_offset - m.data_offset, m.header_length, m.octets,
                m.lines, m.uidl, m.content_hash.Bytes());
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

}  // namespace

absl::StatusOr<std::unique_ptr<Indexer>> Indexer::Create(const config::IndexerConfig& config) {
  absl::StatusOr<std::unique_ptr<IndexStore>> store = IndexStore::Open(config.database_path());
  if (!store.ok()) return store.status();
  std::vector<config::Spool> spools(config.spools().begin(), config.spools().end());
  absl::StatusOr<std::unique_ptr<SpoolWatcher>> watcher = SpoolWatcher::Create(std::move(spools));
  if (!watcher.ok()) return watcher.status();
  std::unique_ptr<Indexer> idx(new Indexer(config, std::move(*store), std::move(*watcher)));
  absl::MutexLock lock(&idx->mu_);
  if (absl::Status s = idx->accounts_->Init(); !s.ok()) return s;
  return idx;
}

Indexer::Indexer(config::IndexerConfig config, std::unique_ptr<IndexStore> store,
                 std::unique_ptr<SpoolWatcher> watcher)
    : config_(std::move(config)),
      store_(std::move(store)),
      watcher_(std::move(watcher)),
      probe_(HasLock(config_, config::LOCK_DOTLOCK), HasLock(config_, config::LOCK_FCNTL),
             HasLock(config_, config::LOCK_FLOCK)) {
  accounts_ = std::make_unique<AccountStore>(store_->db(), config_.scram_iterations());
  mailbox_indexer_ = std::make_unique<MailboxIndexer>(store_.get(), UidlFromConfig(config_), &probe_);
  mailbox_indexer_->set_trust_content_length(config_.trust_content_length());
}

absl::StatusOr<IndexOutcome> Indexer::UpdateLocked(const std::string& path,
                                                   const std::string& user, bool force_full) {
  absl::StatusOr<IndexOutcome> o = mailbox_indexer_->Update(path, user, force_full);
  if (o.ok() && o->kind == IndexOutcome::Kind::kUnchanged) return o;
  auto it = snapshots_.find(path);
  if (it == snapshots_.end()) return o;
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
// it is what they were shown.
std::shared_ptr<const v1::Snapshot> Indexer::SpliceSnapshot(const v1::Snapshot& old, uint64_t from,
                                                            uint64_t to,
                                                            const std::vector<MessageRecord>& added) {
  auto snap = std::make_shared<v1::Snapshot>();
  snap->set_mailbox_path(old.mailbox_path());
  *snap->mutable_file() = old.file();
  const auto& offsets = old.data_offsets();
  const int n = old.data_offsets_size();
  const int prefix = static_cast<int>(std::lower_bound(offsets.begin(), offsets.end(), from) - offsets.begin());
  const int suffix = to == UINT64_MAX ? n
                         : static_cast<int>(std::lower_bound(offsets.begin(), offsets.end(), to) - offsets.begin());
  // UIDL i starts after the i-th '\n'.
  std::vector<size_t> uidl_start(static_cast<size_t>(n) + 1, 0);
  for (int i = 0, pos = 0; i < n; ++i) {
    uidl_start[i] = static_cast<size_t>(pos);
    size_t nl = old.uidls().find('\n', static_cast<size_t>(pos));
    pos = static_cast<int>(nl == std::string::npos ? old.uidls().size() + 1 : nl + 1);
    uidl_start[i + 1] = static_cast<size_t>(pos);
  }
  auto copy_old = [&](int i) {
    const size_t u = uidl_start[i];
    AddToSnapshot(snap.get(), old.from_offsets(i), old.data_offsets(i), old.lengths(i), old.header_lengths(i),
                  old.octets(i), old.lines(i),
                  std::string_view(old.uidls()).substr(u, uidl_start[i + 1] - u - 1),
                  std::string_view(old.content_hashes()).substr(16 * static_cast<size_t>(i), 16));
  };
  snap->mutable_file()->set_size(0);
  snap->mutable_uidls()->reserve(old.uidls().size() + 32 * added.size());
  snap->mutable_content_hashes()->reserve(old.content_hashes().size() + 16 * added.size());
  for (int i = 0; i < prefix; ++i) copy_old(i);
  for (const MessageRecord& m : added) AddToSnapshot(snap.get(), m);
  for (int i = std::max(suffix, prefix); i < n; ++i) copy_old(i);
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
  for (const MessageRecord& m : *messages) AddToSnapshot(snap.get(), m);
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

absl::StatusOr<std::string> Indexer::Authenticate(const std::string& user,
                                                  const std::string& password) {
  absl::StatusOr<AccountStore::LoginLookup> lookup;
  {
    absl::MutexLock lock(&mu_);
    lookup = accounts_->LookupLogin(user);
  }
  if (!lookup.ok()) return lookup.status();
  // The slow part (PBKDF2 or crypt, by design) runs outside the lock: logins on other threads
  // and the index's own work never wait behind it.
  absl::StatusOr<AccountRecord> r = accounts_->VerifyLogin(std::move(*lookup), password);
  if (!r.ok()) return r.status();
  return r->user;
}

absl::StatusOr<v1::ScramLookupReply> Indexer::ScramLookup(const std::string& user) {
  absl::StatusOr<AccountStore::LoginLookup> lookup;
  {
    absl::MutexLock lock(&mu_);
    lookup = accounts_->LookupLogin(user);
  }
  if (!lookup.ok()) return lookup.status();
  const AccountStore::ScramChallenge c = accounts_->ScramChallengeFor(*lookup, user);
  v1::ScramLookupReply reply;
  reply.set_salt(c.salt);
  reply.set_iterations(c.iterations);
  return reply;
}

absl::StatusOr<Indexer::Opened> Indexer::OpenSession(const v1::OpenSession& request,
                                                     std::function<void()> on_revoke) {
  std::string mailbox;
  std::string user = request.user();
  std::string scram_signature;
  const bool credentials = request.has_scram() || request.has_challenge() || !request.password().empty();
  if (request.has_scram()) {
    absl::StatusOr<AccountStore::LoginLookup> lookup;
    {
      absl::MutexLock lock(&mu_);
      lookup = accounts_->LookupLogin(user);
    }
    if (!lookup.ok()) return lookup.status();
    absl::StatusOr<AccountStore::ScramLogin> login =
        accounts_->VerifyScram(std::move(*lookup), request.scram().auth_message(), request.scram().client_proof());
    if (!login.ok()) return login.status();
    user = login->account.user;
    scram_signature = std::move(login->server_signature);
  } else if (request.has_challenge()) {
    absl::StatusOr<AccountStore::LoginLookup> lookup;
    {
      absl::MutexLock lock(&mu_);
      lookup = accounts_->LookupLogin(user);
    }
    if (!lookup.ok()) return lookup.status();
    absl::StatusOr<AccountRecord> account = accounts_->VerifyChallengeDigest(
        std::move(*lookup),
        request.challenge().kind() == v1::ChallengeDigest::CRAM_MD5 ? AccountStore::DigestKind::kCramMd5
                                                                   : AccountStore::DigestKind::kApop,
        request.challenge().challenge(), request.challenge().digest());
    if (!account.ok()) return account.status();
    user = account->user;
  } else if (!request.password().empty()) {
    absl::StatusOr<std::string> canonical = Authenticate(request.user(), request.password());
    if (!canonical.ok()) return canonical.status();
    user = *canonical;
  }
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<AccountRecord> account = accounts_->Get(user);
    if (!account.ok()) {
      if (absl::IsNotFound(account.status()) || absl::IsInvalidArgument(account.status())) {
        return absl::UnauthenticatedError("no such account");
      }
      return account.status();
    }
    mailbox = account->mailbox;
  }
  LeaseInfo info;
  info.mailbox = mailbox;
  info.user = user;
  info.client_address = request.client_address();
  info.front_end = request.front_end();
  absl::StatusOr<LeaseInfo> lease = leases_.Acquire(std::move(info), std::move(on_revoke));
  if (!lease.ok()) return lease.status();

  absl::MutexLock lock(&mu_);
  auto fail = [&](absl::Status s) -> absl::Status {
    leases_.Release(lease->session_id);
    return s;
  };
  // Catch-up: the index must cover the file as it is now (design §5). A missing file is an
  // empty maildrop (RFC 1939 allows it; the MDA creates the file on first delivery).
  absl::StatusOr<IndexOutcome> o = UpdateLocked(mailbox, user, false);
  if (!o.ok() && !absl::IsNotFound(o.status())) return fail(o.status());
  absl::StatusOr<std::shared_ptr<const v1::Snapshot>> cached = CachedSnapshotLocked(mailbox);
  if (!cached.ok()) return fail(cached.status());
  Opened out;
  out.lease = *lease;
  if (*cached) out.snapshot = **cached;
  out.snapshot.set_session_id(lease->session_id);
  if (!scram_signature.empty()) out.snapshot.set_scram_server_signature(scram_signature);
  out.snapshot.set_credentials_checked(credentials);
  out.snapshot.set_mailbox_path(mailbox);
  sessions_[lease->session_id] = SessionState{mailbox, *cached};
  return out;
}

absl::StatusOr<v1::CommitResult> Indexer::Commit(const std::string& session_id,
                                                 const v1::Commit& commit) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return absl::FailedPreconditionError("no such session");
  const SessionState& state = it->second;
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
      return absl::InvalidArgumentError(
          absl::StrCat("deleted message at offset ", ref.data_offset(), " is not in the snapshot"));
    }
    if (!seen.insert(ref.data_offset()).second) {
      return absl::InvalidArgumentError(absl::StrCat("message at offset ", ref.data_offset(),
                                                     " is deleted twice"));
    }
  }
  v1::CommitResult result;
  if (commit.deleted_size() == 0) return result;  // a read-only session never writes
  // The snapshot's messages must still be what the index says the file holds now.
  absl::StatusOr<IndexOutcome> o = UpdateLocked(state.mailbox, "", false);
  if (!o.ok()) return absl::UnavailableError(absl::StrCat("mailbox check failed: ", o.status().message()));
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(state.mailbox);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return absl::AbortedError("mailbox vanished since the snapshot");
  absl::StatusOr<std::vector<MessageRecord>> now = store_->LoadMessages((*rec)->id);
  if (!now.ok()) return now.status();
  absl::flat_hash_map<uint64_t, Hash128> current;
  for (const MessageRecord& m : *now) current[m.data_offset] = m.content_hash;
  for (const v1::MessageRef& ref : commit.deleted()) {
    auto c = current.find(ref.data_offset());
    if (c == current.end() || c->second.Bytes() != ref.content_hash()) {
      return absl::AbortedError("mailbox changed since the snapshot; nothing deleted");
    }
  }
  // The identities check out. Removing the bytes is the expunge's job (design §5), which
  // lands separately; until then nothing is deleted and the front-end says so.
  return absl::UnimplementedError("expunge is not available yet; nothing was deleted");
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

absl::StatusOr<v1::Account> Indexer::AddAccount(const v1::AddAccountRequest& req) {
  absl::StatusOr<NewCredential> cred = CredentialFrom(req.password(), req.crypt_hash());
  if (!cred.ok()) return cred.status();
  if (!sasl::IsValidUserName(req.user())) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", req.user(), "'"));
  }
  std::string mailbox = req.mailbox();
  if (mailbox.empty()) {
    // The first spool that already holds a mailbox for this name, else the first spool.
    for (const config::Spool& s : config_.spools()) {
      std::string p = MailboxPathFor(s, req.user());
      struct stat st {};
      if (!p.empty() && ::lstat(p.c_str(), &st) == 0) {
        mailbox = p;
        break;
      }
    }
    if (mailbox.empty() && config_.spools_size() > 0) {
      mailbox = MailboxPathFor(config_.spools(0), req.user());
    }
  }
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
  if (!rec->has_value()) return absl::NotFoundError(absl::StrCat("mailbox ", *path, " is not indexed"));
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
    if (!rec->has_value()) return absl::NotFoundError(absl::StrCat("mailbox ", *path, " is not indexed"));
    targets.push_back(**rec);
  }
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
      if (m.offset < rec.resume_offset || (n < indexed->size() && (*indexed)[n].offset == m.offset)) {
        if (n >= indexed->size()) {
          problem(rec.path, absl::StrCat("message at offset ", m.offset, " is missing from the index"));
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

absl::Status Indexer::EndSession(const std::string& session_id) { return leases_.Revoke(session_id); }

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
