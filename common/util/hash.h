// Digests used by the mbox core.
//
// Hash128 (XXH3-128, libxxhash) identifies message content: it is what the expunge re-verifies
// before it moves a byte, and what a UIDL folds in for the body. It is not a defence against an
// adversary who can write the mbox (such a writer already owns the mailbox), only against
// accidental change, so speed (tens of GB/s) wins over cryptographic strength.
// Sha256 (OpenSSL) is used where an attacker chooses the input and a collision would matter:
// the UIDL digest of a message's envelope and headers, which a sender controls.
#ifndef POPLAR_COMMON_UTIL_HASH_H_
#define POPLAR_COMMON_UTIL_HASH_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace poplar {

struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;
  friend bool operator==(const Hash128&, const Hash128&) = default;
  // 32 lowercase hex digits, high word first.
  std::string Hex() const;
  // The 16 bytes, high word first, big-endian (the wire form in snapshots and commits).
  std::string Bytes() const;
  static bool FromHex(std::string_view hex, Hash128* out);
  // The inverse of Bytes(); false unless exactly 16 bytes.
  static bool FromBytes(std::string_view bytes, Hash128* out);
};

Hash128 Xxh3_128(std::string_view bytes);

// Streaming XXH3-128; Digest() of a stream equals Xxh3_128() of the concatenated input.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Reset();
  void Update(std::string_view bytes);
  Hash128 Digest() const;

 private:
  void* state_;  // XXH3_state_t*, kept opaque so xxhash.h stays out of every includer
};

using Sha256Digest = std::array<uint8_t, 32>;
Sha256Digest Sha256(std::string_view bytes);

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_HASH_H_
