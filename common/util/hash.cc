#include "common/util/hash.h"

#include <openssl/evp.h>
#include <xxhash.h>

#include <cstdlib>

#include "common/util/check.h"
#include "common/util/hex.h"

namespace poplar {
std::string Hash128::Hex() const { return HexEncode(Bytes()); }

std::string Hash128::Bytes() const {
  std::string out(16, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(high >> (56 - 8 * i));
    out[8 + i] = static_cast<char>(low >> (56 - 8 * i));
  }
  return out;
}

bool Hash128::FromHex(std::string_view hex, Hash128* out) {
  if (hex.size() != 32) return false;
  const std::optional<std::string> bytes = HexDecode(hex);
  return bytes.has_value() && FromBytes(*bytes, out);
}

bool Hash128::FromBytes(std::string_view bytes, Hash128* out) {
  if (bytes.size() != 16) return false;
  Hash128 h;
  for (size_t i = 0; i < 16; ++i) {
    uint64_t& word = i < 8 ? h.high : h.low;
    word = (word << 8) | static_cast<unsigned char>(bytes[i]);
  }
  *out = h;
  return true;
}

Hash128 Xxh3_128(std::string_view bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return Hash128{h.high64, h.low64};
}

Xxh3Stream::Xxh3Stream() : state_(XXH3_createState()) {
  POPLAR_CHECK(state_ != nullptr, "XXH3_createState: out of memory");
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}

Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Xxh3Stream::Reset() { XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_)); }

void Xxh3Stream::Update(std::string_view bytes) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), bytes.data(), bytes.size());
}

Hash128 Xxh3Stream::Digest() const {
  XXH128_hash_t h = XXH3_128bits_digest(static_cast<const XXH3_state_t*>(state_));
  return Hash128{h.high64, h.low64};
}

Sha256Digest Sha256(std::string_view bytes) {
  Sha256Digest out{};
  unsigned int len = 0;
  // EVP_sha256() returns a static implicit-fetch method: no lookup cost per call.
  const bool done =
      EVP_Digest(bytes.data(), bytes.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 &&
      len == out.size();
  POPLAR_CHECK(done, "OpenSSL's built-in SHA-256 cannot fail on valid arguments");
  return out;
}

}  // namespace poplar
