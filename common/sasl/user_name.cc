#include "common/sasl/user_name.h"

namespace poplar::sasl {

namespace {

// One side of the '@' (or the whole name): non-empty, [a-z0-9._+-], not starting with '.' or
// '-', no "..".
bool IsValidPart(std::string_view part) {
  if (part.empty() || part.front() == '.' || part.front() == '-') return false;
  for (char c : part) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '+' || c == '-';
    if (!ok) return false;
  }
  return part.find("..") == std::string_view::npos;
}

}  // namespace

bool IsValidUserName(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserNameBytes) return false;
  const size_t at = name.find('@');
  if (at == std::string_view::npos) return IsValidPart(name);
  return IsValidPart(name.substr(0, at)) && IsValidPart(name.substr(at + 1));
}

std::string_view UserNameDomain(std::string_view name) {
  const size_t at = name.find('@');
  return at == std::string_view::npos ? std::string_view() : name.substr(at + 1);
}

}  // namespace poplar::sasl
