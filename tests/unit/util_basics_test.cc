// The one errno mapping, the logger's line format and POPLAR_CHECK (common/util).
#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/util/check.h"
#include "common/util/errno_status.h"
#include "common/util/log.h"
#include "gtest/gtest.h"

namespace poplar {
namespace {

struct ErrnoCase {
  int err;
  absl::StatusCode code;
  bool temporary;  // what a POP3 client hears: [SYS/TEMP] exactly for Unavailable
};

TEST(ErrnoToStatus, EachClassMapsToTheCodeThatDecidesTempOrPerm) {
  const ErrnoCase cases[] = {
      {ENOENT, absl::StatusCode::kNotFound, false},
      {ENOTDIR, absl::StatusCode::kNotFound, false},
      {EACCES, absl::StatusCode::kFailedPrecondition, false},
      {EPERM, absl::StatusCode::kFailedPrecondition, false},
      {ELOOP, absl::StatusCode::kFailedPrecondition, false},
      {EROFS, absl::StatusCode::kFailedPrecondition, false},
      {EINTR, absl::StatusCode::kUnavailable, true},
      {EAGAIN, absl::StatusCode::kUnavailable, true},
      {EIO, absl::StatusCode::kUnavailable, true},
      {ENOSPC, absl::StatusCode::kUnavailable, true},
      {EDQUOT, absl::StatusCode::kUnavailable, true},
      {ESTALE, absl::StatusCode::kUnavailable, true},
      {EMFILE, absl::StatusCode::kUnavailable, true},
      {ENOLCK, absl::StatusCode::kUnavailable, true},
      {EINVAL, absl::StatusCode::kInternal, false},
      {EBADF, absl::StatusCode::kInternal, false},
  };
  for (const ErrnoCase& c : cases) {
    absl::Status s = ErrnoToStatus(c.err, "open /var/mail/ann");
    EXPECT_EQ(s.code(), c.code) << c.err;
    EXPECT_EQ(ErrnoCode(c.err), c.code) << c.err;
    EXPECT_EQ(absl::IsUnavailable(s), c.temporary) << c.err;
    EXPECT_EQ(std::string(s.message()).rfind("open /var/mail/ann: ", 0), 0u) << s;
  }
}

TEST(LogFormat, PrefixLevelAndOneLinePerEvent) {
  struct Case {
    log::Level level;
    std::string text;
    std::string want;
  } cases[] = {
      {log::Level::kInfo, "listening on 127.0.0.1:110",
       "poplar-popd: listening on 127.0.0.1:110\n"},
      {log::Level::kWarning, "watch: overflow", "poplar-popd: warning: watch: overflow\n"},
      {log::Level::kError, "cannot bind", "poplar-popd: error: cannot bind\n"},
      {log::Level::kDebug, "x", "poplar-popd: debug: x\n"},
      // An embedded newline (e.g. from a status message) never starts a second journal entry.
      {log::Level::kInfo, "a\nb\r\nc", "poplar-popd: a b  c\n"},
  };
  for (const Case& c : cases) EXPECT_EQ(log::FormatLine("poplar-popd", c.level, c.text), c.want);
}

TEST(LogFormat, StatusAndNumbersConcatenate) {
  EXPECT_EQ(log::internal::Cat("rescan ", 3, " mailboxes: ", absl::UnavailableError("busy")),
            "rescan 3 mailboxes: UNAVAILABLE: busy");
  EXPECT_EQ(log::internal::Cat(std::string_view("std "), std::string("string")), "std string");
}

TEST(LogLevels, BelowTheMinimumIsNotWritten) {
  log::Init("poplar-test", log::Level::kWarning);
  EXPECT_FALSE(log::Enabled(log::Level::kInfo));
  EXPECT_TRUE(log::Enabled(log::Level::kWarning));
  EXPECT_TRUE(log::Enabled(log::Level::kError));
  log::Init("poplar-test", log::Level::kInfo);
  EXPECT_TRUE(log::Enabled(log::Level::kInfo));
  EXPECT_FALSE(log::Enabled(log::Level::kDebug));
}

// A program whose main() has not called Init (yet) still says who it is. "threadsafe" re-runs
// this test alone in a fresh process, where no other test has called Init.
TEST(LogDeathTest, WithoutInitTheExecutableNamesItself) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        log::Error("who am I");
        std::abort();
      },
      "util_basics_test: error: who am I");
}

TEST(CheckDeathTest, SaysWhereAndWhy) {
  log::Init("poplar-test");
  EXPECT_DEATH(POPLAR_CHECK(1 + 1 == 3, "arithmetic broke"),
               "poplar-test: error: CHECK failed at .*util_basics_test.cc:[0-9]+: 1 \\+ 1 == 3: "
               "arithmetic broke");
  POPLAR_CHECK(1 + 1 == 2, "never printed");
}

}  // namespace
}  // namespace poplar
