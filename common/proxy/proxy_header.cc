#include "common/proxy/proxy_header.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace poplar::proxy {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);

ParseResult Invalid(std::string error) {
  ParseResult r;
  r.status = ParseStatus::kInvalid;
  r.error = std::move(error);
  return r;
}

ParseResult NeedMore() {
  ParseResult r;
  r.status = ParseStatus::kNeedMore;
  return r;
}

// "0".."65535" without leading zeros.
bool ParsePort(std::string_view s, uint16_t* port) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

bool ParseIp(std::string_view s, bool v4, Address* out) {
  std::optional<net::IpAddress> a = v4 ? net::IpAddress::ParseV4(s) : net::IpAddress::ParseV6(s);
  if (!a) return false;
  out->ip = *a;
  return true;
}

ParseResult ParseV1(std::string_view bytes) {
  const size_t crlf = bytes.find("\r\n");
  if (crlf == std::string_view::npos) {
    if (bytes.size() >= kMaxV1Bytes) return Invalid("v1 header longer than 107 bytes");
    // Everything so far must be printable ASCII without a lone CR or LF.
    for (size_t i = 0; i < bytes.size(); ++i) {
      const char c = bytes[i];
      if (c == '\n' || (c == '\r' && i + 1 < bytes.size()))
        return Invalid("v1 header with a bare CR or LF");
      if (c != '\r' && (c < 0x20 || c > 0x7e))
        return Invalid("v1 header with a control or non-ASCII byte");
    }
    return NeedMore();
  }
  if (crlf + 2 > kMaxV1Bytes) return Invalid("v1 header longer than 107 bytes");
  std::string_view line = bytes.substr(kV1Prefix.size(), crlf - kV1Prefix.size());
  for (char c : line) {
    if (c < 0x20 || c > 0x7e) return Invalid("v1 header with a control or non-ASCII byte");
  }
  ParseResult r;
  r.status = ParseStatus::kComplete;
  r.header.version = 1;
  r.header.length = crlf + 2;
  if (line.substr(0, 7) == "UNKNOWN" && (line.size() == 7 || line[7] == ' '))
    return r;  // rest ignored
  // TCP4|TCP6 SP SRC SP DST SP SPORT SP DPORT, single spaces.
  std::string_view f[5];
  size_t n = 0;
  for (size_t start = 0;;) {
    const size_t sp = line.find(' ', start);
    const std::string_view field =
        line.substr(start, sp == std::string_view::npos ? sp : sp - start);
    if (field.empty() || n == 5) return Invalid("v1 header does not have 5 fields");
    f[n++] = field;
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  if (n != 5) return Invalid("v1 header does not have 5 fields");
  if (f[0] != "TCP4" && f[0] != "TCP6") return Invalid("v1 protocol is not TCP4, TCP6 or UNKNOWN");
  const bool v4 = f[0] == "TCP4";
  if (!ParseIp(f[1], v4, &r.header.source) || !ParseIp(f[2], v4, &r.header.destination)) {
    return Invalid("v1 address does not match its protocol");
  }
  if (!ParsePort(f[3], &r.header.source.port) || !ParsePort(f[4], &r.header.destination.port)) {
    return Invalid("v1 port is not 0..65535 without leading zeros");
  }
  r.header.has_address = true;
  return r;
}

uint16_t Be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

ParseResult ParseV2(std::string_view bytes) {
  if (bytes.size() < 16) return NeedMore();
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if ((b[12] >> 4) != 2) return Invalid("v2 version is not 2");
  const int command = b[12] & 0x0f;
  if (command > 1) return Invalid("v2 command is neither LOCAL nor PROXY");
  const size_t payload = Be16(b + 14);
  if (payload > kMaxV2Payload) return Invalid("v2 header longer than this server accepts");
  if (bytes.size() < 16 + payload) return NeedMore();
  ParseResult r;
  r.status = ParseStatus::kComplete;
  r.header.version = 2;
  r.header.length = 16 + payload;
  if (command == 0) return r;  // LOCAL: the balancer's own connection (health check)
  const int family = b[13] >> 4;
  const int transport = b[13] & 0x0f;
  if (family == 0) return r;  // UNSPEC: no address to use
  if (transport != 1) return Invalid("v2 transport is not STREAM");
  const unsigned char* a = b + 16;
  if (family == 1) {
    if (payload < 12) return Invalid("v2 IPv4 addresses are truncated");
    r.header.source.ip = net::IpAddress::FromV4(a);
    r.header.destination.ip = net::IpAddress::FromV4(a + 4);
    r.header.source.port = Be16(a + 8);
    r.header.destination.port = Be16(a + 10);
  } else if (family == 2) {
    if (payload < 36) return Invalid("v2 IPv6 addresses are truncated");
    r.header.source.ip = net::IpAddress::FromV6(a);
    r.header.destination.ip = net::IpAddress::FromV6(a + 16);
    r.header.source.port = Be16(a + 32);
    r.header.destination.port = Be16(a + 34);
  } else {
    return Invalid("v2 family is not INET or INET6");
  }
  r.header.has_address = true;
  return r;
}

}  // namespace

ParseResult Parse(std::string_view bytes) {
  if (bytes.empty()) return NeedMore();
  if (bytes[0] == 'P') {
    const size_t n = std::min(bytes.size(), kV1Prefix.size());
    if (bytes.substr(0, n) != kV1Prefix.substr(0, n)) return Invalid("not a PROXY header");
    if (bytes.size() < kV1Prefix.size()) return NeedMore();
    return ParseV1(bytes);
  }
  const size_t n = std::min(bytes.size(), kV2Signature.size());
  if (bytes.substr(0, n) != kV2Signature.substr(0, n)) return Invalid("not a PROXY header");
  return ParseV2(bytes);
}

}  // namespace poplar::proxy
