// The pure half of the expunge (design §5): which bytes of an mbox survive a deletion, and the
// redo journal's header. No I/O here; indexer/expunger.cc does the file work.
//
// Byte ranges. Every message owns the segment from its From_ line up to the next message's
// From_ line (the last one: up to the end of the file). A message's stored bytes end before
// the blank line that precedes the next From_ line (design §3), so its segment is
// "From_ line + message + separator blank line(s)", and removing whole segments keeps every
// surviving message's bytes, and the blank line before every surviving From_ line, exactly as
// they were: deleting the first, the last, all, or adjacent messages, a last message without a
// trailing blank line or newline, and CRLF files need no special case (tests/unit/
// expunge_plan_test.cc). Bytes before the first From_ line (leading garbage) are never touched.
// Mail appended after the session's snapshot is just more kept segments after the deleted ones.
#ifndef POPLAR_COMMON_MBOX_EXPUNGE_PLAN_H_
#define POPLAR_COMMON_MBOX_EXPUNGE_PLAN_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/util/hash.h"

namespace poplar::mbox {

struct ByteRange {
  uint64_t begin = 0;
  uint64_t end = 0;  // one past the last byte
  uint64_t size() const { return end - begin; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct CompactionPlan {
  uint64_t start = 0;     // first byte removed; nothing before it moves
  uint64_t old_size = 0;  // of the file when planned
  uint64_t new_size = 0;
  std::vector<ByteRange> keep;  // old-file ranges after `start`, in order, copied to `start`
  uint64_t deleted_messages = 0;
  uint64_t bytes_removed() const { return old_size - new_size; }
  uint64_t image_size() const { return new_size - start; }
};

// `from_offsets`: the From_ line offset of every message in the file, ascending; `file_size`
// the file's size (the last segment ends there); `deleted`: indices into from_offsets,
// ascending and unique. INVALID_ARGUMENT for inconsistent input (an empty deletion list, an
// index out of range, offsets not ascending or past the end of the file).
absl::StatusOr<CompactionPlan> PlanCompaction(const std::vector<uint64_t>& from_offsets,
                                              uint64_t file_size,
                                              const std::vector<size_t>& deleted);

// Where a byte of a kept segment lands after the compaction; nullopt for a removed byte.
std::optional<uint64_t> MapOffset(const CompactionPlan& plan, uint64_t old_offset);

// The journal: a text header, then exactly the post-image (the new bytes of [start, new_size)).
//   POPLAR-EXPUNGE-JOURNAL 1\n
//   device D\n inode I\n start S\n old_size O\n new_size N\n
//   prefix_hash HEX\n   XXH3-128 of the (up to) kPrefixHashBytes of the mbox before S
//   old_tail_hash HEX\n XXH3-128 of the old file's bytes [max(N, O - kPrefixHashBytes), O):
//                       the rewrite never writes there, so recovery can tell a file that was
//                       not truncated yet from one that was truncated and then grew
//   image_hash HEX\n    XXH3-128 of the post-image
//   end\n
// Numbers are zero-padded to 20 digits so the header has one fixed length (the image is
// streamed into the journal before its hash, and so the header, is known).
struct JournalHeader {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t start = 0;
  uint64_t old_size = 0;
  uint64_t new_size = 0;
  Hash128 prefix_hash;
  Hash128 old_tail_hash;
  Hash128 image_hash;
  friend bool operator==(const JournalHeader&, const JournalHeader&) = default;
};
inline constexpr uint64_t kPrefixHashBytes = 4096;
// The old-tail range named above.
inline ByteRange OldTailRange(uint64_t new_size, uint64_t old_size) {
  return {old_size - std::min<uint64_t>(kPrefixHashBytes, old_size - new_size), old_size};
}
std::string FormatJournalHeader(const JournalHeader& h);
// Parses a header at the start of `bytes` (which may hold more); sets *header_length.
// DATA_LOSS when it is not a complete, well-formed header (a torn or foreign file).
absl::StatusOr<JournalHeader> ParseJournalHeader(std::string_view bytes, size_t* header_length);

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_EXPUNGE_PLAN_H_
