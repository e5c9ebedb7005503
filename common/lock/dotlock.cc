#include "common/lock/dotlock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/util/strings.h"
#include "common/util/unique_fd.h"

namespace poplar::lock {
namespace {

absl::Status Errno(int err, std::string_view what, const std::string& path) {
  std::string msg = absl::StrCat(Absl(what), " ", path, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM || err == EROFS) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int64_t NowS() { return static_cast<int64_t>(::time(nullptr)); }

// Reads a small lock file; an unreadable one has an unknown owner.
DotlockOwner ReadOwner(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return {};
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return {};
  return ParseDotlockContent(std::string_view(buf, static_cast<size_t>(n)));
}

bool KernelWriteLockHeld(int fd) {
  if (fd < 0) return false;
  struct flock fl {};
  fl.l_type = F_RDLCK;  // conflicts only with write locks
  fl.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;  // cannot tell: assume held
  return fl.l_type != F_UNLCK;
}

}  // namespace

DotlockOwner ParseDotlockContent(std::string_view content) {
  DotlockOwner o;
  size_t i = 0;
  while (i < content.size() && content[i] == ' ') ++i;
  size_t j = i;
  while (j < content.size() && content[j] >= '0' && content[j] <= '9') ++j;
  if (j > i && j - i <= 10) {
    int64_t pid = 0;
    if (absl::SimpleAtoi(Absl(content.substr(i, j - i)), &pid)) o.pid = pid;
  }
  if (j < content.size() && content[j] == ' ') {
    size_t k = j + 1;
    size_t e = k;
    while (e < content.size() && content[e] != '\n' && content[e] != ' ' && content[e] != '\0') ++e;
    o.host = std::string(content.substr(k, e - k));
  }
  return o;
}

std::string FormatDotlockContent(int64_t pid, std::string_view host) {
  return absl::StrCat(pid, " ", Absl(host), "\n");
}

bool DotlockIsStale(const StaleFacts& f, int64_t stale_after_s) {
  // A live kernel lock means a live holder, whatever the dotlock looks like.
  if (f.kernel_lock_held) return false;
  // A dead process on this host cannot be holding it (liblockfile's rule). A PID from another
  // host means nothing (NFS), and an unknown host is not assumed to be this one.
  if (f.owner.pid > 0 && !f.owner.host.empty() && f.owner.host == f.this_host && !f.pid_alive) {
    return true;
  }
  // Otherwise only age: neither the lock nor the mailbox touched for stale_after_s. A lock or
  // mailbox with an mtime in the future (clock skew) counts as fresh.
  return f.lock_age_s >= stale_after_s && f.mailbox_age_s >= stale_after_s;
}

std::string LocalHostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

absl::StatusOr<Dotlock> Dotlock::TryAcquire(const std::string& mailbox_path, int mailbox_fd,
                                            int64_t stale_after_s) {
  const std::string lock_path = mailbox_path + ".lock";
  const std::string host = LocalHostName();
  static thread_local std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 0; attempt < 2; ++attempt) {
    // The temp name is unique per host, process and attempt (liblockfile: .lk<pid><time><host>).
    const std::string tmp =
        absl::StrCat(DirOf(mailbox_path), "/.lk", ::getpid(), "-", rng() % 1000000000, "-", host);
    {
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!fd.valid()) return Errno(errno, "create dotlock temp file", tmp);
      const std::string content = FormatDotlockContent(::getpid(), host);
      if (::write(fd.get(), content.data(), content.size()) !=
          static_cast<ssize_t>(content.size())) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Errno(err, "write", tmp);
      }
    }
    struct stat tst {};
    int link_rc = ::link(tmp.c_str(), lock_path.c_str());
    int link_err = errno;
    // NFS: link() may fail even though it worked (a lost reply); the link count decides.
    bool ours = ::stat(tmp.c_str(), &tst) == 0 && tst.st_nlink == 2;
    ::unlink(tmp.c_str());
    if (ours) {
      struct stat lst {};
      if (::lstat(lock_path.c_str(), &lst) != 0 || lst.st_ino != tst.st_ino) {
        return absl::UnavailableError(absl::StrCat(lock_path, " changed under us"));
      }
      return Dotlock(lock_path, lst.st_dev, lst.st_ino);
    }
    if (link_rc == 0) return absl::InternalError(absl::StrCat("link count of ", tmp, " is not 2"));
    if (link_err != EEXIST) return Errno(link_err, "link dotlock", lock_path);

    // Held by someone. Stale?
    struct stat lst {};
    if (::lstat(lock_path.c_str(), &lst) != 0) continue;  // just released: try again now
    StaleFacts f;
    f.owner = ReadOwner(lock_path);
    f.this_host = host;
    f.pid_alive =
        !(f.owner.pid > 0 && ::kill(static_cast<pid_t>(f.owner.pid), 0) != 0 && errno == ESRCH);
    const int64_t now = NowS();
    f.lock_age_s = now - static_cast<int64_t>(lst.st_mtim.tv_sec);
    f.mailbox_age_s = 0;
    struct stat mst {};
    if (mailbox_fd >= 0 && ::fstat(mailbox_fd, &mst) == 0) {
      f.mailbox_age_s = now - static_cast<int64_t>(mst.st_mtim.tv_sec);
    } else if (::stat(mailbox_path.c_str(), &mst) == 0) {
      f.mailbox_age_s = now - static_cast<int64_t>(mst.st_mtim.tv_sec);
    } else {
      f.mailbox_age_s = f.lock_age_s;  // no mailbox: only the lock's age counts
    }
    f.kernel_lock_held = KernelWriteLockHeld(mailbox_fd);
    if (attempt > 0 || !DotlockIsStale(f, stale_after_s)) {
      return absl::UnavailableError(absl::StrCat(lock_path, " is held (pid ", f.owner.pid,
                                                 f.owner.host.empty() ? "" : " on ", f.owner.host,
                                                 ", ", f.lock_age_s, " s old)"));
    }
    // Remove it only if it is still the file we judged.
    struct stat again {};
    if (::lstat(lock_path.c_str(), &again) == 0 && again.st_ino == lst.st_ino &&
        again.st_mtim.tv_sec == lst.st_mtim.tv_sec &&
        again.st_mtim.tv_nsec == lst.st_mtim.tv_nsec) {
      if (::unlink(lock_path.c_str()) != 0 && errno != ENOENT) {
        return Errno(errno, "remove stale dotlock", lock_path);
      }
    }
  }
  return absl::UnavailableError(absl::StrCat(lock_path, " is held"));
}

Dotlock::Dotlock(Dotlock&& o) noexcept
    : path_(std::exchange(o.path_, std::string())), dev_(o.dev_), ino_(o.ino_) {}

Dotlock& Dotlock::operator=(Dotlock&& o) noexcept {
  if (this != &o) {
    Release();
    path_ = std::exchange(o.path_, std::string());
    dev_ = o.dev_;
    ino_ = o.ino_;
  }
  return *this;
}

Dotlock::~Dotlock() { Release(); }

absl::Status Dotlock::Touch() {
  if (path_.empty()) return absl::FailedPreconditionError("dotlock released");
  if (!StillOurs())
    return absl::AbortedError(absl::StrCat(path_, " was broken by another program"));
  if (::utimensat(AT_FDCWD, path_.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) != 0) {
    return Errno(errno, "touch", path_);
  }
  return absl::OkStatus();
}

bool Dotlock::StillOurs() const {
  // Someone may have broken our lock as stale and taken their own, possibly on the very inode
  // number ours had: the file must be the one we made and still name this process.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_) return false;
  DotlockOwner o = ReadOwner(path_);
  return o.pid == ::getpid() && o.host == LocalHostName();
}

void Dotlock::Release() {
  if (path_.empty()) return;
  if (StillOurs()) ::unlink(path_.c_str());
  path_.clear();
}

}  // namespace poplar::lock
