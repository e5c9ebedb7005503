// MaildropView: what popd keeps of the indexer's Snapshot for one session, checked once.
//
// The snapshot crosses a process boundary, so popd does not trust its shape: every column must
// have `count` entries, UIDLs must be valid (RFC 1939 §7), hashes 16 bytes each, messages in
// file order without overlap, sizes consistent with the total. A snapshot that fails any check
// is refused (the session answers -ERR [SYS/PERM] and ends) rather than served from: wrong
// offsets would mean someone else's bytes (design invariant 5).
// Pure: no sockets, no files. The streaming code (RETR/TOP) takes a MessageLocation from here.
#ifndef POPLAR_POPD_MAILDROP_VIEW_H_
#define POPLAR_POPD_MAILDROP_VIEW_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mbox/snapshot_codec.h"
#include "common/pop3/session.h"
#include "poplar/maildrop.pb.h"

namespace poplar::popd {

// Where one message's stored bytes are, and what they must hash to.
struct MessageLocation {
  uint64_t data_offset = 0;
  uint64_t length = 0;
  uint64_t header_length = 0;
  // As in the snapshot; sent back in Commit. Fixed-size so a big maildrop needs no allocation
  // per message.
  std::array<char, mbox::kSnapshotHashBytes> content_hash{};
  uint64_t from_offset = 0;  // the From_ line: [from_offset, data_offset), covered by the hash
};

struct MaildropView {
  std::string session_id;
  std::string mailbox_path;
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t covered_size = 0;  // the file must be at least this long
  pop3::Maildrop maildrop;    // what the POP3 session sees (octets, UIDLs)
  std::vector<MessageLocation> messages;
};

// FailedPrecondition (with what is wrong) if the snapshot is malformed.
absl::StatusOr<MaildropView> MakeMaildropView(const v1::Snapshot& snapshot);

// The Commit for a QUIT: message indexes (0-based, from the session's CommitRequest) to
// identities. InvalidArgument for an index outside the maildrop.
absl::StatusOr<v1::Commit> MakeCommit(const MaildropView& view,
                                      const std::vector<uint32_t>& deleted);

}  // namespace poplar::popd

#endif  // POPLAR_POPD_MAILDROP_VIEW_H_
