#include "common/util/file_io.h"

#include <unistd.h>

#include <cerrno>

namespace poplar {

ssize_t PreadAll(int fd, uint64_t offset, char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;  // end of file
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

ssize_t PwriteAll(int fd, uint64_t offset, const char* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pwrite(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace poplar
