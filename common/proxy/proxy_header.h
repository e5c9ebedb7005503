// The PROXY protocol header (HAProxy, versions 1 and 2) that a load balancer sends before the
// client's own bytes, so that a server behind it sees the real client address (design §7:
// per-IP limits and logs). Pure: bytes in, a parsed header out; no sockets.
//
// The caller peeks at the start of a connection and calls Parse on everything it has so far:
//  * kNeedMore: every byte seen is still a possible header prefix and fewer than kMaxBytes;
//    read more (the bytes seen are all header, so they may be consumed);
//  * kComplete: `header.length` bytes are the header; what follows is the client's (a TLS
//    ClientHello may already be there: it must not be consumed);
//  * kInvalid: not a PROXY header, or one this server refuses; `error` says why (printable
//    text only, safe to log).
// Accepted: v1 "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" and "PROXY UNKNOWN ...\r\n" (at most
// 107 bytes, strict single spaces, addresses as inet_pton reads them, ports without leading
// zeros); v2 with the 12-byte signature, version 2, LOCAL or PROXY, and for PROXY the families
// TCP over IPv4, TCP over IPv6 or UNSPEC. TLVs after the addresses are skipped. LOCAL, UNKNOWN
// and UNSPEC carry no client address (`has_address` false: health checks of the balancer
// itself), and the caller keeps the connection's own. UDP and unix-socket families are refused
// (a POP3 listener is TCP).
#ifndef POPLAR_COMMON_PROXY_PROXY_HEADER_H_
#define POPLAR_COMMON_PROXY_PROXY_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/net/ip_address.h"

namespace poplar::proxy {

inline constexpr size_t kMaxV1Bytes = 107;  // the spec's bound, CRLF included
// v2: 16 bytes, then up to this many of addresses and TLVs (the spec allows 65535; a balancer
// sends a few hundred at most).
inline constexpr size_t kMaxV2Payload = 2048;
inline constexpr size_t kMaxBytes = 16 + kMaxV2Payload;

struct Address {
  net::IpAddress ip;  // as the header carries it: a v2 INET6 block may hold ::ffff:a.b.c.d
  uint16_t port = 0;
};

struct Header {
  int version = 0;           // 1 or 2
  bool has_address = false;  // false: LOCAL, UNKNOWN or UNSPEC
  Address source;            // the client
  Address destination;       // the address the client connected to (the balancer's)
  size_t length = 0;         // bytes the header takes
};

enum class ParseStatus { kNeedMore, kComplete, kInvalid };

struct ParseResult {
  ParseStatus status = ParseStatus::kInvalid;
  Header header;
  std::string error;
};

ParseResult Parse(std::string_view bytes);

}  // namespace poplar::proxy

#endif  // POPLAR_COMMON_PROXY_PROXY_HEADER_H_
