#include "common/sasl/challenge.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

#include "common/util/check.h"
#include "common/util/hex.h"

namespace poplar::sasl {
namespace {

std::string Hex(const unsigned char* bytes, unsigned int n) {
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), n));
}

}  // namespace

std::string ApopDigest(std::string_view challenge, std::string_view secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, challenge.data(), challenge.size()) != 1 ||
      EVP_DigestUpdate(ctx, secret.data(), secret.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, md, &n) != 1) {
    // MD5 missing from libcrypto: a broken installation, not an input problem.
    POPLAR_UNREACHABLE("MD5 digest failed (libcrypto without MD5?)");
  }
  EVP_MD_CTX_free(ctx);
  return Hex(md, n);
}

std::string CramMd5Digest(std::string_view challenge, std::string_view secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (HMAC(EVP_md5(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(challenge.data()), challenge.size(), md,
           &n) == nullptr) {
    POPLAR_UNREACHABLE("HMAC-MD5 failed (libcrypto without MD5?)");
  }
  return Hex(md, n);
}

}  // namespace poplar::sasl
