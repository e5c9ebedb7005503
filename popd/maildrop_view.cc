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

// The per-message columns of `s` (a whole snapshot, or a page's messages numbered from
// `first`): every column has `count` entries, UIDLs valid, hashes 16 bytes, messages in file
// order without overlap, inside `covered_size`, sizes possible. Appends to the three outputs
// and adds the octets to *total.
absl::Status CheckColumns(const v1::Snapshot& s, uint64_t first, uint64_t covered_size,
                          std::vector<MessageLocation>* messages, std::vector<uint64_t>* octets_out,
                          pop3::UidlList* uidls_out, uint64_t* total) {
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
  octets_out->reserve(octets_out->size() + n);
  uidls_out->Reserve(n, s.uidls().size());
  messages->reserve(messages->size() + n);
  uint64_t previous_end = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t number = first + i + 1;
    const uint64_t from = s.from_offsets(static_cast<int>(i));
    const uint64_t offset = s.data_offsets(static_cast<int>(i));
    const uint64_t length = s.lengths(static_cast<int>(i));
    const uint64_t header = s.header_lengths(static_cast<int>(i));
    const uint64_t octets = s.octets(static_cast<int>(i));
    // The From_ line sits between the previous message and this one's data, and is a line of
    // sane length (the scanner refuses longer ones).
    if (from < previous_end || from >= offset || offset - from > kMaxFromLine) {
      return Bad(absl::StrCat("message ", number, " has an impossible From_ line offset"));
    }
    if (offset < previous_end || length > UINT64_MAX - offset) {
      return Bad(absl::StrCat("message ", number, " overlaps the one before it"));
    }
    if (header > length)
      return Bad(absl::StrCat("message ", number, " has a header longer than itself"));
    if (offset + length > covered_size) {
      return Bad(absl::StrCat("message ", number, " ends past the file size"));
    }
    // RFC 1939 size: at least the stored bytes, at most every byte doubled plus the final CRLF.
    if (octets < length || octets > 2 * length + 2) {
      return Bad(absl::StrCat("message ", number, " has an impossible size"));
    }
    if (!uidls_out->Append((*uidls)[i])) {
      return Bad(absl::StrCat("message ", number, " has an invalid UIDL"));
    }
    *total += octets;
    previous_end = offset + length;
    octets_out->push_back(octets);
    MessageLocation& where = messages->emplace_back();
    where.data_offset = offset;
    where.length = length;
    where.header_length = header;
    where.from_offset = from;
    const std::string_view hash = mbox::HashAt(s.content_hashes(), i);
    std::copy(hash.begin(), hash.end(), where.content_hash.begin());
  }
  return absl::OkStatus();
}

bool NoColumns(const v1::Snapshot& s) {
  return s.data_offsets_size() == 0 && s.lengths_size() == 0 && s.header_lengths_size() == 0 &&
         s.octets_size() == 0 && s.from_offsets_size() == 0 && s.lines_size() == 0 &&
         s.uidls().empty() && s.content_hashes().empty();
}

}  // namespace

absl::StatusOr<MaildropView> MakeMaildropView(const v1::Snapshot& s) {
  MaildropView view;
  view.session_id = s.session_id();
  view.mailbox_path = s.mailbox_path();
  view.device = s.file().device();
  view.inode = s.file().inode();
  view.covered_size = s.file().size();
  view.version = s.version();
  view.maildrop.count = s.count();
  if (s.count() > 0 && NoColumns(s)) {
    // A paged session's header: the counts now, the columns page by page (MakePageView). The
    // total can only be checked against the pages' sums as they come; it bounds DELE's sizes.
    if (s.version() == 0) return Bad("a paged snapshot without a version");
    view.maildrop.total_octets = s.total_octets();
    return view;
  }
  uint64_t total = 0;
  if (absl::Status c = CheckColumns(s, 0, view.covered_size, &view.messages, &view.maildrop.octets,
                                    &view.maildrop.uidls, &total);
      !c.ok()) {
    return c;
  }
  if (total != s.total_octets()) return Bad("total octets do not add up");
  view.maildrop.total_octets = total;
  return view;
}

absl::StatusOr<MessagePageView> MakePageView(const MaildropView& view, const v1::MessagePage& page,
                                             uint32_t first) {
  if (page.version() != view.version) return Bad("a page of another snapshot version");
  if (page.first() != first) return Bad("a page that does not start where it was asked to");
  const uint64_t n = page.messages().count();
  if (n == 0 || uint64_t{first} + n > view.maildrop.count) {
    return Bad("a page with no messages or past the maildrop's end");
  }
  MessagePageView out;
  out.first = first;
  uint64_t total = 0;
  if (absl::Status c = CheckColumns(page.messages(), first, view.covered_size, &out.messages,
                                    &out.octets, &out.uidls, &total);
      !c.ok()) {
    return c;
  }
  if (total > view.maildrop.total_octets) return Bad("a page larger than the maildrop");
  return out;
}

absl::StatusOr<v1::Commit> MakeCommit(const MaildropView& view,
                                      const std::vector<uint32_t>& deleted) {
  v1::Commit commit;
  if (view.paged()) {
    for (uint32_t index : deleted) {
      if (index >= view.maildrop.count) {
        return absl::InvalidArgumentError(absl::StrCat("no message ", index + 1, " to delete"));
      }
      commit.add_deleted_indexes(index);
    }
    return commit;
  }
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
