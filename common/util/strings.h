// Debian 12's abseil (20220623) has its own absl::string_view, distinct from std::string_view,
// and absl::StrCat & co. accept only the former. Poplar's pure code speaks std::string_view;
// this is the one conversion point.
#ifndef POPLAR_COMMON_UTIL_STRINGS_H_
#define POPLAR_COMMON_UTIL_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace poplar {

inline absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view Std(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_STRINGS_H_
