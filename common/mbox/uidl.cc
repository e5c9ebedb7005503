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

const UidlOptions& UidlOptionsForPath(const UidlOptions& site, std::string_view path) {
  if (site.per_spool == nullptr) return site;
  for (const SpoolUidlOptions& s : *site.per_spool) {
    if (path.size() > s.directory.size() && path.substr(0, s.directory.size()) == s.directory &&
        path[s.directory.size()] == '/') {
      return s.options;
    }
  }
  return site;
}

std::optional<QpopperUidlOptions> QpopperScanOptions(const UidlOptions& options) {
  if (options.scheme != UidlScheme::kQpopper) return std::nullopt;
  return options.qpopper;
}

std::string UidlAssigner::Assign(const MessageInfo& m, bool switched_before) {
  const bool adopt = options_.reuse_x_uidl && (switched_before || options_.trust_x_uidl);
  if (options_.scheme == UidlScheme::kQpopper) {
    if (adopt && !m.qpopper.x_uidl.empty() && TryTake(m.qpopper.x_uidl)) return m.qpopper.x_uidl;
    return TakeOrSuffix(m.qpopper.generated);
  }
  if (options_.scheme == UidlScheme::kDovecot) {
    if (!uid_validity_ && m.uid_validity) uid_validity_ = m.uid_validity;
    if (m.x_uid && uid_validity_) {
      std::string candidate = absl::StrFormat("%08X%08X", *m.x_uid, *uid_validity_);
      if (TryTake(candidate)) return candidate;
    }
  }
  if (adopt && !m.x_uidl.empty() && TryTake(m.x_uidl)) return m.x_uidl;
  return TakeOrSuffix(m.uidl_digest);
}

std::string UidlAssigner::TakeOrSuffix(const std::string& base) {
  if (TryTake(base)) return base;
  // Remember where the search stopped so that k identical messages cost O(k), not O(k^2).
  uint64_t& k = next_suffix_[base];
  if (k < 2) k = 2;
  for (;; ++k) {
    std::string candidate = absl::StrCat(base, "-", k);
    if (TryTake(candidate)) return candidate;
  }
}

}  // namespace poplar::mbox
