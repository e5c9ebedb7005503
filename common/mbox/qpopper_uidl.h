// Qpopper's UIDL algorithm (Qpopper 4.0.x, pop_dropcopy.c; ../shared/docs/qpopper.md §3), so a
// site that switches from Qpopper serves every message the UIDL its clients already hold.
//
// For one message, given its From_ line and its header lines exactly as stored:
//  * MD5 over: the From_ line with its "\n"; with the status-header nonce (update-status-headers
//    on, old-style-uid off) the per-session counter as the 8 bytes of a native (little-endian)
//    long; every header line, with its line end as stored ("\r\n" stays), that starts with
//    `Received:`, `Date:`, `Message-Id:` or `Subject:` (ASCII case-insensitive prefix); every
//    line that starts with `Content-Length:` (case-sensitive, Qpopper built with CONTENT_LENGTH);
//    in the nonce mode, also continuation lines (a leading space or tab); and then, except
//    old-style, the From_ line again. Qpopper stops hashing header lines once it adopted an
//    X-UIDL, but then it serves the X-UIDL; `generated` is what it computes for a message whose
//    X-UIDL is not used, so it hashes every line as if there were none.
//  * Qpopper reads lines in 1023-byte pieces (fgets into a 1024-byte buffer): a longer line is
//    several pieces, and only the first can match a prefix. NUL bytes read as spaces.
//  * Encoding: default base-80: each 4-byte group d0..d3 of the digest gives
//    v = ((d0 * 16 + d1) * 16 + d2) * 16 + d3 (Qpopper shifts by 4 bits, not 8), written as 5
//    digits least significant first, digit j as the character 0x21 + j, '.' replaced by '~':
//    20 characters. old-style-uid: 32 lowercase hex digits.
//  * X-UIDL: the first header line starting with `X-UIDL:` (case-insensitive) whose value is
//    in Qpopper's length window wins; later ones are ignored, and out-of-window ones are ignored
//    (the hash is used). The length Qpopper checks is that of the rest of the line after the
//    colon and any spaces or tabs, its line end included: 12 < n < 33 when it copied the spool
//    (normal mode, do_drop_copy), 12 <= n <= 33 when it parsed a file in place (server mode or
//    a leftover temp drop, init_dropinfo). The value adopted is that rest without its line end.
//  * Duplicates: Qpopper gives identical messages the same UIDL; RFC 1939 forbids that, so the
//    UidlAssigner (uidl.h) keeps it for the first in file order and suffixes later ones.
// Poplar's own separator rules (README "mbox rules") decide where a message starts and where
// its header ends ("\n" or "\r\n"); Qpopper would only end a header at "\n" (a CRLF spool
// breaks it: it merges messages), so for such spools no server can match it anyway.
#ifndef POPLAR_COMMON_MBOX_QPOPPER_UIDL_H_
#define POPLAR_COMMON_MBOX_QPOPPER_UIDL_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poplar::mbox {

struct QpopperUidlOptions {
  // `old-style-uid`: pre-3.0 hex UIDs, the From_ line hashed once.
  bool old_style = false;
  // Qpopper parsed the spool in place (`server-mode`): the inclusive X-UIDL window.
  bool server_mode = false;
  // Qpopper was built with CONTENT_LENGTH (the default build): Content-Length: lines hashed.
  bool content_length = true;
  // `update-status-headers` without old-style: the session counter hashed after the From_ line
  // and continuation lines hashed. Qpopper then wrote every UIDL into the spool as X-UIDL, so
  // only tests and tools that replay a known session set this.
  std::optional<int64_t> nonce = std::nullopt;
};

struct QpopperUidl {
  std::string generated;  // Qpopper's hash when no X-UIDL is adopted (see above)
  std::string x_uidl;     // the X-UIDL value Qpopper adopts, or empty
  // What Qpopper served: x_uidl if any, else generated.
  const std::string& served() const { return x_uidl.empty() ? generated : x_uidl; }
};

// `from_line`: the From_ line with its line end as stored. `header`: the header lines as stored,
// from the line after the From_ line up to, not including, the empty line that ends them (or the
// whole message if none).
QpopperUidl ComputeQpopperUidl(std::string_view from_line, std::string_view header,
                               const QpopperUidlOptions& options);

std::string QpopperBase80(const std::array<uint8_t, 16>& digest);

}  // namespace poplar::mbox

#endif  // POPLAR_COMMON_MBOX_QPOPPER_UIDL_H_
