// "HOST:PORT" text, the one parser and formatter of the tree (popd's listen addresses and
// indexer target, the indexer's TCP listener, poplarctl --address). Pure: the host is not
// resolved or checked beyond its shape; callers that need an address parse it
// (common/net/ip_address.h).
//
// Accepted: "name:110", "192.0.2.1:110", "[2001:db8::1]:995". An IPv6 host must be in brackets,
// so "::1:110" is refused rather than guessed at. The port is 1 to 5 decimal digits, 0..65535,
// with no sign or spaces.
#ifndef POPLAR_COMMON_UTIL_HOST_PORT_H_
#define POPLAR_COMMON_UTIL_HOST_PORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poplar {

struct HostPort {
  std::string_view host;  // without the brackets; a view into the parsed text
  uint16_t port = 0;
};

// Header-only: poplarctl uses it without linking poplar_util.
namespace host_port_internal {

inline std::optional<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

}  // namespace host_port_internal

// nullopt unless `text` has the shape above (empty host, missing or bad port, a colon in an
// unbracketed host, text after "]" other than ":PORT").
inline std::optional<HostPort> SplitHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  const std::optional<uint16_t> p = host_port_internal::ParsePort(port);
  if (!p) return std::nullopt;
  return HostPort{host, *p};
}

// "host:port", or "[host]:port" when the host contains a colon (IPv6); the inverse of
// SplitHostPort.
inline std::string JoinHostPort(std::string_view host, uint16_t port) {
  std::string out;
  const bool bracket = host.find(':') != std::string_view::npos;
  if (bracket) out.push_back('[');
  out.append(host);
  if (bracket) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_HOST_PORT_H_
