#include "common/sasl/user_name.h"

namespace poplar::sasl {

bool IsValidUserName(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserNameBytes) return false;
  if (name.front() == '.' || name.front() == '-') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '+' || c == '-';
    if (!ok) return false;
  }
  return name.find("..") == std::string_view::npos;
}

}  // namespace poplar::sasl
