#include "indexer/expunge_coordinator.h"

#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mbox/snapshot_codec.h"
#include "common/util/errno_status.h"
#include "common/util/log.h"
#include "common/util/strings.h"
#include "indexer/mailbox_indexer.h"

namespace poplar::indexer {
namespace {

// The one refusal of an expunge: logged, and UNAVAILABLE (popd: -ERR [SYS/TEMP]).
absl::Status Refuse(const std::string& mailbox, std::string_view why) {
  log::Warning("expunge ", mailbox, ": nothing deleted: ", why);
  return absl::UnavailableError(absl::StrCat(Absl(why), "; nothing deleted"));
}

// A refused mailbox file (symlink, owner, ...): FailedPrecondition as it is, logged.
absl::Status Refused(absl::Status s) {
  log::Warning("expunge: nothing deleted: ", s.message());
  return s;
}

bool SameHash(const v1::Snapshot& snap, size_t i, const Hash128& h) {
  return mbox::HashAt(snap.content_hashes(), i) == h.Bytes();
}

// Every message of the snapshot must still be where and what it was: the snapshot is a prefix
// of the file's messages now (anything else is not a pure append). Empty when it is, else why.
std::string SnapshotIsPrefix(const v1::Snapshot& snap, const std::vector<MessageRecord>& now) {
  if (now.size() < static_cast<size_t>(snap.data_offsets_size())) {
    return "messages of the snapshot are gone";
  }
  for (int i = 0; i < snap.data_offsets_size(); ++i) {
    const MessageRecord& m = now[static_cast<size_t>(i)];
    if (m.data_offset != snap.data_offsets(i) ||
        !SameHash(snap, static_cast<size_t>(i), m.content_hash)) {
      return absl::StrCat("message ", i + 1, " of the snapshot changed");
    }
  }
  return "";
}

// The region about to be rewritten, read again from the file, must be what the index says.
std::string RegionMatchesFile(int fd, const std::string& mailbox, uint64_t size,
                              const std::vector<MessageRecord>& now, size_t from,
                              bool trust_content_length) {
  absl::StatusOr<std::vector<mbox::MessageInfo>> fresh =
      ScanRegion(fd, mailbox, now[from].offset, size, trust_content_length);
  if (!fresh.ok()) return absl::StrCat("re-read failed: ", fresh.status().message());
  if (fresh->size() != now.size() - from) return "the file does not match its index";
  for (size_t i = 0; i < fresh->size(); ++i) {
    const MessageRecord& m = now[from + i];
    const mbox::MessageInfo& f = (*fresh)[i];
    if (f.offset != m.offset || f.data_offset != m.data_offset || f.end_offset != m.end_offset ||
        !(f.content_hash == m.content_hash)) {
      return "the file does not match its index";
    }
  }
  return "";
}

// The index after the rewrite: kept messages after plan.start move by their segment's shift and
// keep their UIDLs. Sets *resume to the resume point the mailbox row gets.
std::vector<MessageRecord> MovedMessages(const std::vector<MessageRecord>& now,
                                         const mbox::CompactionPlan& plan, uint64_t old_resume,
                                         uint64_t* resume) {
  std::vector<MessageRecord> moved;
  *resume = plan.start;
  for (const MessageRecord& m : now) {
    if (m.offset < plan.start) {
      *resume = m.offset;
      continue;
    }
    std::optional<uint64_t> to = mbox::MapOffset(plan, m.offset);
    if (!to) continue;  // deleted
    MessageRecord n = m;
    const uint64_t shift = m.offset - *to;
    n.offset -= shift;
    n.data_offset -= shift;
    n.end_offset -= shift;
    *resume = n.offset;
    moved.push_back(std::move(n));
  }
  if (std::optional<uint64_t> r = mbox::MapOffset(plan, old_resume); r && *r >= *resume) {
    *resume = *r;  // the old resume point survived (the end of the file, or a kept message)
  }
  // else: it was a deleted message's From_ line: resume at the last message kept (re-scanned
  // as tentative next time, as the scanner would have left it).
  return moved;
}

}  // namespace

absl::StatusOr<v1::CommitResult> ExpungeCoordinator::Expunge(const std::string& mailbox,
                                                             const v1::Snapshot& snap,
                                                             const std::vector<size_t>& deleted,
                                                             lock::MailboxLock held) {
  Timings t;
  t.start = absl::Now();
  absl::StatusOr<Verified> v = Verify(mailbox, snap, deleted, held.fd());
  if (!v.ok()) return v.status();
  t.verified = absl::Now();
  absl::StatusOr<int64_t> plan_id = CompactWithoutMutex(mailbox, held, v->plan);
  t.compacted = absl::Now();
  if (!plan_id.ok()) {
    held.Release();
    // If the plan was recorded, the file may be part-way: finish it now if possible.
    absl::Status r = Recover(mailbox);
    log::Error("expunge ", mailbox, " failed: ", plan_id.status(),
               r.ok() ? "" : absl::StrCat("; recovery pending: ", r.message()));
    return absl::UnavailableError(absl::StrCat("expunge failed: ", plan_id.status().message()));
  }
  absl::StatusOr<size_t> moved = Reindex(mailbox, held.fd(), *v);
  if (!moved.ok()) return moved.status();
  cache_->Drop(mailbox);
  const int attempts = held.attempts();
  held.Release();
  ClosePlan(mailbox, *plan_id);
  const mbox::CompactionPlan& plan = v->plan;
  log::Info("expunge ", mailbox, ": deleted ", plan.deleted_messages, " message(s), ",
            plan.bytes_removed(), " bytes; rewrote ", plan.image_size(), " bytes from offset ",
            plan.start, "; ", *moved, " message(s) moved; size ", plan.old_size, " -> ",
            plan.new_size, "; lock attempts ", attempts, "; ",
            absl::FormatDuration(absl::Now() - t.start), " (verify ",
            absl::FormatDuration(t.verified - t.start), ", journal+rewrite ",
            absl::FormatDuration(t.compacted - t.verified), ", index ",
            absl::FormatDuration(absl::Now() - t.compacted), ")");
  v1::CommitResult result;
  result.set_deleted(static_cast<uint32_t>(plan.deleted_messages));
  result.set_bytes_removed(plan.bytes_removed());
  return result;
}

absl::StatusOr<ExpungeCoordinator::Verified> ExpungeCoordinator::Verify(
    const std::string& mailbox, const v1::Snapshot& snap, const std::vector<size_t>& deleted,
    int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Refuse(mailbox, "fstat failed");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (st.st_dev != snap.file().device() || st.st_ino != snap.file().inode()) {
    return Refuse(mailbox, "the mailbox was replaced since the snapshot");
  }
  if (size < snap.file().size()) return Refuse(mailbox, "the mailbox shrank since the snapshot");
  Verified v;
  absl::StatusOr<MailboxRecord> mb =
      CatchUpUnderLocks(mailbox, st.st_dev, st.st_ino, size, st.st_uid);
  if (!mb.ok()) return mb.status();
  v.mailbox = *std::move(mb);
  absl::StatusOr<std::vector<MessageRecord>> now = store_->LoadMessages(v.mailbox.id);
  if (!now.ok()) return now.status();
  v.messages = *std::move(now);
  if (std::string why = SnapshotIsPrefix(snap, v.messages); !why.empty()) {
    return Refuse(mailbox, why);
  }
  if (std::string why = RegionMatchesFile(fd, mailbox, size, v.messages, deleted.front(),
                                          options_.trust_content_length);
      !why.empty()) {
    return Refuse(mailbox, why);
  }
  std::vector<uint64_t> offsets;
  offsets.reserve(v.messages.size());
  for (const MessageRecord& m : v.messages) offsets.push_back(m.offset);
  absl::StatusOr<mbox::CompactionPlan> plan = mbox::PlanCompaction(offsets, size, deleted);
  if (!plan.ok()) return Refuse(mailbox, Std(plan.status().message()));
  v.plan = *std::move(plan);
  return v;
}

absl::StatusOr<MailboxRecord> ExpungeCoordinator::CatchUpUnderLocks(const std::string& mailbox,
                                                                    uint64_t device, uint64_t inode,
                                                                    uint64_t size, uid_t uid) {
  // Under the locks no MDA writes: bring the index up to the file as it is now.
  HeldLocksProbe held_probe;
  MailboxIndexer under_lock(store_, options_.uidl, &held_probe);
  under_lock.set_trust_content_length(options_.trust_content_length);
  under_lock.set_owner(owner_);
  cache_->Drop(mailbox);
  absl::StatusOr<IndexOutcome> o = under_lock.Update(mailbox, "", false);
  if (!o.ok() && absl::IsFailedPrecondition(o.status())) return Refused(o.status());
  if (!o.ok()) return Refuse(mailbox, absl::StrCat("re-index failed: ", o.status().message()));
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(mailbox);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return Refuse(mailbox, "the mailbox is not indexed");
  const MailboxRecord& mb = **rec;
  if (mb.device != device || mb.inode != inode || mb.size != size) {
    return Refuse(mailbox, "the mailbox changed while it was locked");
  }
  // The file about to be rewritten is the one just checked (same inode); its owner once more,
  // from the locked descriptor itself.
  if (absl::Status s = owner_->Check(uid, mb.user); !s.ok()) {
    return Refused(RefusedMailbox(mailbox, Std(s.message())));
  }
  return mb;
}

absl::StatusOr<int64_t> ExpungeCoordinator::CompactWithoutMutex(const std::string& mailbox,
                                                                lock::MailboxLock& held,
                                                                const mbox::CompactionPlan& plan) {
  // The journal and the rewrite (seconds for a big mailbox) run without mu_: logins to other
  // mailboxes, deliveries and admin calls go on. This mailbox is fenced off meanwhile: the MDA
  // locks keep writers out, the lease and compacting_ keep sessions out, and the Indexer leaves
  // its index alone. Compact takes mu_ itself only to record the plan.
  compacting_.insert(mailbox);
  mu_.Unlock();
  absl::StatusOr<int64_t> plan_id = expunger_->Compact(mailbox, held, plan, &mu_);
  mu_.Lock();
  compacting_.erase(mailbox);
  return plan_id;
}

absl::StatusOr<size_t> ExpungeCoordinator::Reindex(const std::string& mailbox, int fd,
                                                   Verified& v) {
  uint64_t resume = 0;
  std::vector<MessageRecord> moved =
      MovedMessages(v.messages, v.plan, v.mailbox.resume_offset, &resume);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Refuse(mailbox, "fstat failed");
  absl::StatusOr<Hash128> tail = TailHash(fd, resume, mailbox);
  if (!tail.ok()) return tail.status();
  MailboxRecord& mb = v.mailbox;
  mb.size = static_cast<uint64_t>(st.st_size);
  mb.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  mb.resume_offset = resume;
  mb.tail_hash = *tail;
  mb.final_scan = true;
  mb.indexed_unix_ms = absl::ToUnixMillis(absl::Now());
  if (absl::Status s = store_->SaveScan(&mb, v.plan.start, moved); !s.ok()) {
    // The file is final but the index is not: the plan stays open, so the next commit on this
    // mailbox (or the next start-up) closes it and re-indexes the mailbox fully. The client
    // hears [SYS/TEMP]; its messages are gone all the same, which RFC 1939 §6 allows.
    log::Error("expunge ", mailbox, ": index update failed: ", s);
    return absl::UnavailableError("index update failed after the expunge");
  }
  return moved.size();
}

void ExpungeCoordinator::ClosePlan(const std::string& mailbox, int64_t plan_id) {
  absl::StatusOr<std::vector<ExpungePlanRecord>> open = store_->OpenExpungePlans(mailbox);
  if (!open.ok()) {
    log::Warning("expunge ", mailbox, ": listing its plans to close plan ", plan_id, ": ",
                 open.status(), " (the next recovery closes it)");
    return;
  }
  for (const ExpungePlanRecord& p : *open) {
    if (p.id != plan_id) continue;
    if (absl::Status s = expunger_->Finish(p.id, p.journal_path); !s.ok()) {
      log::Warning("expunge ", mailbox, ": closing plan ", p.id, ": ", s);
    }
  }
}

absl::Status ExpungeCoordinator::Recover(const std::string& mailbox) {
  absl::StatusOr<std::vector<ExpungePlanRecord>> plans = store_->OpenExpungePlans(mailbox);
  if (!plans.ok()) return plans.status();
  absl::Status result;
  for (const ExpungePlanRecord& p : *plans) {
    absl::StatusOr<Expunger::RecoveryReport> r = expunger_->Recover(p, options_.lock);
    if (!r.ok()) {
      log::Error("recovery of expunge plan ", p.id, " for ", p.mailbox_path,
                 " failed: ", r.status());
      if (result.ok()) result = absl::UnavailableError(std::string(r.status().message()));
      continue;
    }
    log::Info("recovery: ", r->detail);
    if (r->outcome == Expunger::Recovery::kBusy) {
      if (result.ok()) result = absl::UnavailableError(r->detail);
      continue;
    }
    // The file changed under the index: re-index it fully (UIDLs carried by content hash).
    cache_->Drop(p.mailbox_path);
    reindex_(p.mailbox_path);
  }
  return result;
}

absl::StatusOr<v1::CommitResult> ExpungeCoordinator::Hide(const std::string& mailbox,
                                                          const v1::Snapshot& snap,
                                                          const std::vector<size_t>& deleted) {
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(mailbox);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value())
    return absl::UnavailableError("mailbox vanished since the snapshot; nothing deleted");
  const MailboxRecord& mb = **rec;
  if (mb.device != snap.file().device() || mb.inode != snap.file().inode()) {
    return absl::UnavailableError("the mailbox was replaced since the snapshot; nothing deleted");
  }
  // The index now, in columns: the cached snapshot when no message is hidden yet (Follow just
  // spliced it, so QUIT on a 100,000-message mailbox needs no 100,000-row read from SQLite);
  // else from SQLite (a filtered snapshot no longer tells where each message ends).
  std::shared_ptr<const v1::Snapshot> current;
  if (!cache_->HasHidden(mailbox)) {
    absl::StatusOr<std::shared_ptr<const v1::Snapshot>> cached = cache_->Get(mailbox);
    if (cached.ok() && *cached && (*cached)->file().device() == mb.device &&
        (*cached)->file().inode() == mb.inode) {
      current = *cached;
    }
  }
  v1::Snapshot from_index;
  if (!current) {
    absl::StatusOr<std::vector<MessageRecord>> now = store_->LoadMessages(mb.id);
    if (!now.ok()) return now.status();
    from_index = SnapshotOfRecords(mb, *now);
  }
  const v1::Snapshot& index = current ? *current : from_index;
  std::vector<HiddenMessage> hide;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const auto& offsets = index.data_offsets();
  for (size_t d : deleted) {
    const uint64_t off = snap.data_offsets(static_cast<int>(d));
    auto pos = std::lower_bound(offsets.begin(), offsets.end(), off);
    const size_t i = static_cast<size_t>(pos - offsets.begin());
    HiddenMessage h;
    if (pos == offsets.end() || *pos != off ||
        mbox::HashAt(snap.content_hashes(), d) != mbox::HashAt(index.content_hashes(), i) ||
        !Hash128::FromBytes(mbox::HashAt(index.content_hashes(), i), &h.content_hash)) {
      return absl::UnavailableError("mailbox changed since the snapshot; nothing deleted");
    }
    const int ii = static_cast<int>(i);
    const uint64_t end = ii + 1 < index.from_offsets_size() ? index.from_offsets(ii + 1) : mb.size;
    h.data_offset = off;
    h.bytes = end - index.from_offsets(ii);
    h.hidden_unix_ms = now_ms;
    hide.push_back(h);
  }
  if (absl::Status s = store_->HideMessages(mailbox, hide); !s.ok()) return s;
  cache_->MarkHidden(mailbox);
  log::Info("expunge ", mailbox, ": hid ", hide.size(), " message(s) for deferred compaction");
  v1::CommitResult result;
  result.set_deleted(static_cast<uint32_t>(hide.size()));
  return result;  // bytes_removed: 0, nothing is removed yet
}

absl::StatusOr<bool> ExpungeCoordinator::CompactHidden(const std::string& path,
                                                       lock::MailboxLock held) {
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(path);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return absl::NotFoundError(absl::StrCat(path, " is not indexed"));
  absl::StatusOr<std::vector<HiddenMessage>> hidden = store_->HiddenMessages(path);
  if (!hidden.ok()) return hidden.status();
  absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages((*rec)->id);
  if (!messages.ok()) return messages.status();
  // What the index holds now, unfiltered: Expunge re-verifies it under the locks.
  const v1::Snapshot snap = SnapshotOfRecords(**rec, *messages);
  const std::vector<bool> mask = HiddenMask(*messages, *hidden);
  std::vector<size_t> deleted;
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i]) deleted.push_back(i);
  }
  if (deleted.empty()) {
    ForgetHidden(path);
    return false;
  }
  absl::StatusOr<v1::CommitResult> r = Expunge(path, snap, deleted, std::move(held));
  if (!r.ok()) return r.status();
  ForgetHidden(path);
  return true;
}

void ExpungeCoordinator::ForgetHidden(const std::string& path) {
  if (absl::Status s = store_->ClearHidden(path); !s.ok()) {
    // Compacted all the same; the rows left match no message (offset and hash) and are cleared
    // with the mailbox's next hidden messages.
    log::Warning("deferred expunge ", path, ": clearing its hidden messages: ", s);
  }
  cache_->ClearHidden(path);
}

}  // namespace poplar::indexer
