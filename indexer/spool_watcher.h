// SpoolWatcher: turns inotify events on the spool directories into "mailbox X may have
// changed" hints, and lists every mailbox for full rescans (design §5 "Watching").
//
// An event is only a hint to stat: the indexer re-reads what the file is, never what the
// event says. Why more than inotify:
//  * IN_Q_OVERFLOW drops events, and a directory appearing (hashed spools) has no history:
//    both ask for a full rescan (rescan_all).
//  * A dotlock's removal (USER.lock deleted) is how a delivery announces that it is complete;
//    it is mapped to the mailbox USER so that the finished message is indexed at once.
//  * Writes from other NFS clients are invisible: such spools are polled (Spool.poll), and the
//    indexer reconciles every known mailbox periodically anyway.
// Security: names come from directory listings and events; lock files, dotfiles and editor
// backups are never taken for mailboxes, and the indexer opens mailboxes with O_NOFOLLOW.
// Thread-compatible; owned by the indexer's event thread.
#ifndef POPLAR_INDEXER_SPOOL_WATCHER_H_
#define POPLAR_INDEXER_SPOOL_WATCHER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/util/unique_fd.h"
#include "poplar/config.pb.h"

namespace poplar::indexer {

struct MailboxFile {
  std::string path;
  std::string user;
  friend bool operator==(const MailboxFile&, const MailboxFile&) = default;
};

// The mailbox path of `user` in a spool, per its layout; empty if the name cannot have one.
std::string MailboxPathFor(const config::Spool& spool, const std::string& user);

// The directory letter of Qpopper's `hash-spool = 1` for `user` (SPOOL_HASHED_QPOPPER).
char QpopperHashDir(std::string_view user);

// True for names that can be a mailbox in a spool directory: not a lock file, dotfile, editor
// backup or temp file.
bool IsMailboxName(const std::string& name);

class SpoolWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<SpoolWatcher>> Create(std::vector<config::Spool> spools);

  // The inotify descriptor, for the event loop's poll/epoll (non-blocking).
  int fd() const { return inotify_.get(); }

  // Every mailbox file currently in the spools. Also (re)adds the directory watches, so call
  // it at start and whenever rescan_all is reported.
  absl::StatusOr<std::vector<MailboxFile>> ListAll();

  // Every dotlock file (`MAILBOX.lock`, a regular file beside where a mailbox of the spool's
  // layout is or could be) currently in the spools, whether or not its mailbox exists. Adds no
  // watches. For the start-up sweep of locks left by a killed indexer.
  std::vector<std::string> ListDotlocks() const;

  struct Events {
    std::vector<MailboxFile> changed;  // may contain duplicates; each is a hint to stat
    bool rescan_all = false;
  };
  // Reads every pending event without blocking.
  absl::StatusOr<Events> Drain();

  // Directories that could not be watched (missing, or the inotify watch limit reached).
  size_t unwatched() const { return unwatched_.size(); }

 private:
  struct Watch {
    size_t spool = 0;
    std::string dir;
    int depth = 0;  // 0: the spool directory itself; 1-2: hashed levels; 1 for a home's mail dir
    std::string home_user;  // SPOOL_HOME: whose mail directory this is
  };
  SpoolWatcher(std::vector<config::Spool> spools, UniqueFd fd)
      : spools_(std::move(spools)), inotify_(std::move(fd)) {}
  absl::Status AddWatch(const Watch& w);
  // AddWatch, and a warning the first time a directory cannot be watched (not again at every
  // rescan): its mailboxes are then found by the periodic reconcile only, later.
  void WatchDir(const Watch& w);
  void ListDir(size_t spool, const std::string& dir, int depth, std::vector<MailboxFile>* out);
  int LeafDepth(const config::Spool& spool) const;

  std::vector<config::Spool> spools_;
  UniqueFd inotify_;
  absl::flat_hash_map<int, Watch> watches_;
  absl::flat_hash_set<std::string> unwatched_;  // directories whose watch failed, reported once
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_SPOOL_WATCHER_H_
