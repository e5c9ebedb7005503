// Dotlock: `MBOX.lock` beside a mailbox, as every Debian MDA takes it (reliability.md §1.1-1.4).
//
// Created with the NFS-safe link(2) method of liblockfile and Exim: a unique temp file in the
// same directory is written (PID and hostname, for diagnostics), link()ed to the lock name and
// accepted only if its link count is then 2; the temp name is removed either way. Taken
// non-blocking only: a held lock is reported as UNAVAILABLE and the caller retries.
//
// Stale locks (§1.4). Another program's lock is broken only when DotlockIsStale() says so:
//  * the lock names this host and a PID that no longer exists (liblockfile's rule; it is how a
//    killed poplar-indexer's own lock is recovered at once), or
//  * the lock file AND the mailbox have both been left unmodified for `stale_after` (default
//    600 s: longer than Dovecot's 2 min, liblockfile's 5 min and Postfix's 500 s), and
//  * in both cases, no one holds a kernel (fcntl) write lock on the mailbox (the caller checks
//    it: a holder of the kernel lock is alive by definition).
// It is removed with unlink() after a re-stat shows it is still the same file, never by
// overwriting. A lock held by Poplar itself is refreshed (utime) by Touch() during a long
// rewrite so that no MDA's stale rule ever applies to it.
#ifndef POPLAR_COMMON_LOCK_DOTLOCK_H_
#define POPLAR_COMMON_LOCK_DOTLOCK_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace poplar::lock {

// What a lock file says about its holder: "PID HOSTNAME\n" (Poplar), "PID\n" (liblockfile
// with -p, procmail writes nothing, dotlockfile without -p writes "0").
struct DotlockOwner {
  int64_t pid = 0;   // 0: unknown
  std::string host;  // empty: unknown
};
DotlockOwner ParseDotlockContent(std::string_view content);
std::string FormatDotlockContent(int64_t pid, std::string_view host);

// Everything the stale rule looks at, so that the rule itself is pure and table-tested.
struct StaleFacts {
  DotlockOwner owner;
  std::string this_host;
  bool pid_alive = true;      // kill(pid, 0) did not fail with ESRCH (meaningless if pid 0)
  int64_t lock_age_s = 0;     // now - the lock file's mtime
  int64_t mailbox_age_s = 0;  // now - the mailbox's mtime (a delivery changes it; Dovecot's rule)
  bool kernel_lock_held = false;  // someone holds an fcntl write lock on the mailbox
};
inline constexpr int64_t kDefaultStaleAfterS = 600;
bool DotlockIsStale(const StaleFacts& f, int64_t stale_after_s = kDefaultStaleAfterS);

// Names a held lock; its destructor removes the lock file if it is still the one this object
// created (same inode, and it still names this process: inode numbers are reused).
class Dotlock {
 public:
  // Tries once: OK (held), UNAVAILABLE (someone else holds it; it was not stale),
  // FAILED_PRECONDITION (the directory does not let this process create files: the spool needs
  // group mail, see README), other codes for I/O errors. A stale lock is broken and the
  // creation retried once. `mailbox_fd` (may be -1) is used for the stale rule's kernel-lock and
  // mailbox-age checks.
  static absl::StatusOr<Dotlock> TryAcquire(const std::string& mailbox_path, int mailbox_fd,
                                            int64_t stale_after_s = kDefaultStaleAfterS);
  Dotlock(Dotlock&& o) noexcept;
  Dotlock& operator=(Dotlock&& o) noexcept;
  Dotlock(const Dotlock&) = delete;
  Dotlock& operator=(const Dotlock&) = delete;
  ~Dotlock();

  // Refreshes the lock's mtime (liblockfile's touchlock()).
  absl::Status Touch();
  void Release();
  const std::string& path() const { return path_; }

 private:
  Dotlock(std::string path, dev_t dev, ino_t ino) : path_(std::move(path)), dev_(dev), ino_(ino) {}
  bool StillOurs() const;
  std::string path_;  // empty: released
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// This host's name as written into lock files.
std::string LocalHostName();

}  // namespace poplar::lock

#endif  // POPLAR_COMMON_LOCK_DOTLOCK_H_
