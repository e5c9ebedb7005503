// MailboxLock and Dotlock against a temp dir: the codes their I/O errors carry. They come from the
// one errno mapping (common/util/errno_status.h), so a missing path reads NOT_FOUND at every
// step of a lock, not INTERNAL at some (before, ENOTDIR and a dotlock's ENOENT were INTERNAL).
#include "common/lock/mailbox_lock.h"

#include <sys/stat.h>

#include <string>

#include "absl/status/status.h"
#include "common/lock/dotlock.h"
#include "gtest/gtest.h"
#include "tests/component/temp_dir.h"

namespace poplar::lock {
namespace {

using ::poplar::testing::TempDir;
using ::poplar::testing::WriteFile;

LockOptions Quick() {
  LockOptions o;
  o.timeout = absl::Milliseconds(200);
  return o;
}

TEST(MailboxLockErrors, MissingMailboxIsNotFound) {
  TempDir dir;
  absl::StatusOr<MailboxLock> l = MailboxLock::Acquire(dir.File("nobody"), Quick());
  EXPECT_TRUE(absl::IsNotFound(l.status())) << l.status();
}

TEST(MailboxLockErrors, PathThroughAFileIsNotFound) {
  TempDir dir;
  WriteFile(dir.File("file"), "not a directory\n");
  // open(2) says ENOTDIR: the mailbox is not there, as with ENOENT (was INTERNAL).
  absl::StatusOr<MailboxLock> l = MailboxLock::Acquire(dir.File("file/ann"), Quick());
  EXPECT_TRUE(absl::IsNotFound(l.status())) << l.status();
  EXPECT_NE(l.status().message().find("open "), std::string_view::npos) << l.status();
}

TEST(MailboxLockErrors, LockedMailboxIsTakenAndReleased) {
  TempDir dir;
  WriteFile(dir.File("ann"), "From a@b Thu Nov 26 10:00:00 2026\n\nhi\n");
  {
    absl::StatusOr<MailboxLock> l = MailboxLock::Acquire(dir.File("ann"), Quick());
    ASSERT_TRUE(l.ok()) << l.status();
    struct stat st {};
    EXPECT_EQ(::lstat(dir.File("ann.lock").c_str(), &st), 0);
  }
  struct stat st {};
  EXPECT_NE(::lstat(dir.File("ann.lock").c_str(), &st), 0);
}

TEST(DotlockErrors, MissingDirectoryIsNotFound) {
  TempDir dir;
  // The temp file cannot be created: ENOENT, now NOT_FOUND (was INTERNAL).
  absl::StatusOr<Dotlock> d = Dotlock::TryAcquire(dir.File("gone/ann"), -1);
  EXPECT_TRUE(absl::IsNotFound(d.status())) << d.status();
  EXPECT_NE(d.status().message().find("create dotlock temp file"), std::string_view::npos)
      << d.status();
}

}  // namespace
}  // namespace poplar::lock
