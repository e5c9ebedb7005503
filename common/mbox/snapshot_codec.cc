#include "common/mbox/snapshot_codec.h"

#include "absl/strings/str_cat.h"
#include "common/mbox/uidl.h"
#include "common/util/check.h"

namespace poplar::mbox {

void AppendUidls(std::string* column, size_t count_before, std::string_view joined) {
  if (joined.empty()) return;
  if (count_before > 0) column->push_back(kSnapshotUidlSeparator);
  column->append(joined);
}

void AppendHash(std::string* column, std::string_view hash) {
  POPLAR_CHECK(hash.size() == kSnapshotHashBytes, "a content hash is 16 bytes");
  column->append(hash);
}

std::string_view UidlSlice(std::string_view column, size_t begin, size_t end) {
  if (begin >= end) return {};
  // UIDL i starts after the i-th separator.
  size_t first = 0;
  for (size_t i = 0; i < begin; ++i) {
    const size_t sep = column.find(kSnapshotUidlSeparator, first);
    POPLAR_CHECK(sep != std::string_view::npos, "UidlSlice past the column's end");
    first = sep + 1;
  }
  size_t last = first;  // one past the separator after UIDL i (or column.size() + 1)
  for (size_t i = begin; i < end; ++i) {
    const size_t sep = column.find(kSnapshotUidlSeparator, last);
    last = sep == std::string_view::npos ? column.size() + 1 : sep + 1;
  }
  return column.substr(first, last - 1 - first);
}

std::string_view HashSlice(std::string_view column, size_t begin, size_t end) {
  if (begin >= end) return {};
  return column.substr(kSnapshotHashBytes * begin, kSnapshotHashBytes * (end - begin));
}

std::string_view HashAt(std::string_view column, size_t i) { return HashSlice(column, i, i + 1); }

absl::StatusOr<std::vector<std::string_view>> DecodeUidls(std::string_view column, size_t count) {
  std::vector<std::string_view> out;
  if (count == 0) {
    if (!column.empty()) return absl::InvalidArgumentError("more UIDLs than messages");
    return out;
  }
  out.reserve(count);
  size_t pos = 0;
  for (size_t i = 0; i < count; ++i) {
    if (pos > column.size()) {
      return absl::InvalidArgumentError(absl::StrCat("message ", i + 1, " has no UIDL"));
    }
    size_t end = column.find(kSnapshotUidlSeparator, pos);
    if (end == std::string_view::npos) end = column.size();
    const std::string_view uidl = column.substr(pos, end - pos);
    if (!IsValidUidl(uidl)) {
      return absl::InvalidArgumentError(absl::StrCat("message ", i + 1, " has an invalid UIDL"));
    }
    out.push_back(uidl);
    pos = end + 1;
  }
  if (pos != column.size() + 1) return absl::InvalidArgumentError("more UIDLs than messages");
  return out;
}

absl::Status CheckHashes(std::string_view column, size_t count) {
  if (column.size() != kSnapshotHashBytes * count) {
    return absl::InvalidArgumentError("content hashes are not 16 bytes each");
  }
  return absl::OkStatus();
}

}  // namespace poplar::mbox
