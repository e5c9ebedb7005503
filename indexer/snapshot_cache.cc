#include "indexer/snapshot_cache.h"

#include <algorithm>
#include <utility>

#include "common/mbox/snapshot_codec.h"

namespace poplar::indexer {
namespace {

// Appends messages [begin, end) of `old` to `snap`, as AddToSnapshot would one by one, column
// by column in bulk.
void CopyToSnapshot(v1::Snapshot* snap, const v1::Snapshot& old, int begin, int end) {
  if (begin >= end) return;
  const size_t before = static_cast<size_t>(snap->data_offsets_size());
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
  const auto b = static_cast<size_t>(begin);
  const auto e = static_cast<size_t>(end);
  mbox::AppendUidls(snap->mutable_uidls(), before, mbox::UidlSlice(old.uidls(), b, e));
  snap->mutable_content_hashes()->append(mbox::HashSlice(old.content_hashes(), b, e));
  uint64_t octets = 0;
  for (int i = begin; i < end; ++i) octets += old.octets(i);
  snap->set_count(static_cast<uint32_t>(snap->data_offsets_size()));
  snap->set_total_octets(snap->total_octets() + octets);
  snap->mutable_file()->set_size(
      std::max(snap->file().size(), old.data_offsets(end - 1) + old.lengths(end - 1)));
}

}  // namespace

void AddToSnapshot(v1::Snapshot* snap, const MessageRecord& m) {
  const size_t before = static_cast<size_t>(snap->data_offsets_size());
  const uint64_t length = m.end_offset - m.data_offset;
  snap->add_from_offsets(m.offset);
  snap->add_data_offsets(m.data_offset);
  snap->add_lengths(length);
  snap->add_header_lengths(m.header_length);
  snap->add_octets(m.octets);
  snap->add_lines(m.lines);
  mbox::AppendUidls(snap->mutable_uidls(), before, m.uidl);
  mbox::AppendHash(snap->mutable_content_hashes(), m.content_hash.Bytes());
  snap->set_count(static_cast<uint32_t>(snap->data_offsets_size()));
  snap->set_total_octets(snap->total_octets() + m.octets);
  snap->mutable_file()->set_size(std::max(snap->file().size(), m.data_offset + length));
}

v1::Snapshot SnapshotOfRecords(const MailboxRecord& mailbox,
                               const std::vector<MessageRecord>& messages,
                               const std::vector<bool>& hidden) {
  v1::Snapshot snap;
  snap.set_mailbox_path(mailbox.path);
  snap.mutable_file()->set_device(mailbox.device);
  snap.mutable_file()->set_inode(mailbox.inode);
  const int n = static_cast<int>(messages.size());
  snap.mutable_from_offsets()->Reserve(n);
  snap.mutable_data_offsets()->Reserve(n);
  snap.mutable_lengths()->Reserve(n);
  snap.mutable_header_lengths()->Reserve(n);
  snap.mutable_octets()->Reserve(n);
  snap.mutable_lines()->Reserve(n);
  snap.mutable_uidls()->reserve(25 * messages.size());
  snap.mutable_content_hashes()->reserve(mbox::kSnapshotHashBytes * messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i < hidden.size() && hidden[i]) continue;
    AddToSnapshot(&snap, messages[i]);
  }
  return snap;
}

// Offsets are From_ line boundaries, so a message starts before `from` exactly when its
// data_offset does. Sessions holding the old snapshot keep it: it is what they were shown. The
// unchanged messages are copied in bulk: the first login after a delivery to a 100,000-message
// mailbox pays a few memcpy()s, not 100,000 appends to eight columns.
std::shared_ptr<const v1::Snapshot> SpliceSnapshot(const v1::Snapshot& old, uint64_t from,
                                                   uint64_t to,
                                                   const std::vector<MessageRecord>& added) {
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
  snap->mutable_content_hashes()->reserve(old.content_hashes().size() +
                                          mbox::kSnapshotHashBytes * added.size());
  CopyToSnapshot(snap.get(), old, 0, prefix);
  for (const MessageRecord& m : added) AddToSnapshot(snap.get(), m);
  CopyToSnapshot(snap.get(), old, tail, n);
  return snap;
}

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

absl::Status SnapshotCache::LoadHidden() {
  absl::StatusOr<std::vector<std::string>> hidden = store_->MailboxesWithHidden();
  if (!hidden.ok()) return hidden.status();
  hidden_.insert(hidden->begin(), hidden->end());
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const v1::Snapshot>> SnapshotCache::Get(const std::string& path) {
  if (auto it = snapshots_.find(path); it != snapshots_.end()) return it->second;
  absl::StatusOr<std::optional<MailboxRecord>> rec = store_->FindMailbox(path);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return std::shared_ptr<const v1::Snapshot>();
  absl::StatusOr<std::vector<MessageRecord>> messages = store_->LoadMessages((*rec)->id);
  if (!messages.ok()) return messages.status();
  std::vector<HiddenMessage> hidden;
  if (hidden_.contains(path)) {
    absl::StatusOr<std::vector<HiddenMessage>> h = store_->HiddenMessages(path);
    if (!h.ok()) return h.status();
    hidden = std::move(*h);
  }
  std::shared_ptr<const v1::Snapshot> shared = std::make_shared<v1::Snapshot>(
      SnapshotOfRecords(**rec, *messages, HiddenMask(*messages, hidden)));
  snapshots_[path] = shared;
  return shared;
}

void SnapshotCache::Follow(const std::string& path, const absl::StatusOr<IndexOutcome>& o) {
  if (o.ok() && o->kind == IndexOutcome::Kind::kUnchanged) return;
  auto it = snapshots_.find(path);
  if (it == snapshots_.end()) return;
  if (hidden_.contains(path)) {
    snapshots_.erase(it);  // rebuilt, filtered, at the next login
    return;
  }
  if (o.ok() && o->kind == IndexOutcome::Kind::kAppended && o->exact_tail) {
    if (o->added.empty() && o->replaced_to <= o->replaced_from) return;  // nothing changed
    it->second = SpliceSnapshot(*it->second, o->replaced_from, o->replaced_to, o->added);
  } else {
    snapshots_.erase(it);  // rebuilt from SQLite at the next login
  }
}

void SnapshotCache::MarkHidden(const std::string& path) {
  hidden_.insert(path);
  snapshots_.erase(path);
}

void SnapshotCache::ClearHidden(const std::string& path) {
  hidden_.erase(path);
  snapshots_.erase(path);
}

}  // namespace poplar::indexer
