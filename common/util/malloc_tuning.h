// Process-wide glibc malloc settings for the two daemons (called first thing in main()).
//
// A login to a 100,000-message mailbox moves ~15 MB through malloc in each daemon (the
// snapshot's protobuf, gRPC's receive slices, the session's maildrop), all freed again at
// QUIT. With glibc's defaults those blocks are mmap()ed fresh for each login and given back
// with munmap()/madvise() afterwards, so every login pays ~4,000 page faults and page clears:
// measured on popd, 37% of its CPU for such a login went to page faults and 7% to madvise.
// Fixed thresholds keep up to 32 MB per malloc arena for reuse instead. The cost is bounded
// (at most that much idle heap per arena, and only after a large mailbox was served), which is
// the trade Dovecot's and nginx's long-running processes make too.
#ifndef POPLAR_COMMON_UTIL_MALLOC_TUNING_H_
#define POPLAR_COMMON_UTIL_MALLOC_TUNING_H_

#include <malloc.h>

namespace poplar {

inline void TuneMallocForLargeSnapshots() {
  constexpr int kKeep = 32 << 20;  // glibc's largest mmap threshold on 64-bit
  ::mallopt(M_MMAP_THRESHOLD, kKeep);
  ::mallopt(M_TRIM_THRESHOLD, kKeep);
}

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_MALLOC_TUNING_H_
