// The challenge-response digests of APOP (RFC 1939 §7) and CRAM-MD5 (RFC 2195), both over a
// plaintext-equivalent secret: MD5(challenge || secret) and HMAC-MD5(secret, challenge), as 32
// lowercase hex digits. MD5 here is the protocols' choice, not Poplar's; accounts opt in to
// keeping such a secret (Qpopper's popauth). Pure (OpenSSL libcrypto only).
#ifndef POPLAR_COMMON_SASL_CHALLENGE_H_
#define POPLAR_COMMON_SASL_CHALLENGE_H_

#include <string>
#include <string_view>

namespace poplar::sasl {

std::string ApopDigest(std::string_view challenge, std::string_view secret);
std::string CramMd5Digest(std::string_view challenge, std::string_view secret);

}  // namespace poplar::sasl

#endif  // POPLAR_COMMON_SASL_CHALLENGE_H_
