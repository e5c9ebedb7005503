// Strict base64 (RFC 4648 §4, standard alphabet, '=' padding) over OpenSSL's EVP_EncodeBlock /
// EVP_DecodeBlock. Pure: no I/O, no globals.
//
// EVP_DecodeBlock on its own is too lax for SASL and stored verifiers: it skips leading and
// trailing whitespace, and it returns 3 bytes per 4 characters including the zero bytes that
// stand for '=' padding. Base64Decode therefore checks the text itself first (alphabet, length a
// multiple of 4, at most two '=' and only at the very end, unused bits of the last character
// zero: one canonical spelling per byte string) and trims the padding bytes afterwards.
#ifndef POPLAR_COMMON_SASL_BASE64_H_
#define POPLAR_COMMON_SASL_BASE64_H_

#include <optional>
#include <string>
#include <string_view>

namespace poplar::sasl {

std::string Base64Encode(std::string_view bytes);

// nullopt for anything but the canonical encoding of some byte string. "" decodes to "".
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace poplar::sasl

#endif  // POPLAR_COMMON_SASL_BASE64_H_
