// SCRAM-SHA-256 (RFC 5802, RFC 7677) arithmetic: verifiers, proofs and signatures. Pure: no I/O,
// no randomness (callers pass the salt), no globals. OpenSSL 3.0 non-deprecated APIs only.
//
//   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, i)      ("Hi()" in RFC 5802)
//   ClientKey       = HMAC(SaltedPassword, "Client Key")
//   StoredKey       = H(ClientKey)
//   ServerKey       = HMAC(SaltedPassword, "Server Key")
//   ClientSignature = HMAC(StoredKey, AuthMessage)
//   ClientProof     = ClientKey XOR ClientSignature
//   ServerSignature = HMAC(ServerKey, AuthMessage)
//
// A server keeps only {salt, i, StoredKey, ServerKey}: enough to check a proof (or a plaintext
// password from USER/PASS or SASL PLAIN), not enough to log in as the user elsewhere without
// brute-forcing PBKDF2.
//
// HMAC pads its key with zero bytes, so PBKDF2-HMAC cannot tell "pw" from "pw\0": passwords
// containing NUL are refused (SASLprep prohibits U+0000 too).
//
// Passwords are taken as the octets given (UTF-8 from the wire). RFC 5802 asks for SASLprep
// first; that is not implemented here. For printable ASCII passwords SASLprep is the identity,
// so only passwords with non-ASCII or control characters could disagree with a client that
// normalises (PostgreSQL makes the same compromise when SASLprep fails).
#ifndef POPLAR_COMMON_SASL_SCRAM_H_
#define POPLAR_COMMON_SASL_SCRAM_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poplar::sasl {

inline constexpr size_t kSha256Bytes = 32;
// RFC 7677 §4: the iteration count SHOULD be at least 4096. Stored verifiers below it are
// refused; above kMaxScramIterations is treated as a corrupt (or hostile) record, because each
// login would burn seconds of CPU.
inline constexpr uint32_t kMinScramIterations = 4096;
inline constexpr uint32_t kMaxScramIterations = 10'000'000;
// Salts are random bytes chosen by the server; 16 is what Poplar (and PostgreSQL) make. A
// parsed salt must be 1..kMaxScramSaltBytes long.
inline constexpr size_t kScramSaltBytes = 16;
inline constexpr size_t kMaxScramSaltBytes = 64;

// All byte fields are raw bytes, not base64.
struct ScramVerifier {
  std::string salt;
  uint32_t iterations = 0;
  std::string stored_key;  // H(ClientKey), 32 bytes
  std::string server_key;  // HMAC(SaltedPassword, "Server Key"), 32 bytes
  friend bool operator==(const ScramVerifier&, const ScramVerifier&) = default;
};

// Raw 32-byte HMAC-SHA-256 and SHA-256.
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Sha256Bytes(std::string_view data);

// PBKDF2-HMAC-SHA-256 with a 32-byte output. Preconditions (POPLAR_CHECK otherwise, these are
// programming errors): 1 <= iterations <= kMaxScramIterations, password and salt shorter than
// 2^31 bytes.
std::string SaltedPassword(std::string_view password, std::string_view salt, uint32_t iterations);

// The result IsWellFormed. Preconditions (POPLAR_CHECK otherwise): kMinScramIterations <=
// iterations <= kMaxScramIterations, salt 1..kMaxScramSaltBytes, password shorter than 2^31
// and without NUL.
ScramVerifier MakeScramVerifier(std::string_view password, std::string_view salt,
                                uint32_t iterations);

// Shape check of a verifier from anywhere (e.g. built by hand): salt 1..kMaxScramSaltBytes,
// iterations in [kMinScramIterations, kMaxScramIterations], both keys 32 bytes.
bool IsWellFormed(const ScramVerifier& v);

// Recomputes StoredKey from `password` and compares in constant time. False (without doing the
// work) for a verifier that is not well formed or a password of 2^31 bytes or more or with a
// NUL in it. The cost
// is one PBKDF2 with v.iterations: equal for every well-formed verifier of that count, whether
// the password matches or not.
bool VerifyPlainPassword(const ScramVerifier& v, std::string_view password);

// Server side of the final exchange. `auth_message` is
// client-first-message-bare + "," + server-first-message + "," +
// client-final-message-without-proof.
std::string ClientSignature(std::string_view stored_key, std::string_view auth_message);
std::string ServerSignature(std::string_view server_key, std::string_view auth_message);
// Client side (for tests and tools): ClientKey XOR ClientSignature.
std::string ClientProof(std::string_view client_key, std::string_view stored_key,
                        std::string_view auth_message);
// True iff H(proof XOR ClientSignature) == StoredKey, compared in constant time. `proof` is the
// raw (base64-decoded) 32 bytes of the p= attribute; any other length is false.
bool VerifyClientProof(const ScramVerifier& v, std::string_view auth_message,
                       std::string_view proof);

// Constant-time equality of two byte strings (CRYPTO_memcmp). The lengths are not secret: a
// length mismatch returns false at once.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Storage form, the same as PostgreSQL's pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
// Encode requires IsWellFormed(v) (POPLAR_CHECK otherwise). Parse accepts exactly that form:
// decimal iterations without sign or leading zeros, strict canonical base64 (see base64.h),
// and a result that IsWellFormed; anything else is nullopt.
std::string EncodeScramVerifier(const ScramVerifier& v);
std::optional<ScramVerifier> ParseScramVerifier(std::string_view text);

}  // namespace poplar::sasl

#endif  // POPLAR_COMMON_SASL_SCRAM_H_
