// The PLAIN SASL message (RFC 4616): [authzid] NUL authcid NUL passwd, after base64 decoding.
// Pure.
#ifndef POPLAR_COMMON_SASL_PLAIN_H_
#define POPLAR_COMMON_SASL_PLAIN_H_

#include <optional>
#include <string>
#include <string_view>

namespace poplar::sasl {

struct PlainCredentials {
  std::string authzid;   // empty unless the client asks to act as someone else
  std::string authcid;   // the login name
  std::string password;  // secret
};

// nullopt unless there are exactly two NULs, a non-empty authcid and a non-empty password
// (RFC 4616 §2: 1*SAFE for both), each at most 255 octets.
std::optional<PlainCredentials> ParsePlain(std::string_view message);

}  // namespace poplar::sasl

#endif  // POPLAR_COMMON_SASL_PLAIN_H_
