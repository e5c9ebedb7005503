#include "common/sasl/base64.h"

#include <openssl/evp.h>

#include <climits>
#include <cstdlib>

#include "common/util/check.h"

namespace poplar::sasl {
namespace {

// Value of a base64 alphabet character, or -1.
int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// EVP_*Block take int lengths; callers in Poplar never come near this (SASL lines are capped at
// 8 KiB), so exceeding it is treated as malformed input rather than split into chunks.
constexpr size_t kMaxDecodedBytes = (INT_MAX / 4) * 3;

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  if (bytes.empty()) return std::string();
  POPLAR_CHECK(bytes.size() <= kMaxDecodedBytes, "Base64Encode input over kMaxDecodedBytes");
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // + NUL that EncodeBlock writes
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.empty()) return std::string();
  if (text.size() % 4 != 0 || text.size() / 4 * 3 > kMaxDecodedBytes) return std::nullopt;
  size_t padding = 0;
  if (text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  const size_t data_chars = text.size() - padding;
  for (size_t i = 0; i < data_chars; ++i) {
    if (Base64Value(text[i]) < 0) return std::nullopt;  // also rejects '=' before the end
  }
  // Canonical form: the bits of the last data character that padding leaves unused are zero
  // (otherwise "QQ==" and "QR==" would both decode to "A").
  const int last = Base64Value(text[data_chars - 1]);
  if ((padding == 2 && (last & 0x0f) != 0) || (padding == 1 && (last & 0x03) != 0)) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);  // DecodeBlock counts the padding as zero bytes
  return out;
}

}  // namespace poplar::sasl
