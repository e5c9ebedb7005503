#include "common/sasl/plain.h"

namespace poplar::sasl {

std::optional<PlainCredentials> ParsePlain(std::string_view message) {
  const size_t first = message.find('\0');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = message.find('\0', first + 1);
  if (second == std::string_view::npos ||
      message.find('\0', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  PlainCredentials c;
  c.authzid = std::string(message.substr(0, first));
  c.authcid = std::string(message.substr(first + 1, second - first - 1));
  c.password = std::string(message.substr(second + 1));
  constexpr size_t kMax = 255;
  if (c.authcid.empty() || c.password.empty() || c.authzid.size() > kMax ||
      c.authcid.size() > kMax || c.password.size() > kMax) {
    return std::nullopt;
  }
  return c;
}

}  // namespace poplar::sasl
