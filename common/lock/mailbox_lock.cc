#include "common/lock/mailbox_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/util/errno_status.h"

namespace poplar::lock {
namespace {

absl::Status Errno(int err, const char* what, const std::string& path) {
  return ErrnoToStatus(err, absl::StrCat(what, " ", path));
}

}  // namespace

MailboxLock& MailboxLock::operator=(MailboxLock&& o) noexcept {
  if (this != &o) {
    Release();
    fd_ = std::move(o.fd_);
    dotlock_ = std::move(o.dotlock_);
    o.dotlock_.reset();
    attempts_ = o.attempts_;
  }
  return *this;
}

MailboxLock::~MailboxLock() { Release(); }

void MailboxLock::Release() {
  fd_.Reset();  // drops the OFD and flock locks
  if (dotlock_) {
    dotlock_->Release();
    dotlock_.reset();
  }
}

absl::Status MailboxLock::Touch() {
  if (!dotlock_) return absl::OkStatus();
  return dotlock_->Touch();
}

absl::StatusOr<MailboxLock> MailboxLock::Acquire(const std::string& path,
                                                 const LockOptions& options) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Duration pause = absl::Milliseconds(10);
  std::string last_busy;
  for (int attempt = 1;; ++attempt) {
    MailboxLock held;
    held.attempts_ = attempt;
    held.fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!held.fd_.valid()) return Errno(errno, "open", path);
    struct stat st {};
    if (::fstat(held.fd_.get(), &st) != 0) return Errno(errno, "fstat", path);
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
    }
    bool busy = false;
    for (Method m : options.methods) {
      if (m == Method::kDotlock) {
        absl::StatusOr<Dotlock> d =
            Dotlock::TryAcquire(path, held.fd_.get(), options.stale_after_s);
        if (absl::IsUnavailable(d.status())) {
          busy = true;
          last_busy = std::string(d.status().message());
          break;
        }
        if (!d.ok()) return d.status();
        held.dotlock_.emplace(std::move(*d));
      } else if (m == Method::kFcntl) {
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (::fcntl(held.fd_.get(), F_OFD_SETLK, &fl) != 0) {
          if (errno != EAGAIN && errno != EACCES) return Errno(errno, "fcntl lock", path);
          busy = true;
          last_busy = absl::StrCat(path, ": fcntl write lock held by another process");
          break;
        }
      } else {
        if (::flock(held.fd_.get(), LOCK_EX | LOCK_NB) != 0) {
          if (errno != EWOULDBLOCK) return Errno(errno, "flock", path);
          busy = true;
          last_busy = absl::StrCat(path, ": flock held by another process");
          break;
        }
      }
    }
    if (!busy) {
      // The file we locked must still be the one at `path` (an MDA or MUA may have replaced
      // it between our open and the dotlock).
      struct stat now {};
      if (::lstat(path.c_str(), &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
        held.Release();
        last_busy = absl::StrCat(path, " was replaced while locking");
      } else {
        return held;
      }
    }
    held.Release();  // everything, before waiting
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::UnavailableError(absl::StrCat("mailbox locks not available within ",
                                                 absl::FormatDuration(options.timeout), " (",
                                                 last_busy, ")"));
    }
    // Jitter: two lockers in lock-step would otherwise collide forever.
    const int64_t max_us = absl::ToInt64Microseconds(pause);
    absl::Duration sleep = absl::Microseconds(
        max_us / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_us / 2 + 1)));
    sleep = std::min(sleep, deadline - now);
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(sleep));
    pause = std::min(pause * 2, absl::Milliseconds(500));
  }
}

}  // namespace poplar::lock
