#include "common/mbox/uidl.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace poplar::mbox {

bool IsValidUidl(std::string_view uidl) {
  if (uidl.empty() || uidl.size() > 70) return false;
  return std::all_of(uidl.begin(), uidl.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

bool UidlAssigner::TryTake(const std::string& candidate) {
  if (!IsValidUidl(candidate)) return false;
  if (used_.contains(candidate)) return false;
  if (reserved_lookup_ && reserved_lookup_(candidate)) return false;
  used_.insert(candidate);
  return true;
}

std::string UidlAssigner::Assign(const MessageInfo& m) {
  if (options_.scheme == UidlScheme::kDovecot) {
    if (!uid_validity_ && m.uid_validity) uid_validity_ = m.uid_validity;
    if (m.x_uid && uid_validity_) {
      std::string candidate = absl::StrFormat("%08X%08X", *m.x_uid, *uid_validity_);
      if (TryTake(candidate)) return candidate;
    }
  }
  if (options_.reuse_x_uidl && !m.x_uidl.empty() && TryTake(m.x_uidl)) return m.x_uidl;
  if (TryTake(m.uidl_digest)) return m.uidl_digest;
  // Remember where the search stopped so that k identical messages cost O(k), not O(k^2).
  uint64_t& k = next_suffix_[m.uidl_digest];
  if (k < 2) k = 2;
  for (;; ++k) {
    std::string candidate = absl::StrCat(m.uidl_digest, "-", k);
    if (TryTake(candidate)) return candidate;
  }
}

}  // namespace poplar::mbox
