#include "common/mbox/qpopper_uidl.h"

#include <openssl/evp.h>

#include <cstring>

#include "common/util/check.h"
#include "common/util/hex.h"

namespace poplar::mbox {
namespace {

// Qpopper's line buffer is 1024 bytes: fgets returns at most 1023 bytes per call.
constexpr size_t kPiece = 1023;

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    char p = prefix[i];
    if (p >= 'A' && p <= 'Z') p = static_cast<char>(p - 'A' + 'a');
    if (c != p) return false;
  }
  return true;
}

class Md5 {
 public:
  Md5() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_md5(), nullptr) != 1) {
      POPLAR_UNREACHABLE("MD5 init failed (libcrypto without MD5?)");
    }
  }
  ~Md5() { EVP_MD_CTX_free(ctx_); }
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;

  // Qpopper's mfgets turns NUL bytes into spaces before anything sees the line.
  void Update(std::string_view bytes) {
    if (bytes.find('\0') == std::string_view::npos) {
      Raw(bytes);
      return;
    }
    std::string copy(bytes);
    for (char& c : copy) c = c == '\0' ? ' ' : c;
    Raw(copy);
  }
  void Raw(std::string_view bytes) {
    if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) {
      POPLAR_UNREACHABLE("MD5 update failed");
    }
  }
  std::array<uint8_t, 16> Final() {
    std::array<uint8_t, 16> out{};
    unsigned int n = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    if (EVP_DigestFinal_ex(ctx_, md, &n) != 1 || n != 16) POPLAR_UNREACHABLE("MD5 final failed");
    std::memcpy(out.data(), md, 16);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// The pieces Qpopper's reader returns for `text`: lines with their "\n", each split into
// pieces of at most kPiece bytes.
template <typename F>
void ForEachPiece(std::string_view text, F&& f) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t line_end = nl == std::string_view::npos ? text.size() : nl + 1;
    while (pos < line_end) {
      size_t n = std::min(kPiece, line_end - pos);
      f(text.substr(pos, n));
      pos += n;
    }
  }
}

// The X-UIDL value Qpopper adopts from `piece` (a line starting with "X-UIDL:"), or empty.
std::string XUidlValue(std::string_view piece, bool server_mode) {
  std::string_view rest = piece.substr(piece.find(':') + 1);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  const size_t n = rest.size();  // the line end included, as Qpopper's strlen counts it
  const bool in_window = server_mode ? (n >= 12 && n <= 33) : (n > 12 && n < 33);
  if (!in_window) return {};
  if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);  // a client never sees it
  std::string value(rest);
  for (char& c : value) c = c == '\0' ? ' ' : c;
  return value;
}

}  // namespace

std::string QpopperBase80(const std::array<uint8_t, 16>& digest) {
  std::string out;
  out.reserve(20);
  for (size_t i = 0; i < 16; i += 4) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) v = (v << 4) + digest[i + k];
    for (int k = 0; k < 5; ++k) {
      char c = static_cast<char>(0x21 + v % 80);
      v /= 80;
      out.push_back(c == '.' ? '~' : c);
    }
  }
  return out;
}

QpopperUidl ComputeQpopperUidl(std::string_view from_line, std::string_view header,
                               const QpopperUidlOptions& options) {
  // Qpopper keeps only the first piece of an overlong From_ line (its frombuf).
  std::string_view from_piece = from_line.substr(0, std::min(kPiece, from_line.size()));
  const bool nonce_mode = options.nonce.has_value() && !options.old_style;
  Md5 md5;
  md5.Update(from_piece);
  if (nonce_mode) {
    // A native long on the LP64 machines Qpopper ran on: 8 bytes, little-endian.
    uint64_t v = static_cast<uint64_t>(*options.nonce);
    char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    md5.Raw(std::string_view(bytes, 8));
  }
  QpopperUidl result;
  bool line_start = true;
  bool header_ended = false;
  ForEachPiece(header, [&](std::string_view piece) {
    const bool first_piece = line_start;
    line_start = piece.back() == '\n';
    if (header_ended) return;
    if (!first_piece) {
      // The rest of an overlong line matches no prefix; a rest that is only "\n" is an empty
      // line to Qpopper, and ends the header there.
      header_ended = piece == "\n";
      return;
    }
    if (options.content_length && piece.substr(0, 15) == "Content-Length:") {
      md5.Update(piece);
      return;
    }
    // Qpopper stops hashing once it has adopted an X-UIDL; the hash only matters when the
    // X-UIDL is not used (a stranger's header, or a value Poplar cannot serve), so it is
    // computed as if that header were not there.
    if ((StartsWithNoCase(piece, "Received:") || StartsWithNoCase(piece, "Date:") ||
         StartsWithNoCase(piece, "Message-Id:") || StartsWithNoCase(piece, "Subject:") ||
         (nonce_mode && (piece[0] == ' ' || piece[0] == '\t')))) {
      md5.Update(piece);
      return;
    }
    if (result.x_uidl.empty() && StartsWithNoCase(piece, "X-UIDL:")) {
      result.x_uidl = XUidlValue(piece, options.server_mode);
    }
  });
  if (!options.old_style) md5.Update(from_piece);
  std::array<uint8_t, 16> digest = md5.Final();
  result.generated =
      options.old_style
          ? HexEncode(std::string_view(reinterpret_cast<const char*>(digest.data()), 16))
          : QpopperBase80(digest);
  return result;
}

}  // namespace poplar::mbox
