#include "indexer/index_store.h"

#include "absl/strings/str_cat.h"

namespace poplar::indexer {
namespace {

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS mailboxes (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  user TEXT NOT NULL DEFAULT '',
  device INTEGER NOT NULL DEFAULT 0,
  inode INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  mtime_ns INTEGER NOT NULL DEFAULT 0,
  resume_offset INTEGER NOT NULL DEFAULT 0,
  tail_hash TEXT NOT NULL DEFAULT '',
  uid_validity INTEGER,
  indexed_unix_ms INTEGER NOT NULL DEFAULT 0,
  anomalies INTEGER NOT NULL DEFAULT 0,
  messages INTEGER NOT NULL DEFAULT 0,
  octets INTEGER NOT NULL DEFAULT 0,
  final_scan INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
  mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
  offset INTEGER NOT NULL,
  data_offset INTEGER NOT NULL,
  end_offset INTEGER NOT NULL,
  header_length INTEGER NOT NULL,
  lines INTEGER NOT NULL,
  octets INTEGER NOT NULL,
  final_newline INTEGER NOT NULL,
  uidl TEXT NOT NULL,
  uidl_digest TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  sender TEXT NOT NULL,
  date TEXT NOT NULL,
  PRIMARY KEY (mailbox_id, offset)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_uidl ON messages(mailbox_id, uidl);
)sql";

// v2: the expunge's redo plans. Rows are kept after they close (a small audit trail; one
// row per expunge) except that `journal_path` of a done plan no longer exists.
constexpr std::string_view kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS expunge_plans (
  id INTEGER PRIMARY KEY,
  mailbox_path TEXT NOT NULL,
  device INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  start_offset INTEGER NOT NULL,
  old_size INTEGER NOT NULL,
  new_size INTEGER NOT NULL,
  prefix_hash TEXT NOT NULL,
  old_tail_hash TEXT NOT NULL,
  image_hash TEXT NOT NULL,
  journal_path TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'open',
  created_unix_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS expunge_plans_open ON expunge_plans(state, mailbox_path);
CREATE TABLE IF NOT EXISTS hidden_messages (
  mailbox_path TEXT NOT NULL,
  data_offset INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  hidden_unix_ms INTEGER NOT NULL,
  PRIMARY KEY (mailbox_path, data_offset)
) WITHOUT ROWID;
)sql";

// v3: the X-UIDL cutoff (index_store.h).
constexpr std::string_view kSchemaV3 = R"sql(
ALTER TABLE mailboxes ADD COLUMN x_uidl_cutoff INTEGER;
)sql";

MailboxRecord ReadMailbox(const sql::Stmt& s) {
  MailboxRecord m;
  m.id = s.Int(0);
  m.path = s.Text(1);
  m.user = s.Text(2);
  m.device = static_cast<uint64_t>(s.Int(3));
  m.inode = static_cast<uint64_t>(s.Int(4));
  m.size = static_cast<uint64_t>(s.Int(5));
  m.mtime_ns = s.Int(6);
  m.resume_offset = static_cast<uint64_t>(s.Int(7));
  Hash128::FromHex(s.Text(8), &m.tail_hash);
  if (!s.IsNull(9)) m.uid_validity = static_cast<uint32_t>(s.Int(9));
  m.indexed_unix_ms = s.Int(10);
  m.anomalies = static_cast<uint32_t>(s.Int(11));
  m.messages = static_cast<uint64_t>(s.Int(12));
  m.octets = static_cast<uint64_t>(s.Int(13));
  m.final_scan = s.Int(14) != 0;
  m.x_uidl_cutoff = s.IsNull(15) ? m.size : static_cast<uint64_t>(s.Int(15));
  return m;
}

constexpr char kMailboxColumns[] =
    "id, path, user, device, inode, size, mtime_ns, resume_offset, tail_hash, uid_validity, "
    "indexed_unix_ms, anomalies, messages, octets, final_scan, x_uidl_cutoff";

}  // namespace

absl::StatusOr<std::unique_ptr<IndexStore>> IndexStore::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<sql::Db>> db = sql::Db::Open(path);
  if (!db.ok()) return db.status();
  std::unique_ptr<IndexStore> store(new IndexStore(std::move(*db)));
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  return store;
}

absl::Status IndexStore::Migrate() {
  absl::StatusOr<sql::Stmt> v = db_->Prepare("PRAGMA user_version");
  if (!v.ok()) return v.status();
  absl::StatusOr<bool> row = v->Step();
  if (!row.ok()) return row.status();
  int64_t version = *row ? v->Int(0) : 0;
  v->Reset();
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "index schema version ", version, " is newer than this poplar-indexer (", kSchemaVersion,
        "); upgrade poplar-indexer (the file also holds accounts: do not delete it)"));
  }
  if (version == kSchemaVersion) return absl::OkStatus();
  auto tx = sql::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  if (version < 1) {
    if (absl::Status s = db_->Exec(kSchemaV1); !s.ok()) return s;
  }
  if (version < 2) {
    if (absl::Status s = db_->Exec(kSchemaV2); !s.ok()) return s;
  }
  if (version < 3) {
    if (absl::Status s = db_->Exec(kSchemaV3); !s.ok()) return s;
  }
  if (absl::Status s = db_->Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion)); !s.ok()) {
    return s;
  }
  return (*tx)->Commit();
}

absl::StatusOr<std::optional<MailboxRecord>> IndexStore::FindMailbox(const std::string& path) {
  auto s = db_->Prepare(absl::StrCat("SELECT ", kMailboxColumns, " FROM mailboxes WHERE path=?"));
  if (!s.ok()) return s.status();
  s->Bind(1, path);
  absl::StatusOr<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<MailboxRecord>();
  return std::optional<MailboxRecord>(ReadMailbox(*s));
}

absl::StatusOr<std::vector<MailboxRecord>> IndexStore::ListMailboxes() {
  auto s = db_->Prepare(absl::StrCat("SELECT ", kMailboxColumns, " FROM mailboxes ORDER BY path"));
  if (!s.ok()) return s.status();
  std::vector<MailboxRecord> out;
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadMailbox(*s));
  }
  return out;
}

absl::StatusOr<std::vector<MessageRecord>> IndexStore::LoadMessages(int64_t mailbox_id) {
  auto s = db_->Prepare(
      "SELECT offset, data_offset, end_offset, header_length, lines, octets, final_newline, "
      "uidl, uidl_digest, content_hash, sender, date FROM messages WHERE mailbox_id=? "
      "ORDER BY offset");
  if (!s.ok()) return s.status();
  s->Bind(1, mailbox_id);
  std::vector<MessageRecord> out;
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    MessageRecord m;
    m.offset = static_cast<uint64_t>(s->Int(0));
    m.data_offset = static_cast<uint64_t>(s->Int(1));
    m.end_offset = static_cast<uint64_t>(s->Int(2));
    m.header_length = static_cast<uint64_t>(s->Int(3));
    m.lines = static_cast<uint64_t>(s->Int(4));
    m.octets = static_cast<uint64_t>(s->Int(5));
    m.final_newline = s->Int(6) != 0;
    m.uidl = s->Text(7);
    m.uidl_digest = s->Text(8);
    Hash128::FromHex(s->Text(9), &m.content_hash);
    m.sender = s->Text(10);
    m.date = s->Text(11);
    out.push_back(std::move(m));
  }
  return out;
}

absl::Status IndexStore::SaveScan(MailboxRecord* mb, uint64_t replace_from,
                                  const std::vector<MessageRecord>& messages, uint64_t replace_to) {
  // SQLite integers are signed: clamp the open upper bound.
  const int64_t to =
      replace_to > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(replace_to);
  auto tx = sql::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  auto up = db_->Prepare(
      "INSERT INTO mailboxes (path, user, device, inode, size, mtime_ns, resume_offset, "
      "tail_hash, uid_validity, indexed_unix_ms, anomalies, final_scan, x_uidl_cutoff) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(path) DO UPDATE SET user=excluded.user, device=excluded.device, "
      "inode=excluded.inode, size=excluded.size, mtime_ns=excluded.mtime_ns, "
      "resume_offset=excluded.resume_offset, tail_hash=excluded.tail_hash, "
      "uid_validity=excluded.uid_validity, indexed_unix_ms=excluded.indexed_unix_ms, "
      "anomalies=excluded.anomalies, final_scan=excluded.final_scan, "
      "x_uidl_cutoff=excluded.x_uidl_cutoff RETURNING id");
  if (!up.ok()) return up.status();
  up->Bind(1, mb->path).Bind(2, mb->user).Bind(3, static_cast<int64_t>(mb->device));
  up->Bind(4, static_cast<int64_t>(mb->inode)).Bind(5, static_cast<int64_t>(mb->size));
  up->Bind(6, mb->mtime_ns).Bind(7, static_cast<int64_t>(mb->resume_offset));
  up->Bind(8, mb->tail_hash.Hex());
  if (mb->uid_validity) {
    up->Bind(9, static_cast<int64_t>(*mb->uid_validity));
  } else {
    up->BindNull(9);
  }
  up->Bind(10, mb->indexed_unix_ms).Bind(11, static_cast<int64_t>(mb->anomalies));
  up->Bind(12, mb->final_scan ? 1 : 0);
  if (mb->x_uidl_cutoff) {
    up->Bind(13, static_cast<int64_t>(*mb->x_uidl_cutoff));
  } else {
    up->BindNull(13);
  }
  absl::StatusOr<bool> row = up->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("mailbox upsert returned no id");
  mb->id = up->Int(0);
  up->Reset();

  // What the replaced tail held (usually nothing, or one tentative message).
  auto tail = db_->Prepare(
      "SELECT COUNT(*), COALESCE(SUM(octets),0) FROM messages "
      "WHERE mailbox_id=? AND offset>=? AND offset<?");
  if (!tail.ok()) return tail.status();
  tail->Bind(1, mb->id).Bind(2, static_cast<int64_t>(replace_from)).Bind(3, to);
  absl::StatusOr<bool> tail_row = tail->Step();
  if (!tail_row.ok()) return tail_row.status();
  const uint64_t removed = static_cast<uint64_t>(tail->Int(0));
  const uint64_t removed_octets = static_cast<uint64_t>(tail->Int(1));
  tail->Reset();
  auto old_counts = db_->Prepare("SELECT messages, octets FROM mailboxes WHERE id=?");
  if (!old_counts.ok()) return old_counts.status();
  old_counts->Bind(1, mb->id);
  absl::StatusOr<bool> oc = old_counts->Step();
  if (!oc.ok()) return oc.status();
  uint64_t count = static_cast<uint64_t>(old_counts->Int(0)) - removed;
  uint64_t octets = static_cast<uint64_t>(old_counts->Int(1)) - removed_octets;
  old_counts->Reset();

  auto del = db_->Prepare("DELETE FROM messages WHERE mailbox_id=? AND offset>=? AND offset<?");
  if (!del.ok()) return del.status();
  del->Bind(1, mb->id).Bind(2, static_cast<int64_t>(replace_from)).Bind(3, to);
  if (absl::Status s = del->Run(); !s.ok()) return s;

  auto ins = db_->Prepare(
      "INSERT INTO messages (mailbox_id, offset, data_offset, end_offset, header_length, lines, "
      "octets, final_newline, uidl, uidl_digest, content_hash, sender, date) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!ins.ok()) return ins.status();
  for (const MessageRecord& m : messages) {
    ins->Bind(1, mb->id).Bind(2, static_cast<int64_t>(m.offset));
    ins->Bind(3, static_cast<int64_t>(m.data_offset)).Bind(4, static_cast<int64_t>(m.end_offset));
    ins->Bind(5, static_cast<int64_t>(m.header_length)).Bind(6, static_cast<int64_t>(m.lines));
    ins->Bind(7, static_cast<int64_t>(m.octets)).Bind(8, m.final_newline ? 1 : 0);
    ins->Bind(9, m.uidl).Bind(10, m.uidl_digest).Bind(11, m.content_hash.Hex());
    ins->Bind(12, m.sender).Bind(13, m.date);
    if (absl::Status s = ins->Run(); !s.ok()) return s;
    ++count;
    octets += m.octets;
  }
  auto counts = db_->Prepare("UPDATE mailboxes SET messages=?, octets=? WHERE id=?");
  if (!counts.ok()) return counts.status();
  counts->Bind(1, static_cast<int64_t>(count))
      .Bind(2, static_cast<int64_t>(octets))
      .Bind(3, mb->id);
  if (absl::Status s = counts->Run(); !s.ok()) return s;
  mb->messages = count;
  mb->octets = octets;
  return (*tx)->Commit();
}

absl::Status IndexStore::RemoveMailbox(int64_t mailbox_id) {
  auto s = db_->Prepare("DELETE FROM mailboxes WHERE id=?");
  if (!s.ok()) return s.status();
  s->Bind(1, mailbox_id);
  return s->Run();
}

absl::StatusOr<IndexStore::Totals> IndexStore::GetTotals() {
  Totals t;
  auto a = db_->Prepare("SELECT COUNT(*), COALESCE(SUM(size),0) FROM mailboxes");
  if (!a.ok()) return a.status();
  absl::StatusOr<bool> row = a->Step();
  if (!row.ok()) return row.status();
  t.mailboxes = static_cast<uint64_t>(a->Int(0));
  t.bytes = static_cast<uint64_t>(a->Int(1));
  auto b = db_->Prepare("SELECT COALESCE(SUM(messages),0), COALESCE(SUM(octets),0) FROM mailboxes");
  if (!b.ok()) return b.status();
  row = b->Step();
  if (!row.ok()) return row.status();
  t.messages = static_cast<uint64_t>(b->Int(0));
  t.octets = static_cast<uint64_t>(b->Int(1));
  return t;
}

absl::StatusOr<bool> IndexStore::UidlInUse(int64_t mailbox_id, const std::string& uidl,
                                           uint64_t before_offset) {
  auto s = db_->Prepare("SELECT 1 FROM messages WHERE mailbox_id=? AND uidl=? AND offset<?");
  if (!s.ok()) return s.status();
  s->Bind(1, mailbox_id).Bind(2, uidl).Bind(3, static_cast<int64_t>(before_offset));
  return s->Step();
}

absl::StatusOr<int64_t> IndexStore::InsertPlanLocked(const ExpungePlanRecord& p) {
  auto s = db_->Prepare(
      "INSERT INTO expunge_plans (mailbox_path, device, inode, start_offset, old_size, new_size, "
      "prefix_hash, old_tail_hash, image_hash, journal_path, state, created_unix_ms) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,'open',?) RETURNING id");
  if (!s.ok()) return s.status();
  s->Bind(1, p.mailbox_path).Bind(2, static_cast<int64_t>(p.device));
  s->Bind(3, static_cast<int64_t>(p.inode)).Bind(4, static_cast<int64_t>(p.start));
  s->Bind(5, static_cast<int64_t>(p.old_size)).Bind(6, static_cast<int64_t>(p.new_size));
  s->Bind(7, p.prefix_hash.Hex()).Bind(8, p.old_tail_hash.Hex()).Bind(9, p.image_hash.Hex());
  s->Bind(10, p.journal_path).Bind(11, p.created_unix_ms);
  absl::StatusOr<bool> row = s->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("plan insert returned no id");
  int64_t id = s->Int(0);
  s->Reset();
  return id;
}

absl::StatusOr<int64_t> IndexStore::AddExpungePlan(const ExpungePlanRecord& plan) {
  auto tx = sql::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<int64_t> id = InsertPlanLocked(plan);
  if (!id.ok()) return id.status();
  if (absl::Status s = (*tx)->Commit(); !s.ok()) return s;
  return id;
}

absl::Status IndexStore::SetPlanState(int64_t id, std::string_view state) {
  auto s = db_->Prepare("UPDATE expunge_plans SET state=? WHERE id=?");
  if (!s.ok()) return s.status();
  s->Bind(1, state).Bind(2, id);
  return s->Run();
}

absl::StatusOr<int64_t> IndexStore::ReplaceExpungePlan(int64_t old_id,
                                                       const ExpungePlanRecord& plan) {
  auto tx = sql::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  if (absl::Status s = SetPlanState(old_id, "superseded"); !s.ok()) return s;
  absl::StatusOr<int64_t> id = InsertPlanLocked(plan);
  if (!id.ok()) return id.status();
  if (absl::Status s = (*tx)->Commit(); !s.ok()) return s;
  return id;
}

absl::StatusOr<std::vector<ExpungePlanRecord>> IndexStore::SelectPlans(const std::string& where,
                                                                       const std::string& arg) {
  auto s = db_->Prepare(absl::StrCat(
      "SELECT id, mailbox_path, device, inode, start_offset, old_size, new_size, prefix_hash, "
      "old_tail_hash, image_hash, journal_path, state, created_unix_ms FROM expunge_plans ",
      where, " ORDER BY id"));
  if (!s.ok()) return s.status();
  if (!arg.empty()) s->Bind(1, arg);
  std::vector<ExpungePlanRecord> out;
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ExpungePlanRecord p;
    p.id = s->Int(0);
    p.mailbox_path = s->Text(1);
    p.device = static_cast<uint64_t>(s->Int(2));
    p.inode = static_cast<uint64_t>(s->Int(3));
    p.start = static_cast<uint64_t>(s->Int(4));
    p.old_size = static_cast<uint64_t>(s->Int(5));
    p.new_size = static_cast<uint64_t>(s->Int(6));
    Hash128::FromHex(s->Text(7), &p.prefix_hash);
    Hash128::FromHex(s->Text(8), &p.old_tail_hash);
    Hash128::FromHex(s->Text(9), &p.image_hash);
    p.journal_path = s->Text(10);
    p.state = s->Text(11);
    p.created_unix_ms = s->Int(12);
    out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::vector<ExpungePlanRecord>> IndexStore::OpenExpungePlans(
    const std::string& mailbox_path) {
  if (mailbox_path.empty()) return SelectPlans("WHERE state='open'", "");
  return SelectPlans("WHERE state='open' AND mailbox_path=?", mailbox_path);
}

absl::Status IndexStore::HideMessages(const std::string& path,
                                      const std::vector<HiddenMessage>& hidden) {
  auto tx = sql::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  auto s = db_->Prepare(
      "INSERT OR REPLACE INTO hidden_messages (mailbox_path, data_offset, content_hash, bytes, "
      "hidden_unix_ms) VALUES (?,?,?,?,?)");
  if (!s.ok()) return s.status();
  for (const HiddenMessage& h : hidden) {
    s->Bind(1, path).Bind(2, static_cast<int64_t>(h.data_offset)).Bind(3, h.content_hash.Hex());
    s->Bind(4, static_cast<int64_t>(h.bytes)).Bind(5, h.hidden_unix_ms);
    if (absl::Status r = s->Run(); !r.ok()) return r;
  }
  return (*tx)->Commit();
}

absl::StatusOr<std::vector<HiddenMessage>> IndexStore::HiddenMessages(const std::string& path) {
  auto s = db_->Prepare(
      "SELECT data_offset, content_hash, bytes, hidden_unix_ms FROM hidden_messages "
      "WHERE mailbox_path=? ORDER BY data_offset");
  if (!s.ok()) return s.status();
  s->Bind(1, path);
  std::vector<HiddenMessage> out;
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    HiddenMessage h;
    h.data_offset = static_cast<uint64_t>(s->Int(0));
    Hash128::FromHex(s->Text(1), &h.content_hash);
    h.bytes = static_cast<uint64_t>(s->Int(2));
    h.hidden_unix_ms = s->Int(3);
    out.push_back(h);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> IndexStore::MailboxesWithHidden() {
  auto s = db_->Prepare("SELECT DISTINCT mailbox_path FROM hidden_messages ORDER BY mailbox_path");
  if (!s.ok()) return s.status();
  std::vector<std::string> out;
  while (true) {
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(s->Text(0));
  }
  return out;
}

absl::Status IndexStore::ClearHidden(const std::string& path) {
  auto s = db_->Prepare("DELETE FROM hidden_messages WHERE mailbox_path=?");
  if (!s.ok()) return s.status();
  s->Bind(1, path);
  return s->Run();
}

absl::StatusOr<std::vector<ExpungePlanRecord>> IndexStore::AllExpungePlans() {
  return SelectPlans("", "");
}

}  // namespace poplar::indexer
