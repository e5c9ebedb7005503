#include "common/sasl/scram_messages.h"

#include "common/sasl/base64.h"

namespace poplar::sasl {
namespace {

// printable = %x21-2B / %x2D-7E (no comma), as RFC 5802 requires of nonces.
bool IsPrintableNonce(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::optional<std::string> DecodeSaslName(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',') return std::nullopt;
    if (s[i] != '=') {
      out.push_back(s[i]);
      continue;
    }
    const std::string_view esc = s.substr(i, 3);
    if (esc == "=2C") {
      out.push_back(',');
    } else if (esc == "=3D") {
      out.push_back('=');
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  if (out.empty() || out.find('\0') != std::string::npos) return std::nullopt;
  return out;
}

}  // namespace

std::optional<ScramClientFirst> ParseScramClientFirst(std::string_view m) {
  // gs2-header: cbind flag "n" or "y" (never "p="), then an empty authzid.
  if (m.size() < 3 || (m[0] != 'n' && m[0] != 'y') || m.substr(1, 2) != ",,") return std::nullopt;
  ScramClientFirst out;
  out.gs2_header = std::string(m.substr(0, 3));
  const std::string_view bare = m.substr(3);
  out.bare = std::string(bare);
  if (!bare.starts_with("n=")) return std::nullopt;  // "m=" (mandatory extension) refused too
  const size_t comma = bare.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  std::optional<std::string> user = DecodeSaslName(bare.substr(2, comma - 2));
  if (!user) return std::nullopt;
  out.user = std::move(*user);
  std::string_view rest = bare.substr(comma + 1);
  if (!rest.starts_with("r=")) return std::nullopt;
  const size_t end = rest.find(',');
  out.nonce =
      std::string(rest.substr(2, end == std::string_view::npos ? std::string_view::npos : end - 2));
  if (!IsPrintableNonce(out.nonce)) return std::nullopt;
  return out;
}

std::string ScramServerFirst(std::string_view nonce, std::string_view salt, uint32_t iterations) {
  std::string out = "r=";
  out.append(nonce);
  out += ",s=" + Base64Encode(salt) + ",i=" + std::to_string(iterations);
  return out;
}

std::optional<ScramClientFinal> ParseScramClientFinal(std::string_view m) {
  const size_t p = m.rfind(",p=");
  if (p == std::string_view::npos) return std::nullopt;
  ScramClientFinal out;
  out.without_proof = std::string(m.substr(0, p));
  std::optional<std::string> proof = Base64Decode(m.substr(p + 3));
  if (!proof || proof->empty()) return std::nullopt;
  out.proof = std::move(*proof);
  const std::string_view head = m.substr(0, p);
  if (!head.starts_with("c=")) return std::nullopt;
  const size_t comma = head.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  std::optional<std::string> cb = Base64Decode(head.substr(2, comma - 2));
  if (!cb) return std::nullopt;
  out.channel_binding = std::move(*cb);
  const std::string_view rest = head.substr(comma + 1);
  if (!rest.starts_with("r=")) return std::nullopt;
  const size_t end = rest.find(',');
  out.nonce =
      std::string(rest.substr(2, end == std::string_view::npos ? std::string_view::npos : end - 2));
  if (!IsPrintableNonce(out.nonce)) return std::nullopt;
  return out;
}

std::string ScramServerFinal(std::string_view server_signature) {
  return "v=" + Base64Encode(server_signature);
}

}  // namespace poplar::sasl
