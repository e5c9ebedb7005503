#include "common/pop3/wire_transform.h"

#include <cstring>

namespace poplar::pop3 {

// Called after the "\r\n" of a line has been appended.
void WireTransform::EndLine() {
  const bool empty = line_length_ == 0 || (line_length_ == 1 && last_cr_);
  if (in_headers_) {
    if (empty) {
      in_headers_ = false;
      if (options_.top_lines && *options_.top_lines == 0) done_ = true;
    }
  } else if (options_.top_lines && ++body_lines_ >= *options_.top_lines) {
    done_ = true;
  }
  at_line_start_ = true;
  line_length_ = 0;
  last_cr_ = false;
  ends_with_lf_ = true;
}

void WireTransform::Feed(std::string_view chunk, std::string* out) {
  const char* p = chunk.data();
  const char* const end = p + chunk.size();
  while (p < end && !done_) {
    if (at_line_start_) {
      if (options_.dot_stuff && *p == '.') out->push_back('.');  // not counted in octets
      at_line_start_ = false;
    }
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    const char* stop = nl == nullptr ? end : nl;
    if (stop > p) {
      out->append(p, stop - p);
      octets_ += stop - p;
      line_length_ += stop - p;
      last_cr_ = stop[-1] == '\r';
      ends_with_lf_ = false;
    }
    if (nl == nullptr) break;
    if (last_cr_) {
      out->push_back('\n');
      octets_ += 1;
    } else {
      out->append("\r\n", 2);
      octets_ += 2;
    }
    EndLine();
    p = nl + 1;
  }
}

void WireTransform::Finish(bool terminator, std::string* out) {
  if (!ends_with_lf_) {
    // The final CRLF is ensured; a last line already ending in '\r' (a CRLF writer stopped
    // between the two) needs only the '\n', so that completing it in the file later changes
    // neither the bytes served nor the size (content_hash.h).
    const size_t n = last_cr_ ? 1 : 2;
    out->append(std::string_view("\r\n").substr(2 - n));
    octets_ += n;
    ends_with_lf_ = true;
    at_line_start_ = true;
  }
  if (terminator) out->append(".\r\n", 3);
}

std::optional<std::string> DecodeMultiline(std::string_view wire) {
  std::string out;
  out.reserve(wire.size());
  size_t pos = 0;
  while (pos < wire.size()) {
    size_t nl = wire.find('\n', pos);
    // Every line ends in CRLF: a bare LF is a line end to a client that splits on LF.
    if (nl == std::string_view::npos || nl == pos || wire[nl - 1] != '\r') return std::nullopt;
    --nl;  // at the '\r'
    std::string_view line = wire.substr(pos, nl - pos);
    if (line == ".") {
      if (nl + 2 != wire.size()) return std::nullopt;  // bytes after the terminator
      return out;
    }
    if (!line.empty() && line[0] == '.') line.remove_prefix(1);
    out.append(line);
    out.append("\r\n");
    pos = nl + 2;
  }
  return std::nullopt;
}

}  // namespace poplar::pop3
