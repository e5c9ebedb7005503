// The SCRAM-SHA-256 messages (RFC 5802 §5, §7) as a server reads and writes them. Pure.
//
//   client-first  = gs2-header client-first-bare      gs2-header = ("n" / "y") ",," (no authzid,
//                   client-first-bare = "n=" saslname ",r=" c-nonce [,extensions]
//   server-first  = "r=" c-nonce s-nonce ",s=" base64(salt) ",i=" iterations
//   client-final  = "c=" base64(gs2-header) ",r=" nonce [,extensions] ",p=" base64(proof)
//   server-final  = "v=" base64(ServerSignature)
//   AuthMessage   = client-first-bare "," server-first "," client-final-without-proof
//
// Channel binding ("p=" gs2 flag) and acting as another user (an authzid) are not offered: such
// messages are refused, as is any malformed one.
#ifndef POPLAR_COMMON_SASL_SCRAM_MESSAGES_H_
#define POPLAR_COMMON_SASL_SCRAM_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poplar::sasl {

struct ScramClientFirst {
  std::string gs2_header;  // "n,," or "y,,"
  std::string user;        // saslname decoded ("=2C" -> ",", "=3D" -> "=")
  std::string nonce;       // the client's nonce
  std::string bare;        // client-first-bare, verbatim (part of AuthMessage)
};
std::optional<ScramClientFirst> ParseScramClientFirst(std::string_view message);

std::string ScramServerFirst(std::string_view nonce, std::string_view salt, uint32_t iterations);

struct ScramClientFinal {
  std::string channel_binding;  // decoded c= value
  std::string nonce;
  std::string proof;          // decoded p= value (raw bytes)
  std::string without_proof;  // verbatim, up to (not including) ",p="
};
std::optional<ScramClientFinal> ParseScramClientFinal(std::string_view message);

std::string ScramServerFinal(std::string_view server_signature);

}  // namespace poplar::sasl

#endif  // POPLAR_COMMON_SASL_SCRAM_MESSAGES_H_
