#include "indexer/admin_queries.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/sasl/user_name.h"

namespace poplar::indexer {
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

v1::Account ToAccount(const AccountRecord& r) {
  v1::Account a;
  a.set_user(r.user);
  a.set_mailbox(r.mailbox);
  a.set_credential_kind(std::string(CredentialKindName(r.credential_kind)));
  a.set_apop(r.apop_secret.has_value());
  a.set_created_unix(r.created_unix);
  return a;
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

v1::SessionList SessionListOf(const std::vector<LeaseInfo>& leases) {
  v1::SessionList out;
  for (const LeaseInfo& l : leases) {
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

absl::StatusOr<v1::Account> AdminQueries::AccountOf(const std::string& user) {
  absl::StatusOr<AccountRecord> r = accounts_->Get(user);
  if (!r.ok()) return r.status();
  return ToAccount(*r);
}

absl::StatusOr<v1::Account> AdminQueries::AddAccount(const v1::AddAccountRequest& req,
                                                     const std::string& mailbox) {
  absl::StatusOr<NewCredential> cred = CredentialFrom(req.password(), req.crypt_hash());
  if (!cred.ok()) return cred.status();
  if (!sasl::IsValidUserName(req.user())) {
    return absl::InvalidArgumentError(absl::StrCat("invalid user name '", req.user(), "'"));
  }
  if (absl::Status s = accounts_->Add(req.user(), *cred, mailbox); !s.ok()) return s;
  return AccountOf(req.user());
}

absl::StatusOr<v1::Account> AdminQueries::SetPassword(const v1::SetPasswordRequest& req) {
  absl::StatusOr<NewCredential> cred = CredentialFrom(req.password(), req.crypt_hash());
  if (!cred.ok()) return cred.status();
  if (absl::Status s = accounts_->SetPassword(req.user(), *cred); !s.ok()) return s;
  return AccountOf(req.user());
}

absl::StatusOr<v1::Account> AdminQueries::SetApopSecret(const v1::SetApopSecretRequest& req) {
  if (absl::Status s = accounts_->SetApopSecret(req.user(), req.secret()); !s.ok()) return s;
  return AccountOf(req.user());
}

absl::StatusOr<v1::AccountList> AdminQueries::ListAccounts() {
  absl::StatusOr<std::vector<AccountRecord>> all = accounts_->List();
  if (!all.ok()) return all.status();
  v1::AccountList out;
  for (const AccountRecord& r : *all) *out.add_accounts() = ToAccount(r);
  return out;
}

absl::StatusOr<v1::MailboxList> AdminQueries::ListMailboxes() {
  absl::StatusOr<std::vector<MailboxRecord>> all = store_->ListMailboxes();
  if (!all.ok()) return all.status();
  v1::MailboxList out;
  for (const MailboxRecord& m : *all) *out.add_mailboxes() = Summary(m, m.messages, m.octets);
  return out;
}

absl::StatusOr<std::string> AdminQueries::ResolveMailbox(const std::string& name) {
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

absl::StatusOr<MailboxRecord> AdminQueries::FindIndexed(const std::string& name) {
  absl::StatusOr<std::string> path = ResolveMailbox(name);
  if (!path.ok()) return path.status();
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(*path);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value())
    return absl::NotFoundError(absl::StrCat("mailbox ", *path, " is not indexed"));
  return **rec;
}

absl::StatusOr<v1::MailboxDetail> AdminQueries::ShowMailbox(const std::string& name, uint32_t first,
                                                            uint32_t limit) {
  absl::StatusOr<MailboxRecord> rec = FindIndexed(name);
  if (!rec.ok()) return rec.status();
  absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages(rec->id);
  if (!messages.ok()) return messages.status();
  uint64_t octets = 0;
  for (const MessageRecord& m : *messages) octets += m.octets;
  v1::MailboxDetail out;
  *out.mutable_summary() = Summary(*rec, messages->size(), octets);
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

absl::StatusOr<v1::VerifyReply> AdminQueries::Verify(const std::string& name,
                                                     const absl::flat_hash_set<std::string>& skip) {
  std::vector<MailboxRecord> targets;
  if (name.empty()) {
    absl::StatusOr<std::vector<MailboxRecord>> all = store_->ListMailboxes();
    if (!all.ok()) return all.status();
    targets = std::move(*all);
  } else {
    absl::StatusOr<MailboxRecord> rec = FindIndexed(name);
    if (!rec.ok()) return rec.status();
    targets.push_back(*std::move(rec));
  }
  std::erase_if(targets, [&skip](const MailboxRecord& r) { return skip.contains(r.path); });
  v1::VerifyReply reply;
  for (const MailboxRecord& rec : targets) {
    if (absl::Status s = VerifyOne(rec, &reply); !s.ok()) return s;
  }
  return reply;
}

absl::Status AdminQueries::VerifyOne(const MailboxRecord& rec, v1::VerifyReply* reply) {
  auto problem = [&](std::string what) {
    v1::VerifyProblem* p = reply->add_problems();
    p->set_path(rec.path);
    p->set_description(std::move(what));
  };
  reply->set_mailboxes(reply->mailboxes() + 1);
  absl::StatusOr<std::vector<MessageRecord>> indexed = store_->LoadMessages(rec.id);
  if (!indexed.ok()) return indexed.status();
  absl::StatusOr<FileScan> fresh = ScanWholeFile(rec.path, probe_, trust_);
  if (!fresh.ok()) {
    problem(std::string(fresh.status().message()));
    return absl::OkStatus();
  }
  reply->set_messages(reply->messages() + static_cast<uint32_t>(indexed->size()));
  // Only what the index covers is compared: mail delivered since then is not a problem.
  size_t n = 0;
  for (const mbox::MessageInfo& m : fresh->messages) {
    if (m.offset >= rec.resume_offset &&
        (n >= indexed->size() || (*indexed)[n].offset != m.offset)) {
      continue;
    }
    if (n >= indexed->size()) {
      problem(absl::StrCat("message at offset ", m.offset, " is missing from the index"));
      break;
    }
    const MessageRecord& x = (*indexed)[n];
    if (x.offset != m.offset || x.end_offset != m.end_offset || x.octets != m.octets ||
        !(x.content_hash == m.content_hash)) {
      problem(absl::StrCat("message ", n + 1, " (offset ", x.offset,
                           ") differs from the file (file: offset ", m.offset, ", octets ",
                           m.octets, "; index: octets ", x.octets, ")"));
      break;
    }
    ++n;
  }
  if (n < indexed->size() && reply->problems_size() == 0) {
    problem(absl::StrCat("the index has ", indexed->size(), " messages, the file ", n));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::IndexerStatus> AdminQueries::Status(int64_t index_lag_ms,
                                                       int64_t last_rescan_unix_ms,
                                                       size_t sessions) {
  absl::StatusOr<IndexStore::Totals> t = store_->GetTotals();
  if (!t.ok()) return t.status();
  v1::IndexerStatus s;
  s.set_mailboxes(static_cast<uint32_t>(t->mailboxes));
  s.set_messages(t->messages);
  s.set_bytes(t->bytes);
  s.set_index_lag_ms(index_lag_ms);
  s.set_last_rescan_unix_ms(last_rescan_unix_ms);
  s.set_sessions(static_cast<uint32_t>(sessions));
  s.set_version("poplar-indexer 0.1.0");
  return s;
}

}  // namespace poplar::indexer
