// Addresses for popd's listeners and its plaintext-login policy. Pure parsing (no sockets):
// "HOST:PORT" / "[V6]:PORT" listen addresses (common/util/host_port.h) over the shared address
// and network types (common/net/ip_address.h).
#ifndef POPLAR_POPD_NET_H_
#define POPLAR_POPD_NET_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/net/ip_address.h"

namespace poplar::popd {

using IpAddress = net::IpAddress;
using Network = net::Network;

struct Endpoint {
  IpAddress address;
  uint16_t port = 0;

  // "127.0.0.1:110", "[::1]:995", "0.0.0.0:0" (port 0: any free port). Numeric hosts only.
  static absl::StatusOr<Endpoint> Parse(std::string_view text);
  // Fills a sockaddr_in or sockaddr_in6; returns its length.
  socklen_t ToSockaddr(sockaddr_storage* out) const { return address.ToSockaddr(port, out); }
  std::string ToString() const;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_NET_H_
