#include "common/net/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/util/strings.h"

namespace poplar::net {
namespace {

constexpr int kV4MappedPrefix = 96;  // ::ffff:0:0/96
constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// inet_pton wants a NUL-terminated string; the longest IPv6 text is 45 characters.
bool Pton(int family, std::string_view text, void* out) {
  if (text.empty() || text.size() > 45) return false;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return ::inet_pton(family, buf, out) == 1;
}

}  // namespace

IpAddress IpAddress::FromV4(const uint8_t bytes[4]) {
  IpAddress a;
  a.v4_ = true;
  std::memcpy(a.bytes_.data(), kMapped, 12);
  std::memcpy(&a.bytes_[12], bytes, 4);
  return a;
}

IpAddress IpAddress::FromV6(const uint8_t bytes[16]) {
  IpAddress a;
  std::memcpy(a.bytes_.data(), bytes, 16);
  return a;
}

std::optional<IpAddress> IpAddress::ParseV4(std::string_view text) {
  uint8_t b[4];
  if (!Pton(AF_INET, text, b)) return std::nullopt;
  return FromV4(b);
}

std::optional<IpAddress> IpAddress::ParseV6(std::string_view text) {
  uint8_t b[16];
  if (!Pton(AF_INET6, text, b)) return std::nullopt;
  return FromV6(b);
}

absl::StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  if (std::optional<IpAddress> a = ParseV4(text)) return *a;
  if (std::optional<IpAddress> a = ParseV6(text)) return *a;
  return absl::InvalidArgumentError(absl::StrCat("not a numeric IP address: \"", Absl(text), "\""));
}

IpAddress IpAddress::FromSockaddr(const sockaddr_storage& sa) {
  if (sa.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
    return FromV4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
  }
  if (sa.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
    return FromV6(reinterpret_cast<const uint8_t*>(&in6->sin6_addr)).Unmapped();
  }
  return IpAddress();
}

IpAddress IpAddress::Unmapped() const {
  IpAddress a = *this;
  if (!v4_ && std::memcmp(bytes_.data(), kMapped, 12) == 0) a.v4_ = true;
  return a;
}

bool IpAddress::IsLoopback() const {
  if (v4_) return bytes_[12] == 127;
  static constexpr Bytes kLoopback6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return bytes_ == kLoopback6;
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4_) {
    ::inet_ntop(AF_INET, &bytes_[12], buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  }
  return buf;
}

socklen_t IpAddress::ToSockaddr(uint16_t port, sockaddr_storage* out) const {
  std::memset(out, 0, sizeof *out);
  if (v4_) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, &bytes_[12], 4);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  std::memcpy(&in6->sin6_addr, bytes_.data(), 16);
  return sizeof(sockaddr_in6);
}

absl::StatusOr<Network> Network::Parse(std::string_view text) {
  const size_t slash = text.find('/');
  absl::StatusOr<IpAddress> a = IpAddress::Parse(text.substr(0, slash));
  if (!a.ok()) return a.status();
  Network n;
  n.base = *a;
  const int max = a->is_v4() ? 32 : 128;
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
  const IpAddress::Bytes& b = n.base.bytes();
  const int bits = n.base.is_v4() ? n.prefix + kV4MappedPrefix : n.prefix;
  for (int i = bits; i < 128; ++i) {
    if (b[i / 8] & (0x80 >> (i % 8))) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", Absl(text), "\" has host bits set beyond its prefix"));
    }
  }
  return n;
}

bool Network::Contains(const IpAddress& a) const {
  if (a.is_v4() != base.is_v4()) return false;
  const int bits = base.is_v4() ? prefix + kV4MappedPrefix : prefix;
  const IpAddress::Bytes& x = a.bytes();
  const IpAddress::Bytes& y = base.bytes();
  for (int i = 0; i < bits; ++i) {
    const uint8_t mask = 0x80 >> (i % 8);
    if ((x[i / 8] & mask) != (y[i / 8] & mask)) return false;
  }
  return true;
}

}  // namespace poplar::net
