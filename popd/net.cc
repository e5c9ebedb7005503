#include "popd/net.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/util/strings.h"

namespace poplar::popd {
namespace {

constexpr int kV4MappedPrefix = 96;  // ::ffff:0:0/96

}  // namespace

absl::StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  const std::string s(text);
  IpAddress a;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a.v4 = true;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    return a;
  }
  return absl::InvalidArgumentError(absl::StrCat("not a numeric IP address: \"", Absl(text), "\""));
}

IpAddress IpAddress::FromSockaddr(const sockaddr_storage& sa) {
  IpAddress a;
  if (sa.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    a.v4 = true;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], &in->sin_addr, 4);
  } else if (sa.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    std::memcpy(a.bytes.data(), &in6->sin6_addr, 16);
    // A v4 client on a dual-stack socket arrives as ::ffff:a.b.c.d; treat it as IPv4.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    a.v4 = std::memcmp(a.bytes.data(), kMapped, 12) == 0;
  }
  return a;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, &bytes[12], buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

absl::StatusOr<Endpoint> Endpoint::Parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected [IPV6]:PORT, got \"", Absl(text), "\""));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected HOST:PORT, got \"", Absl(text), "\""));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  Endpoint e;
  absl::StatusOr<IpAddress> a = IpAddress::Parse(host);
  if (!a.ok()) return a.status();
  uint32_t p = 0;
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(Absl(port), &p) || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in \"", Absl(text), "\""));
  }
  e.address = *a;
  e.port = static_cast<uint16_t>(p);
  return e;
}

socklen_t Endpoint::ToSockaddr(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof *out);
  if (address.v4) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, &address.bytes[12], 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

std::string Endpoint::ToString() const {
  if (address.v4) return absl::StrCat(address.ToString(), ":", port);
  return absl::StrCat("[", address.ToString(), "]:", port);
}

absl::StatusOr<Network> Network::Parse(std::string_view text) {
  const size_t slash = text.find('/');
  absl::StatusOr<IpAddress> a = IpAddress::Parse(text.substr(0, slash));
  if (!a.ok()) return a.status();
  Network n;
  n.base = *a;
  const int max = a->v4 ? 32 : 128;
  n.prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    int value = -1;
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string_view::npos ||
        !absl::SimpleAtoi(Absl(p), &value) || value > max) {
      return absl::InvalidArgumentError(absl::StrCat("bad prefix length in \"", Absl(text), "\""));
    }
    n.prefix = value;
  }
  // Host bits set is almost always a typo for a different network: refuse it.
  const int bits = n.base.v4 ? n.prefix + kV4MappedPrefix : n.prefix;
  for (int i = bits; i < 128; ++i) {
    if (n.base.bytes[i / 8] & (0x80 >> (i % 8))) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", Absl(text), "\" has host bits set beyond its prefix"));
    }
  }
  return n;
}

bool Network::Contains(const IpAddress& a) const {
  if (a.v4 != base.v4) return false;
  const int bits = base.v4 ? prefix + kV4MappedPrefix : prefix;
  for (int i = 0; i < bits; ++i) {
    const uint8_t mask = 0x80 >> (i % 8);
    if ((a.bytes[i / 8] & mask) != (base.bytes[i / 8] & mask)) return false;
  }
  return true;
}

}  // namespace poplar::popd
