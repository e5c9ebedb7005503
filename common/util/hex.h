// Hexadecimal text for bytes: the one encoder and decoder of the tree (digests in the index and
// in logs, APOP/CRAM-MD5 answers, lease ids, UIDL digests). Pure.
#ifndef POPLAR_COMMON_UTIL_HEX_H_
#define POPLAR_COMMON_UTIL_HEX_H_

#include <optional>
#include <string>
#include <string_view>

namespace poplar {

// Two lowercase hex digits per byte, most significant nibble first ("\x01\xab" -> "01ab").
std::string HexEncode(std::string_view bytes);

// The inverse of HexEncode; upper- and lowercase digits are accepted. nullopt for an odd length
// or any character that is not a hex digit (no prefix, sign or space is skipped).
std::optional<std::string> HexDecode(std::string_view hex);

// 0..15 for '0'-'9', 'a'-'f', 'A'-'F'; -1 otherwise.
int HexDigitValue(char c);

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_HEX_H_
