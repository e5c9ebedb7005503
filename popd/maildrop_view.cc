#include "popd/maildrop_view.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/mbox/from_line.h"
#include "common/mbox/snapshot_codec.h"

namespace poplar::popd {
namespace {

// A From_ line the scanner accepts, with its line end.
constexpr uint64_t kMaxFromLine = mbox::kMaxFromLineLength + 2;

absl::Status Bad(const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("malformed snapshot: ", what));
}

}  // namespace

absl::StatusOr<MaildropView> MakeMaildropView(const v1::Snapshot& s) {
  const uint64_t n = s.count();
  if (static_cast<uint64_t>(s.data_offsets_size()) != n ||
      static_cast<uint64_t>(s.lengths_size()) != n ||
      static_cast<uint64_t>(s.header_lengths_size()) != n ||
      static_cast<uint64_t>(s.octets_size()) != n ||
      static_cast<uint64_t>(s.from_offsets_size()) != n) {
    return Bad(absl::StrCat("columns do not all have ", n, " entries"));
  }
  if (absl::Status h = mbox::CheckHashes(s.content_hashes(), n); !h.ok()) {
    return Bad(std::string(h.message()));
  }
  absl::StatusOr<std::vector<std::string_view>> uidls = mbox::DecodeUidls(s.uidls(), n);
  if (!uidls.ok()) return Bad(std::string(uidls.status().message()));
  MaildropView view;
  view.session_id = s.session_id();
  view.mailbox_path = s.mailbox_path();
  view.device = s.file().device();
  view.inode = s.file().inode();
  view.covered_size = s.file().size();
  view.maildrop.count = static_cast<uint32_t>(n);
  view.maildrop.octets.reserve(n);
  view.maildrop.uidls.Reserve(n, s.uidls().size());
  view.messages.reserve(n);

  uint64_t total = 0;
  uint64_t previous_end = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t from = s.from_offsets(static_cast<int>(i));
    const uint64_t offset = s.data_offsets(static_cast<int>(i));
    const uint64_t length = s.lengths(static_cast<int>(i));
    const uint64_t header = s.header_lengths(static_cast<int>(i));
    const uint64_t octets = s.octets(static_cast<int>(i));
    // The From_ line sits between the previous message and this one's data, and is a line of
    // sane length (the scanner refuses longer ones).
    if (from < previous_end || from >= offset || offset - from > kMaxFromLine) {
      return Bad(absl::StrCat("message ", i + 1, " has an impossible From_ line offset"));
    }
    if (offset < previous_end || length > UINT64_MAX - offset) {
      return Bad(absl::StrCat("message ", i + 1, " overlaps the one before it"));
    }
    if (header > length)
      return Bad(absl::StrCat("message ", i + 1, " has a header longer than itself"));
    if (offset + length > view.covered_size) {
      return Bad(absl::StrCat("message ", i + 1, " ends past the file size"));
    }
    // RFC 1939 size: at least the stored bytes, at most every byte doubled plus the final CRLF.
    if (octets < length || octets > 2 * length + 2) {
      return Bad(absl::StrCat("message ", i + 1, " has an impossible size"));
    }
    if (!view.maildrop.uidls.Append((*uidls)[i])) {
      return Bad(absl::StrCat("message ", i + 1, " has an invalid UIDL"));
    }
    total += octets;
    previous_end = offset + length;
    view.maildrop.octets.push_back(octets);
    MessageLocation& where = view.messages.emplace_back();
    where.data_offset = offset;
    where.length = length;
    where.header_length = header;
    where.from_offset = from;
    const std::string_view hash = mbox::HashAt(s.content_hashes(), i);
    std::copy(hash.begin(), hash.end(), where.content_hash.begin());
  }
  if (total != s.total_octets()) return Bad("total octets do not add up");
  view.maildrop.total_octets = total;
  return view;
}

absl::StatusOr<v1::Commit> MakeCommit(const MaildropView& view,
                                      const std::vector<uint32_t>& deleted) {
  v1::Commit commit;
  for (uint32_t index : deleted) {
    if (index >= view.messages.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no message ", index + 1, " to delete"));
    }
    v1::MessageRef* ref = commit.add_deleted();
    ref->set_data_offset(view.messages[index].data_offset);
    const std::array<char, 16>& hash = view.messages[index].content_hash;
    ref->set_content_hash(hash.data(), hash.size());
  }
  return commit;
}

}  // namespace poplar::popd
