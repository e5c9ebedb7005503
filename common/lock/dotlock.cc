#include "common/lock/dotlock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/util/errno_status.h"
#include "common/util/strings.h"
#include "common/util/unique_fd.h"

namespace poplar::lock {
namespace {

absl::Status Errno(int err, std::string_view what, const std::string& path) {
  return ErrnoToStatus(err, absl::StrCat(Absl(what), " ", path));
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int64_t NowS() { return static_cast<int64_t>(::time(nullptr)); }

// The first bytes of a small file (a lock, a /proc entry); empty if unreadable.
std::string ReadSmallFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return {};
  char buf[512];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

// Reads a lock file; an unreadable one has an unknown owner.
DotlockOwner ReadOwner(const std::string& path) { return ParseDotlockContent(ReadSmallFile(path)); }

// The facts about the holder of a lock with content `owner`, for the stale rules. The caller
// adds the ages and the kernel lock.
StaleFacts HolderFacts(DotlockOwner owner) {
  StaleFacts f;
  f.owner = std::move(owner);
  f.this_host = LocalHostName();
  f.pid_alive =
      !(f.owner.pid > 0 && ::kill(static_cast<pid_t>(f.owner.pid), 0) != 0 && errno == ESRCH);
  if (f.owner.poplar) {
    f.this_boot_id = ThisIncarnation().boot_id;
    if (f.pid_alive) f.pid_start_ticks = ProcessStartTicks(f.owner.pid);
  }
  return f;
}

// Unlinks `lock_path` if it is still the file `judged` describes (same inode and mtime).
absl::Status UnlinkIfSame(const std::string& lock_path, const struct stat& judged) {
  struct stat again {};
  if (::lstat(lock_path.c_str(), &again) == 0 && again.st_dev == judged.st_dev &&
      again.st_ino == judged.st_ino && again.st_mtim.tv_sec == judged.st_mtim.tv_sec &&
      again.st_mtim.tv_nsec == judged.st_mtim.tv_nsec) {
    if (::unlink(lock_path.c_str()) != 0 && errno != ENOENT) {
      return Errno(errno, "remove stale dotlock", lock_path);
    }
  }
  return absl::OkStatus();
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
  if (j >= content.size() || content[j] != ' ') return o;
  // The rest of the first line: HOST [MARKER [key=value ...]], single spaces.
  std::string_view rest = content.substr(j + 1);
  rest = rest.substr(0, std::min(rest.find('\n'), rest.find('\0')));
  std::vector<std::string_view> words;
  for (size_t k = 0; k <= rest.size();) {
    size_t e = std::min(rest.find(' ', k), rest.size());
    words.push_back(rest.substr(k, e - k));
    k = e + 1;
  }
  o.host = std::string(words[0]);
  if (words.size() < 2 || words[1] != kDotlockMarker) return o;
  o.poplar = true;
  for (size_t w = 2; w < words.size(); ++w) {
    std::string_view word = words[w];
    if (word.substr(0, 5) == "boot=") {
      o.incarnation.boot_id = std::string(word.substr(5));
    } else if (word.substr(0, 6) == "start=") {
      uint64_t t = 0;
      if (absl::SimpleAtoi(Absl(word.substr(6)), &t)) o.incarnation.start_ticks = t;
    }
  }
  return o;
}

std::string FormatDotlockContent(int64_t pid, std::string_view host,
                                 const Incarnation& incarnation) {
  std::string out = absl::StrCat(pid, " ", Absl(host), " ", Absl(kDotlockMarker));
  if (!incarnation.boot_id.empty()) absl::StrAppend(&out, " boot=", incarnation.boot_id);
  if (incarnation.start_ticks != 0) absl::StrAppend(&out, " start=", incarnation.start_ticks);
  out.push_back('\n');
  return out;
}

bool DotlockWriterGone(const StaleFacts& f) {
  const DotlockOwner& o = f.owner;
  // Only Poplar's own locks, from this host, naming a whole incarnation: anything less is
  // judged by the other rules.
  if (!o.poplar || o.pid <= 0 || o.host.empty() || o.host != f.this_host) return false;
  if (!o.incarnation.known() || f.this_boot_id.empty()) return false;
  if (o.incarnation.boot_id != f.this_boot_id) return true;  // written before a reboot
  if (!f.pid_alive) return true;                             // no process has that PID
  // Someone has the PID: the writer only if it started at the same tick.
  return f.pid_start_ticks != 0 && f.pid_start_ticks != o.incarnation.start_ticks;
}

bool DotlockIsStale(const StaleFacts& f, int64_t stale_after_s) {
  // Our own writer is dead: whoever holds the kernel lock now, it is not the holder of this
  // dotlock (a dead process holds no kernel lock), so the dotlock protects nothing.
  if (DotlockWriterGone(f)) return true;
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

uint64_t ParseProcStatStartTicks(std::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return 0;
  // After ") " comes field 3 (state); field 22 is the 20th from there.
  size_t pos = paren + 1;
  for (int field = 3; field <= 22; ++field) {
    while (pos < stat.size() && stat[pos] == ' ') ++pos;
    size_t end = pos;
    while (end < stat.size() && stat[end] != ' ' && stat[end] != '\n') ++end;
    if (end == pos) return 0;
    if (field == 22) {
      uint64_t t = 0;
      return absl::SimpleAtoi(Absl(stat.substr(pos, end - pos)), &t) ? t : 0;
    }
    pos = end;
  }
  return 0;
}

Incarnation ThisIncarnation() {
  Incarnation i;
  std::string boot = ReadSmallFile("/proc/sys/kernel/random/boot_id");
  while (!boot.empty() && (boot.back() == '\n' || boot.back() == ' ')) boot.pop_back();
  // A boot id is a UUID; anything else (a space would break the lock's word list) is unknown.
  if (boot.find_first_of(" \n") == std::string::npos) i.boot_id = std::move(boot);
  i.start_ticks = ParseProcStatStartTicks(ReadSmallFile("/proc/self/stat"));
  // /proc/self must be this process (a /proc of another PID namespace would describe another).
  if (ProcessStartTicks(::getpid()) != i.start_ticks) i.start_ticks = 0;
  return i;
}

uint64_t ProcessStartTicks(int64_t pid) {
  if (pid <= 0) return 0;
  return ParseProcStatStartTicks(ReadSmallFile(absl::StrCat("/proc/", pid, "/stat")));
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
  const Incarnation self = ThisIncarnation();
  static thread_local std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 0; attempt < 2; ++attempt) {
    // The temp name is unique per host, process and attempt (liblockfile: .lk<pid><time><host>).
    const std::string tmp =
        absl::StrCat(DirOf(mailbox_path), "/.lk", ::getpid(), "-", rng() % 1000000000, "-", host);
    {
      UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!fd.valid()) return Errno(errno, "create dotlock temp file", tmp);
      const std::string content = FormatDotlockContent(::getpid(), host, self);
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
    StaleFacts f = HolderFacts(ReadOwner(lock_path));
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
    if (absl::Status s = UnlinkIfSame(lock_path, lst); !s.ok()) return s;
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
  if (o.pid != ::getpid() || o.host != LocalHostName()) return false;
  // A PID reused by a later incarnation (containers) is not us.
  const Incarnation self = ThisIncarnation();
  return !o.incarnation.known() || !self.known() || o.incarnation.start_ticks == self.start_ticks;
}

absl::StatusOr<std::optional<DotlockOwner>> RemoveDeadPoplarDotlock(const std::string& lock_path) {
  struct stat lst {};
  if (::lstat(lock_path.c_str(), &lst) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return Errno(errno, "stat dotlock", lock_path);
  }
  if (!S_ISREG(lst.st_mode)) return std::nullopt;  // never follow or remove anything else
  StaleFacts f = HolderFacts(ReadOwner(lock_path));
  if (!DotlockWriterGone(f)) return std::nullopt;
  if (absl::Status s = UnlinkIfSame(lock_path, lst); !s.ok()) return s;
  struct stat again {};
  if (::lstat(lock_path.c_str(), &again) == 0 && again.st_ino == lst.st_ino) return std::nullopt;
  return f.owner;
}

void Dotlock::Release() {
  if (path_.empty()) return;
  if (StillOurs()) ::unlink(path_.c_str());
  path_.clear();
}

}  // namespace poplar::lock
