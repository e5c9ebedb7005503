// pread/pwrite until done: the one loop every reader of mailboxes and journals needs (EINTR and
// short transfers retried). Each caller turns the outcome into its own status, because "the
// file ends early" means different things to them (a truncated mailbox, a damaged journal).
#ifndef POPLAR_COMMON_UTIL_FILE_IO_H_
#define POPLAR_COMMON_UTIL_FILE_IO_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace poplar {

// Reads [offset, offset + n) into buf. Returns the bytes read, less than n only where the file
// ends, or -1 with errno set.
ssize_t PreadAll(int fd, uint64_t offset, char* buf, size_t n);

// Writes all n bytes at offset. Returns n, or -1 with errno set.
ssize_t PwriteAll(int fd, uint64_t offset, const char* buf, size_t n);

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_FILE_IO_H_
