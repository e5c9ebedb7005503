#include "indexer/spool_watcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/util/errno_status.h"
#include "common/util/fault.h"
#include "common/util/log.h"

namespace poplar::indexer {
namespace {

constexpr uint32_t kDirMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY |
                              IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                              IN_ONLYDIR | IN_EXCL_UNLINK;

std::string Dirname(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? std::string() : p.substr(0, slash);
}
std::string Basename(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

bool IsDir(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool IsRegular(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  return names;
}

}  // namespace

bool IsMailboxName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name[0] == '.') return false;
  if (name.find('/') != std::string::npos) return false;
  for (const char* suffix : {".lock", "~", ".tmp", ".bak", ".swp"}) {
    if (absl::EndsWith(name, suffix)) return false;
  }
  return true;
}

std::string MailboxPathFor(const config::Spool& spool, const std::string& user) {
  if (!IsMailboxName(user)) return std::string();
  const std::string& dir = spool.directory();
  switch (spool.layout()) {
    case config::SPOOL_FLAT:
      return absl::StrCat(dir, "/", user);
    case config::SPOOL_HASHED_1:
      return absl::StrCat(dir, "/", user.substr(0, 1), "/", user);
    case config::SPOOL_HASHED_2:
      return absl::StrCat(dir, "/", user.substr(0, 1), "/", user.substr(user.size() > 1 ? 1 : 0, 1),
                          "/", user);
    case config::SPOOL_HOME:
      return absl::StrCat(dir, "/", user, "/", spool.home_mailbox());
    case config::SPOOL_HASHED_QPOPPER:
      return absl::StrCat(dir, "/", std::string(1, QpopperHashDir(user)), "/", user);
  }
  return std::string();
}

char QpopperHashDir(std::string_view user) {
  // Qpopper's genpath.c method 1, including its arithmetic on (signed) C chars.
  int seed = 0;
  for (size_t i = 0; i < user.size() && i < 5; ++i) seed += static_cast<signed char>(user[i]);
  return static_cast<char>(seed % 26 + 'a');
}

absl::StatusOr<std::unique_ptr<SpoolWatcher>> SpoolWatcher::Create(
    std::vector<config::Spool> spools) {
  UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid()) return ErrnoToStatus(errno, "inotify_init1");
  return std::unique_ptr<SpoolWatcher>(new SpoolWatcher(std::move(spools), std::move(fd)));
}

int SpoolWatcher::LeafDepth(const config::Spool& spool) const {
  switch (spool.layout()) {
    case config::SPOOL_HASHED_1:
    case config::SPOOL_HASHED_QPOPPER:
      return 1;
    case config::SPOOL_HASHED_2:
      return 2;
    case config::SPOOL_HOME:
      return 1;
    default:
      return 0;
  }
}

absl::Status SpoolWatcher::AddWatch(const Watch& w) {
  // A polled spool (NFS) gets no watch: inotify would see only this host's writes, and the
  // indexer polls it instead.
  if (spools_[w.spool].poll()) return absl::OkStatus();
  int wd = ::inotify_add_watch(inotify_.get(), w.dir.c_str(), kDirMask);
  if (wd < 0) return ErrnoToStatus(errno, absl::StrCat("inotify_add_watch ", w.dir));
  watches_[wd] = w;  // re-adding a watched directory returns the same wd
  return absl::OkStatus();
}

void SpoolWatcher::WatchDir(const Watch& w) {
  FaultPoint("spool_watcher.before_watch");  // a test removes the directory here
  absl::Status s = AddWatch(w);
  if (s.ok()) {
    unwatched_.erase(w.dir);
    return;
  }
  if (unwatched_.insert(w.dir).second) {
    log::Warning(s, ": its mailboxes are found by the periodic reconcile only (if the inotify",
                 " watch limit is reached: raise fs.inotify.max_user_watches)");
  }
}

void SpoolWatcher::ListDir(size_t spool_index, const std::string& dir, int depth,
                           std::vector<MailboxFile>* out) {
  const config::Spool& spool = spools_[spool_index];
  if (spool.layout() == config::SPOOL_HOME) {
    // depth 0: the parent of the homes; each home's mail directory is watched separately.
    WatchDir({spool_index, dir, 0, ""});
    for (const std::string& user : ListNames(dir)) {
      if (!IsMailboxName(user) || !IsDir(absl::StrCat(dir, "/", user))) continue;
      std::string mailbox = MailboxPathFor(spool, user);
      std::string maildir = Dirname(mailbox);
      if (IsDir(maildir)) WatchDir({spool_index, maildir, 1, user});
      if (IsRegular(mailbox)) out->push_back({mailbox, user});
    }
    return;
  }
  WatchDir({spool_index, dir, depth, ""});
  const int leaf = LeafDepth(spool);
  for (const std::string& name : ListNames(dir)) {
    std::string path = absl::StrCat(dir, "/", name);
    if (depth < leaf) {
      if (name[0] != '.' && IsDir(path)) ListDir(spool_index, path, depth + 1, out);
    } else if (IsMailboxName(name) && IsRegular(path)) {
      out->push_back({path, name});
    }
  }
}

absl::StatusOr<std::vector<MailboxFile>> SpoolWatcher::ListAll() {
  std::vector<MailboxFile> out;
  for (size_t i = 0; i < spools_.size(); ++i) {
    if (!IsDir(spools_[i].directory())) {
      return absl::FailedPreconditionError(
          absl::StrCat("spool directory ", spools_[i].directory(), " is missing"));
    }
    ListDir(i, spools_[i].directory(), 0, &out);
  }
  return out;
}

std::vector<std::string> SpoolWatcher::ListDotlocks() const {
  std::vector<std::string> out;
  auto add_locks_in = [&out](const std::string& dir) {
    for (const std::string& name : ListNames(dir)) {
      if (!absl::EndsWith(name, ".lock")) continue;
      const std::string target = name.substr(0, name.size() - 5);
      const std::string path = absl::StrCat(dir, "/", name);
      if (IsMailboxName(target) && IsRegular(path)) out.push_back(path);
    }
  };
  for (const config::Spool& spool : spools_) {
    const std::string& root = spool.directory();
    if (spool.layout() == config::SPOOL_HOME) {
      for (const std::string& user : ListNames(root)) {
        if (!IsMailboxName(user) || !IsDir(absl::StrCat(root, "/", user))) continue;
        const std::string lock = MailboxPathFor(spool, user) + ".lock";
        if (IsRegular(lock)) out.push_back(lock);
      }
      continue;
    }
    // Flat: the spool itself; hashed: its one- or two-level subdirectories.
    std::vector<std::string> dirs = {root};
    for (int depth = 0; depth < LeafDepth(spool); ++depth) {
      std::vector<std::string> next;
      for (const std::string& dir : dirs) {
        for (const std::string& name : ListNames(dir)) {
          const std::string sub = absl::StrCat(dir, "/", name);
          if (name[0] != '.' && IsDir(sub)) next.push_back(sub);
        }
      }
      dirs = std::move(next);
    }
    for (const std::string& dir : dirs) add_locks_in(dir);
  }
  return out;
}

absl::StatusOr<SpoolWatcher::Events> SpoolWatcher::Drain() {
  Events ev;
  alignas(struct inotify_event) char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return ErrnoToStatus(errno, "read inotify");
    }
    if (n == 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* e = reinterpret_cast<struct inotify_event*>(p);
      p += sizeof(struct inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        ev.rescan_all = true;
        continue;
      }
      auto it = watches_.find(e->wd);
      if (it == watches_.end()) continue;
      const Watch w = it->second;
      if (e->mask & IN_IGNORED) {
        watches_.erase(it);
        continue;
      }
      if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        ev.rescan_all = true;  // a spool or hashed directory went away or moved
        continue;
      }
      if (e->len == 0) continue;
      std::string name = e->name;  // NUL-padded by the kernel
      const config::Spool& spool = spools_[w.spool];
      if (e->mask & IN_ISDIR) {
        if (e->mask & (IN_CREATE | IN_MOVED_TO)) ev.rescan_all = true;  // new hashed dir or home
        continue;
      }
      std::string target = absl::EndsWith(name, ".lock") ? name.substr(0, name.size() - 5) : name;
      if (spool.layout() == config::SPOOL_HOME) {
        if (w.depth != 1 || target != Basename(spool.home_mailbox())) continue;
        ev.changed.push_back({absl::StrCat(w.dir, "/", target), w.home_user});
      } else if (w.depth == LeafDepth(spool) && IsMailboxName(target)) {
        ev.changed.push_back({absl::StrCat(w.dir, "/", target), target});
      }
    }
  }
  return ev;
}

}  // namespace poplar::indexer
