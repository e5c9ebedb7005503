// libFuzzer target: the SASL decoders popd and the indexer run on client bytes: strict base64
// (RFC 4648), the PLAIN message (RFC 4616), and the stored SCRAM verifier parser.
//
// Properties checked besides "no crash, no sanitizer report":
//   * base64: whatever decodes re-encodes to the same text (strict: one spelling per value),
//     and every byte string round-trips through encode/decode;
//   * PLAIN: a parsed message has no NUL inside its fields, non-empty authcid and password,
//     fields of at most 255 octets, and rebuilding it gives the input back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/sasl/base64.h"
#include "common/sasl/plain.h"
#include "common/sasl/scram.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  poplar::fuzz::ExactCopy copy(data, size);
  const std::string_view in = copy.view();

  if (std::optional<std::string> decoded = poplar::sasl::Base64Decode(in)) {
    POPLAR_FUZZ_CHECK(poplar::sasl::Base64Encode(*decoded) == in);
  }
  const std::string encoded = poplar::sasl::Base64Encode(in);
  std::optional<std::string> back = poplar::sasl::Base64Decode(encoded);
  POPLAR_FUZZ_CHECK(back.has_value() && *back == in);

  if (std::optional<poplar::sasl::PlainCredentials> c = poplar::sasl::ParsePlain(in)) {
    for (const std::string* f : {&c->authzid, &c->authcid, &c->password}) {
      POPLAR_FUZZ_CHECK(f->find('\0') == std::string::npos);
      POPLAR_FUZZ_CHECK(f->size() <= 255);
    }
    POPLAR_FUZZ_CHECK(!c->authcid.empty() && !c->password.empty());
    std::string rebuilt = c->authzid;
    rebuilt.push_back('\0');
    rebuilt += c->authcid;
    rebuilt.push_back('\0');
    rebuilt += c->password;
    POPLAR_FUZZ_CHECK(rebuilt == in);
  }

  if (std::optional<poplar::sasl::ScramVerifier> v = poplar::sasl::ParseScramVerifier(in)) {
    POPLAR_FUZZ_CHECK(poplar::sasl::IsWellFormed(*v));
  }
  return 0;
}
