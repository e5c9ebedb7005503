// MailboxLock: every lock the site's MDAs honour on one mbox, held together (design §3,
// reliability.md §1.3, §1.6).
//
// The methods are taken in the configured order (default dotlock, then an fcntl OFD write
// lock), each non-blocking. If any one is busy, all are released (the file is closed and
// re-opened, as Exim does) and the set is retried after a jittered pause: MDAs lock dotlock
// first and mutt kernel lock first, so blocking on the second lock while holding the first is
// the classic deadlock. The wait is bounded by `timeout`; when it runs out the result is
// UNAVAILABLE (popd answers -ERR [SYS/TEMP]) and nothing is held.
//
// The OFD lock (F_OFD_SETLK) belongs to the open file description, not the process, so a
// thread that opens and closes the mbox elsewhere cannot drop it, and it conflicts with the
// classic POSIX locks MDAs take. The fd stays open, read-write, for the caller's rewrite.
#ifndef POPLAR_COMMON_LOCK_MAILBOX_LOCK_H_
#define POPLAR_COMMON_LOCK_MAILBOX_LOCK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/lock/dotlock.h"
#include "common/util/unique_fd.h"

namespace poplar::lock {

enum class Method { kDotlock, kFcntl, kFlock };

struct LockOptions {
  std::vector<Method> methods = {Method::kDotlock, Method::kFcntl};
  absl::Duration timeout = absl::Seconds(10);
  int64_t stale_after_s = kDefaultStaleAfterS;
};

class MailboxLock {
 public:
  // Opens `path` read-write (O_NOFOLLOW; must be a regular file) and takes every lock.
  // NOT_FOUND if the file does not exist; UNAVAILABLE when the time runs out (a transient I/O
  // error taking the dotlock is retried like a held lock until then); FAILED_PRECONDITION when a
  // lock cannot be taken at all (e.g. no permission for the dotlock). Other I/O errors carry the
  // code of common/util/errno_status.h.
  static absl::StatusOr<MailboxLock> Acquire(const std::string& path, const LockOptions& options);

  MailboxLock(MailboxLock&&) noexcept = default;
  MailboxLock& operator=(MailboxLock&&) noexcept;
  MailboxLock(const MailboxLock&) = delete;
  MailboxLock& operator=(const MailboxLock&) = delete;
  ~MailboxLock();

  int fd() const { return fd_.get(); }
  // Keeps the dotlock fresh during a long rewrite (a no-op without a dotlock).
  absl::Status Touch();
  // Releases everything (dotlock last, after the kernel locks, so an MDA waiting on the dotlock
  // finds the file unlocked).
  void Release();
  int attempts() const { return attempts_; }

 private:
  MailboxLock() = default;
  UniqueFd fd_;
  std::optional<Dotlock> dotlock_;
  int attempts_ = 0;
};

}  // namespace poplar::lock

#endif  // POPLAR_COMMON_LOCK_MAILBOX_LOCK_H_
