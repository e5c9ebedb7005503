// Helpers shared by the fuzz targets: a checked abort that says what failed, an exactly-sized
// heap copy of the input (so ASan catches a read one byte past the end, which the fuzzer's own
// buffer may not), and a byte reader for the control prefix of an input.
#ifndef POPLAR_TESTS_FUZZ_FUZZ_COMMON_H_
#define POPLAR_TESTS_FUZZ_FUZZ_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "common/mbox/scanner.h"

namespace poplar::fuzz {

#define POPLAR_FUZZ_CHECK(cond)                                                     \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

// The input's bytes in a heap block of exactly their size.
class ExactCopy {
 public:
  ExactCopy(const uint8_t* data, size_t size)
      : size_(size), bytes_(new char[size == 0 ? 1 : size]) {
    if (size > 0) std::memcpy(bytes_.get(), data, size);
  }
  // size 0 gives a view of length 0 over a 1-byte block: nothing in it may be read.
  std::string_view view() const { return std::string_view(bytes_.get(), size_); }

 private:
  size_t size_;
  std::unique_ptr<char[]> bytes_;
};

// Takes control bytes from the front of the input; 0 once it runs out.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t Byte() {
    if (pos_ >= size_) return 0;
    return data_[pos_++];
  }
  uint16_t Word() { return static_cast<uint16_t>(Byte() | (Byte() << 8)); }
  const uint8_t* rest() const { return data_ + pos_; }
  size_t rest_size() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

inline bool SameMessage(const mbox::MessageInfo& a, const mbox::MessageInfo& b) {
  return a.offset == b.offset && a.data_offset == b.data_offset && a.end_offset == b.end_offset &&
         a.header_length == b.header_length && a.lines == b.lines && a.octets == b.octets &&
         a.final_newline == b.final_newline && a.content_length_used == b.content_length_used &&
         a.sender == b.sender && a.date == b.date && a.content_hash == b.content_hash &&
         a.uidl_digest == b.uidl_digest && a.x_uidl == b.x_uidl && a.x_uid == b.x_uid &&
         a.uid_validity == b.uid_validity;
}

inline void PrintMessage(const char* what, const mbox::MessageInfo& m) {
  std::fprintf(stderr,
               "%s: offset=%llu data=%llu end=%llu header_length=%llu lines=%llu octets=%llu "
               "final_newline=%d cl=%d uidl=%s\n",
               what, static_cast<unsigned long long>(m.offset),
               static_cast<unsigned long long>(m.data_offset),
               static_cast<unsigned long long>(m.end_offset),
               static_cast<unsigned long long>(m.header_length),
               static_cast<unsigned long long>(m.lines), static_cast<unsigned long long>(m.octets),
               m.final_newline, m.content_length_used, m.uidl_digest.c_str());
}

}  // namespace poplar::fuzz

#endif  // POPLAR_TESTS_FUZZ_FUZZ_COMMON_H_
