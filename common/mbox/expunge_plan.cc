#include "common/mbox/expunge_plan.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/util/strings.h"

namespace poplar::mbox {

absl::StatusOr<CompactionPlan> PlanCompaction(const std::vector<uint64_t>& from_offsets,
                                              uint64_t file_size,
                                              const std::vector<size_t>& deleted) {
  const size_t n = from_offsets.size();
  if (deleted.empty()) return absl::InvalidArgumentError("nothing to delete");
  for (size_t i = 0; i < n; ++i) {
    if ((i > 0 && from_offsets[i] <= from_offsets[i - 1]) || from_offsets[i] >= file_size) {
      return absl::InvalidArgumentError("message offsets are not ascending within the file");
    }
  }
  for (size_t i = 0; i < deleted.size(); ++i) {
    if (deleted[i] >= n) return absl::InvalidArgumentError("deleted message out of range");
    if (i > 0 && deleted[i] <= deleted[i - 1]) {
      return absl::InvalidArgumentError("deleted messages not ascending and unique");
    }
  }
  auto segment_end = [&](size_t i) { return i + 1 < n ? from_offsets[i + 1] : file_size; };
  CompactionPlan plan;
  plan.old_size = file_size;
  plan.start = from_offsets[deleted.front()];
  plan.deleted_messages = deleted.size();
  uint64_t removed = 0;
  size_t d = 0;
  for (size_t i = deleted.front(); i < n; ++i) {
    const ByteRange seg{from_offsets[i], segment_end(i)};
    if (d < deleted.size() && deleted[d] == i) {
      removed += seg.size();
      ++d;
      continue;
    }
    if (!plan.keep.empty() && plan.keep.back().end == seg.begin) {
      plan.keep.back().end = seg.end;  // adjacent kept segments: one copy
    } else {
      plan.keep.push_back(seg);
    }
  }
  plan.new_size = file_size - removed;
  return plan;
}

std::optional<uint64_t> MapOffset(const CompactionPlan& plan, uint64_t old_offset) {
  if (old_offset < plan.start) return old_offset;
  uint64_t out = plan.start;
  for (const ByteRange& r : plan.keep) {
    if (old_offset >= r.begin && old_offset < r.end) return out + (old_offset - r.begin);
    out += r.size();
  }
  if (old_offset == plan.old_size) return plan.new_size;  // the end of the file
  return std::nullopt;
}

namespace {
constexpr std::string_view kMagic = "POPLAR-EXPUNGE-JOURNAL 1\n";
}  // namespace

std::string FormatJournalHeader(const JournalHeader& h) {
  return absl::StrCat(Absl(kMagic),
                      absl::StrFormat("device %020u\ninode %020u\nstart %020u\nold_size %020u\n"
                                      "new_size %020u\n",
                                      h.device, h.inode, h.start, h.old_size, h.new_size),
                      "prefix_hash ", h.prefix_hash.Hex(), "\nold_tail_hash ",
                      h.old_tail_hash.Hex(), "\nimage_hash ", h.image_hash.Hex(), "\nend\n");
}

absl::StatusOr<JournalHeader> ParseJournalHeader(std::string_view bytes, size_t* header_length) {
  auto bad = [](std::string_view why) {
    return absl::DataLossError(absl::StrCat("expunge journal: ", Absl(why)));
  };
  if (!bytes.starts_with(kMagic)) return bad("not a journal (magic)");
  size_t pos = kMagic.size();
  auto next_line = [&](std::string_view key, std::string_view* value) -> bool {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos || nl - pos > 200) return false;
    std::string_view line = bytes.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.starts_with(key) || line.size() < key.size() + 2 || line[key.size()] != ' ') {
      return false;
    }
    *value = line.substr(key.size() + 1);
    return true;
  };
  auto number = [&](std::string_view key, uint64_t* out) -> bool {
    std::string_view v;
    if (!next_line(key, &v)) return false;
    if (v.empty() || v.size() > 20 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    return absl::SimpleAtoi(Absl(v), out);
  };
  auto hash = [&](std::string_view key, Hash128* out) -> bool {
    std::string_view v;
    return next_line(key, &v) && v.size() == 32 && Hash128::FromHex(v, out);
  };
  JournalHeader h;
  if (!number("device", &h.device) || !number("inode", &h.inode) || !number("start", &h.start) ||
      !number("old_size", &h.old_size) || !number("new_size", &h.new_size) ||
      !hash("prefix_hash", &h.prefix_hash) || !hash("old_tail_hash", &h.old_tail_hash) ||
      !hash("image_hash", &h.image_hash)) {
    return bad("malformed or torn header");
  }
  if (bytes.substr(pos, 4) != "end\n") return bad("header not terminated");
  pos += 4;
  if (h.start > h.new_size || h.new_size > h.old_size) return bad("inconsistent sizes");
  *header_length = pos;
  return h;
}

}  // namespace poplar::mbox
