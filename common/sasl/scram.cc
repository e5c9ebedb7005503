#include "common/sasl/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <climits>
#include <cstdlib>

#include "common/sasl/base64.h"
#include "common/util/check.h"

namespace poplar::sasl {
namespace {

constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

bool FitsInt(std::string_view s) { return s.size() <= static_cast<size_t>(INT_MAX); }

// Wipes an intermediate secret (SaltedPassword, ClientKey) before it is freed.
void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

std::string Xor(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size(); ++i) out[i] = static_cast<char>(a[i] ^ b[i]);
  return out;
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  POPLAR_CHECK(FitsInt(key), "HMAC key longer than INT_MAX");
  std::string out(kSha256Bytes, '\0');
  unsigned int len = 0;
  // One-shot HMAC() is not deprecated in 3.0 (only HMAC_CTX_* is); EVP_sha256() is the
  // implicitly fetched default-provider digest.
  const bool done =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), Bytes(data), data.size(),
           reinterpret_cast<unsigned char*>(out.data()), &len) != nullptr &&
      len == kSha256Bytes;
  POPLAR_CHECK(done, "HMAC-SHA-256 cannot fail with the built-in SHA-256 and valid arguments");
  return out;
}

std::string Sha256Bytes(std::string_view data) {
  std::string out(kSha256Bytes, '\0');
  unsigned int len = 0;
  const bool done =
      EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                 EVP_sha256(), nullptr) == 1 &&
      len == kSha256Bytes;
  POPLAR_CHECK(done, "SHA-256 cannot fail with the built-in digest and valid arguments");
  return out;
}

std::string SaltedPassword(std::string_view password, std::string_view salt, uint32_t iterations) {
  POPLAR_CHECK(
      iterations >= 1 && iterations <= kMaxScramIterations && FitsInt(password) && FitsInt(salt),
      "SaltedPassword preconditions (scram.h): 1..kMaxScramIterations, int lengths");
  std::string out(kSha256Bytes, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), Bytes(salt),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    POPLAR_UNREACHABLE("PBKDF2-HMAC-SHA-256 cannot fail with valid arguments");
  }
  return out;
}

ScramVerifier MakeScramVerifier(std::string_view password, std::string_view salt,
                                uint32_t iterations) {
  POPLAR_CHECK(iterations >= kMinScramIterations && iterations <= kMaxScramIterations &&
                   !salt.empty() && salt.size() <= kMaxScramSaltBytes && !HasNul(password),
               "MakeScramVerifier preconditions (scram.h)");
  std::string salted = SaltedPassword(password, salt, iterations);
  std::string client_key = HmacSha256(salted, "Client Key");
  ScramVerifier v;
  v.salt = std::string(salt);
  v.iterations = iterations;
  v.stored_key = Sha256Bytes(client_key);
  v.server_key = HmacSha256(salted, "Server Key");
  Wipe(&client_key);
  Wipe(&salted);
  return v;
}

bool IsWellFormed(const ScramVerifier& v) {
  return !v.salt.empty() && v.salt.size() <= kMaxScramSaltBytes &&
         v.iterations >= kMinScramIterations && v.iterations <= kMaxScramIterations &&
         v.stored_key.size() == kSha256Bytes && v.server_key.size() == kSha256Bytes;
}

bool VerifyPlainPassword(const ScramVerifier& v, std::string_view password) {
  if (!IsWellFormed(v) || !FitsInt(password) || HasNul(password)) return false;
  std::string salted = SaltedPassword(password, v.salt, v.iterations);
  std::string client_key = HmacSha256(salted, "Client Key");
  std::string stored_key = Sha256Bytes(client_key);
  bool ok = ConstantTimeEquals(stored_key, v.stored_key);
  Wipe(&client_key);
  Wipe(&salted);
  return ok;
}

std::string ClientSignature(std::string_view stored_key, std::string_view auth_message) {
  return HmacSha256(stored_key, auth_message);
}

std::string ServerSignature(std::string_view server_key, std::string_view auth_message) {
  return HmacSha256(server_key, auth_message);
}

std::string ClientProof(std::string_view client_key, std::string_view stored_key,
                        std::string_view auth_message) {
  POPLAR_CHECK(client_key.size() == kSha256Bytes, "a client key is a SHA-256 output");
  return Xor(client_key, ClientSignature(stored_key, auth_message));
}

bool VerifyClientProof(const ScramVerifier& v, std::string_view auth_message,
                       std::string_view proof) {
  if (!IsWellFormed(v) || proof.size() != kSha256Bytes) return false;
  std::string client_key = Xor(proof, ClientSignature(v.stored_key, auth_message));
  bool ok = ConstantTimeEquals(Sha256Bytes(client_key), v.stored_key);
  Wipe(&client_key);
  return ok;
}

std::string EncodeScramVerifier(const ScramVerifier& v) {
  POPLAR_CHECK(IsWellFormed(v), "EncodeScramVerifier requires IsWellFormed (scram.h)");
  std::string out(kScramPrefix);
  out += std::to_string(v.iterations);
  out += ':';
  out += Base64Encode(v.salt);
  out += '$';
  out += Base64Encode(v.stored_key);
  out += ':';
  out += Base64Encode(v.server_key);
  return out;
}

std::optional<ScramVerifier> ParseScramVerifier(std::string_view text) {
  if (!text.starts_with(kScramPrefix)) return std::nullopt;
  text.remove_prefix(kScramPrefix.size());
  // <iter>:<salt>$<stored>:<server>; base64 has no ':' or '$', so each split is unambiguous.
  size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  std::string_view params = text.substr(0, dollar);
  std::string_view keys = text.substr(dollar + 1);
  size_t colon1 = params.find(':');
  size_t colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) return std::nullopt;
  std::string_view iter_text = params.substr(0, colon1);

  // Digits only, no leading zero; from_chars alone would accept a trailing remainder.
  if (iter_text.empty() || iter_text.size() > 10 || iter_text[0] == '0') return std::nullopt;
  for (char c : iter_text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t iterations = 0;
  auto [end, ec] =
      std::from_chars(iter_text.data(), iter_text.data() + iter_text.size(), iterations);
  if (ec != std::errc() || end != iter_text.data() + iter_text.size()) return std::nullopt;
  if (iterations > UINT32_MAX) return std::nullopt;

  std::optional<std::string> salt = Base64Decode(params.substr(colon1 + 1));
  std::optional<std::string> stored = Base64Decode(keys.substr(0, colon2));
  std::optional<std::string> server = Base64Decode(keys.substr(colon2 + 1));
  if (!salt || !stored || !server) return std::nullopt;  // includes stray '$' or ':'
  ScramVerifier v{std::move(*salt), static_cast<uint32_t>(iterations), std::move(*stored),
                  std::move(*server)};
  if (!IsWellFormed(v)) return std::nullopt;
  return v;
}

}  // namespace poplar::sasl
