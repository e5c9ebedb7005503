// The POP3 octet transform: stored message bytes -> RFC 1939 multi-line response body
// (design §3, style P6).
//
// Bare LF becomes CRLF, an existing CRLF is kept (never "\r\r\n"), a line starting with '.'
// gets one more '.', the message is ended with CRLF if it does not end with LF, and Finish()
// can add the ".\r\n" terminator. Safe at any chunk boundary: one chunk or a million give the
// same output. TOP mode sends the header block, the empty line after it, and the first n body
// lines; an n larger than the body sends the whole message.
//
// Contract with the scanner: for RETR, octets() after Finish() equals MessageInfo::octets
// (the size announced in LIST/STAT), because the stuffed dots and the terminator are not
// counted (RFC 1939 §11). tests/unit/wire_transform_test.cc checks it on random messages.
#ifndef POPLAR_COMMON_POP3_WIRE_TRANSFORM_H_
#define POPLAR_COMMON_POP3_WIRE_TRANSFORM_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace poplar::pop3 {

class WireTransform {
 public:
  struct Options {
    bool dot_stuff = true;
    std::optional<uint64_t> top_lines;  // TOP n; unset for RETR
  };

  WireTransform() : WireTransform(Options{}) {}
  explicit WireTransform(Options options) : options_(options) {}

  // Appends the wire form of the next bytes of the message to *out. Input after TOP's last
  // line is ignored; done() says when the caller can stop reading.
  void Feed(std::string_view chunk, std::string* out);
  // Ends the message: CRLF unless the output already ends with one, then ".\r\n" if asked.
  void Finish(bool terminator, std::string* out);

  bool done() const { return done_; }
  // Bytes appended so far, not counting stuffed dots or the terminator.
  uint64_t octets() const { return octets_; }

 private:
  void EndLine();

  Options options_;
  bool done_ = false;
  bool at_line_start_ = true;
  bool last_cr_ = false;       // the last byte copied was '\r'
  bool ends_with_lf_ = false;  // output so far ends with "\r\n"
  bool in_headers_ = true;
  uint64_t line_length_ = 0;  // bytes of the current line copied so far
  uint64_t body_lines_ = 0;
  uint64_t octets_ = 0;
};

// What a client does with a multi-line response: checks and strips the ".\r\n" terminator and
// removes the stuffed '.' from lines that start with one. nullopt if `wire` is not a
// well-formed multi-line body (no terminator, or a line not ending in CRLF before it).
std::optional<std::string> DecodeMultiline(std::string_view wire);

}  // namespace poplar::pop3

#endif  // POPLAR_COMMON_POP3_WIRE_TRANSFORM_H_
