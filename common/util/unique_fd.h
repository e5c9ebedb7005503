// UniqueFd: the one owner of a file descriptor (style P9). Closing is the destructor's job, so
// no early return can leak an fd or, later, the locks that hang off it.
#ifndef POPLAR_COMMON_UTIL_UNIQUE_FD_H_
#define POPLAR_COMMON_UTIL_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace poplar {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(std::exchange(o.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int Release() noexcept { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);  // close(2) errors on a read-only fd carry no information
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_UNIQUE_FD_H_
