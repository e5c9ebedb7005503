// The snapshot's packed columns (maildrop.proto Snapshot.uidls and .content_hashes), written by
// the indexer and read by popd: the one place that knows that UIDLs are joined by '\n' and that
// content hashes are 16 raw bytes each. The numeric columns are plain repeated fields and need no
// codec. Pure: no proto, no I/O (the core-only build and the fuzzers have it too).
//
//   std::string uidls, hashes;                      // the indexer's side
//   AppendUidls(&uidls, 0, "a1"); AppendUidls(&uidls, 1, "b2");
//   AppendHash(&hashes, m.content_hash.Bytes());
//   absl::StatusOr<std::vector<std::string_view>> u = DecodeUidls(uidls, 2);   // popd's side
#ifndef POPLAR_COMMON_MBOX_SNAPSHOT_CODEC_H_
#define POPLAR_COMMON_MBOX_SNAPSHOT_CODEC_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace poplar::mbox {

inline constexpr size_t kSnapshotHashBytes = 16;
inline constexpr char kSnapshotUidlSeparator = '\n';

// ---- encoding (trusted input: the indexer's own records) ----

// Appends `joined`, the UIDLs of one or more messages already joined by the separator (one
// UIDL, or a UidlSlice of another column), after the `count_before` messages in `column`.
void AppendUidls(std::string* column, size_t count_before, std::string_view joined);
// Appends one message's hash; `hash` must be kSnapshotHashBytes long (a bug otherwise).
void AppendHash(std::string* column, std::string_view hash);

// The joined UIDLs of messages [begin, end) of a well-formed column of at least `end` UIDLs
// (empty when begin >= end).
std::string_view UidlSlice(std::string_view column, size_t begin, size_t end);
// The hashes of messages [begin, end), or message i's, of a column of at least `end` hashes.
std::string_view HashSlice(std::string_view column, size_t begin, size_t end);
std::string_view HashAt(std::string_view column, size_t i);

// ---- decoding (untrusted input: the snapshot crossed a process boundary) ----

// Exactly `count` valid UIDLs (mbox::IsValidUidl), else InvalidArgument saying which is wrong.
// The views point into `column`.
absl::StatusOr<std::vector<std::string_view>> DecodeUidls(std::string_view column, size_t count);
// Exactly `count` hashes, else InvalidArgument.
absl::Status CheckHashes(std::string_view column, size_t count);

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_SNAPSHOT_CODEC_H_
