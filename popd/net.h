// Addresses and networks for popd's listeners and its plaintext-login policy. Pure parsing
// (no sockets): "HOST:PORT" / "[V6]:PORT" listen addresses and "ADDR/PREFIX" networks.
#ifndef POPLAR_POPD_NET_H_
#define POPLAR_POPD_NET_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace poplar::popd {

// A numeric IPv4 or IPv6 address (no name resolution: a front door's config should not depend
// on DNS at start-up). IPv4 is kept as an IPv4-mapped IPv6 address so one comparison serves both.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;

  static absl::StatusOr<IpAddress> Parse(std::string_view text);
  static IpAddress FromSockaddr(const sockaddr_storage& sa);
  std::string ToString() const;
};

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;

  // "127.0.0.1:110", "[::1]:995", "0.0.0.0:0" (port 0: any free port).
  static absl::StatusOr<Endpoint> Parse(std::string_view text);
  // Fills a sockaddr_in or sockaddr_in6; returns its length.
  socklen_t ToSockaddr(sockaddr_storage* out) const;
  std::string ToString() const;
};

struct Network {
  IpAddress base;
  int prefix = 0;  // in bits of the address family as written (0..32 for IPv4, 0..128 for IPv6)

  // "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). Host bits must be zero.
  static absl::StatusOr<Network> Parse(std::string_view text);
  bool Contains(const IpAddress& a) const;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_NET_H_
