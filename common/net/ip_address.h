// IP addresses and networks, the one type popd (client addresses, per-IP caps, allowed and
// trusted networks) and common/proxy (the PROXY header's client) share. Pure: numeric text and
// socket-address structs in and out, no name resolution (a front door's configuration should not
// depend on DNS at start-up) and no syscalls.
//
// Both families live in one 16-byte form: IPv4 a.b.c.d as the IPv4-mapped ::ffff:a.b.c.d with
// is_v4() true, so one comparison and one map key serve both. An address keeps the family it
// was written or received in; Unmapped() is the normalisation a server applies to a peer (a v4
// client on a dual-stack socket, or in a PROXY v2 INET6 block, arrives as ::ffff:a.b.c.d and is
// an IPv4 client). Parse does not normalise: "::ffff:127.0.0.1" in a configuration stays IPv6
// text, which is what the indexer's loopback rule relies on.
#ifndef POPLAR_COMMON_NET_IP_ADDRESS_H_
#define POPLAR_COMMON_NET_IP_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace poplar::net {

class IpAddress {
 public:
  using Bytes = std::array<uint8_t, 16>;

  IpAddress() = default;  // :: (IPv6 unspecified)

  // Numeric IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1") text, as inet_pton reads it.
  static absl::StatusOr<IpAddress> Parse(std::string_view text);
  // One family only (the PROXY v1 header says which); nullopt if `text` is not of it.
  static std::optional<IpAddress> ParseV4(std::string_view text);
  static std::optional<IpAddress> ParseV6(std::string_view text);
  // From network-order bytes (4 or 16 of them).
  static IpAddress FromV4(const uint8_t bytes[4]);
  static IpAddress FromV6(const uint8_t bytes[16]);
  // From an AF_INET or AF_INET6 socket address, Unmapped(); any other family gives ::.
  static IpAddress FromSockaddr(const sockaddr_storage& sa);

  bool is_v4() const { return v4_; }
  // The 16-byte form (IPv4 mapped), network order.
  const Bytes& bytes() const { return bytes_; }
  // An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address unchanged.
  IpAddress Unmapped() const;
  // 127.0.0.0/8 or ::1 (not ::ffff:127.0.0.1, which is only loopback once Unmapped()).
  bool IsLoopback() const;

  // "192.0.2.1", "2001:db8::1" (inet_ntop's canonical text).
  std::string ToString() const;
  // A sockaddr_in or sockaddr_in6 with `port`; returns its length.
  socklen_t ToSockaddr(uint16_t port, sockaddr_storage* out) const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  Bytes bytes_{};
  bool v4_ = false;
};

// A prefix of one family: "10.0.0.0/8", "2001:db8::/32", or a bare address (/32 or /128).
struct Network {
  IpAddress base;
  int prefix = 0;  // in bits of the family as written (0..32 for IPv4, 0..128 for IPv6)

  // Host bits beyond the prefix must be zero (set ones are almost always a typo).
  static absl::StatusOr<Network> Parse(std::string_view text);
  // Families never mix: an IPv4 network holds no IPv6 address and the reverse.
  bool Contains(const IpAddress& a) const;
};

}  // namespace poplar::net

#endif  // POPLAR_COMMON_NET_IP_ADDRESS_H_
