// Dotlock: `MBOX.lock` beside a mailbox, as every Debian MDA takes it (reliability.md §1.1-1.4).
//
// Created with the NFS-safe link(2) method of liblockfile and Exim: a unique temp file in the
// same directory is written, link()ed to the lock name and accepted only if its link count is
// then 2; the temp name is removed either way. Taken non-blocking only: a held lock is reported
// as UNAVAILABLE and the caller retries.
//
// Content: "PID HOST poplar-indexer boot=BOOT_ID start=TICKS\n". The PID comes first, so
// liblockfile-style readers (dotlockfile -p, atoi) still read it; the marker says Poplar wrote
// it; BOOT_ID (/proc/sys/kernel/random/boot_id) and TICKS (the writer's start time,
// /proc/self/stat field 22) name the writing process *incarnation*: a PID alone repeats after a
// reboot, after PID wrap-around, and at once in containers (a restarted indexer there is often
// PID 1 again, like its dead predecessor).
//
// Stale locks (§1.4). A lock is broken only when DotlockIsStale() says so:
//  * our own dead writer (DotlockWriterGone): the lock carries Poplar's marker, names this host,
//    and the incarnation it names is gone: another boot id, or no process with that PID, or one
//    that started at another time (the PID was reused). Such a lock is broken at once, whoever
//    holds the mailbox's kernel lock: its writer is dead, so the dotlock protects nothing. This
//    is what lets MDAs (procmail waits 1024 s, Postfix 500 s) deliver at once after an indexer
//    was killed. Assumes one PID namespace per host name (two indexers sharing a spool from
//    containers with the same host name are not supported: one writer per mailbox, §1.5);
//  * any other lock (another program's, or an old-format Poplar lock without marker or
//    incarnation): only under the documented rules:
//    - the lock names this host and a PID that no longer exists (liblockfile's rule), or
//    - the lock file AND the mailbox have both been left unmodified for `stale_after` (default
//      600 s: longer than Dovecot's 2 min, liblockfile's 5 min and Postfix's 500 s), and
//    - in both cases, no one holds a kernel (fcntl) write lock on the mailbox (the caller checks
//      it: a holder of the kernel lock is alive by definition).
// It is removed with unlink() after a re-stat shows it is still the same file, never by
// overwriting. A lock held by Poplar itself is refreshed (utime) by Touch() during a long
// rewrite so that no MDA's stale rule ever applies to it.
//
// RemoveDeadPoplarDotlock() applies the first rule alone (never the others) to one lock file:
// the indexer runs it at start-up over every mailbox it knows and every *.lock in its spools,
// so a lock left by a killed indexer is gone before any MDA would have to wait for it.
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

// The marker Poplar writes after "PID HOST" (only the indexer takes dotlocks).
inline constexpr std::string_view kDotlockMarker = "poplar-indexer";

// Which process incarnation wrote a lock. Unknown fields are empty / 0.
struct Incarnation {
  std::string boot_id;       // /proc/sys/kernel/random/boot_id
  uint64_t start_ticks = 0;  // start time in clock ticks after boot, /proc/PID/stat field 22
  bool known() const { return !boot_id.empty() && start_ticks != 0; }
};

// What a lock file says about its holder: "PID HOST poplar-indexer boot=.. start=..\n"
// (Poplar), "PID HOSTNAME\n" (Poplar before the marker), "PID\n" (liblockfile with -p),
// nothing (procmail), "0" (dotlockfile without -p).
struct DotlockOwner {
  int64_t pid = 0;          // 0: unknown
  std::string host;         // empty: unknown
  bool poplar = false;      // carries kDotlockMarker
  Incarnation incarnation;  // Poplar locks only
};
DotlockOwner ParseDotlockContent(std::string_view content);
std::string FormatDotlockContent(int64_t pid, std::string_view host,
                                 const Incarnation& incarnation);

// Everything the stale rule looks at, so that the rule itself is pure and table-tested.
struct StaleFacts {
  DotlockOwner owner;
  std::string this_host;
  std::string this_boot_id;      // empty: unknown (no /proc)
  bool pid_alive = true;         // kill(pid, 0) did not fail with ESRCH (meaningless if pid 0)
  uint64_t pid_start_ticks = 0;  // start time of the process now holding owner.pid; 0: unknown
  int64_t lock_age_s = 0;        // now - the lock file's mtime
  int64_t mailbox_age_s = 0;  // now - the mailbox's mtime (a delivery changes it; Dovecot's rule)
  bool kernel_lock_held = false;  // someone holds an fcntl write lock on the mailbox
};
inline constexpr int64_t kDefaultStaleAfterS = 600;
// Poplar's marker, this host, and the incarnation it names is gone (see the header comment).
bool DotlockWriterGone(const StaleFacts& f);
bool DotlockIsStale(const StaleFacts& f, int64_t stale_after_s = kDefaultStaleAfterS);

// Field 22 (starttime) of a /proc/PID/stat line; 0 if it cannot be parsed. The command name
// (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
uint64_t ParseProcStatStartTicks(std::string_view stat);

// The I/O behind the facts: this process's incarnation, and the start time of the process that
// has `pid` now (0: no such process, or /proc cannot tell).
Incarnation ThisIncarnation();
uint64_t ProcessStartTicks(int64_t pid);

// Removes `lock_path` if DotlockWriterGone() holds for it (re-stat first: only the very file
// judged is unlinked). Returns the removed lock's owner; nullopt if nothing was removed (no
// such file, not a regular file, another program's lock, an old-format lock, a live writer).
absl::StatusOr<std::optional<DotlockOwner>> RemoveDeadPoplarDotlock(const std::string& lock_path);

// Names a held lock; its destructor removes the lock file if it is still the one this object
// created (same inode, and it still names this process: inode numbers are reused).
class Dotlock {
 public:
  // Tries once: OK (held), UNAVAILABLE (someone else holds it and it was not stale, or a
  // transient I/O error such as ENOSPC or EIO: either way worth trying again), FAILED_PRECONDITION
  // (the directory does not let this process create files: the spool needs group mail, see
  // README), NOT_FOUND (the mailbox's directory is gone), other codes for other I/O errors (the
  // classes of common/util/errno_status.h). A stale lock is broken and the
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
