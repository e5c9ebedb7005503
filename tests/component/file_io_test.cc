#include "common/util/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/util/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/component/temp_dir.h"

namespace poplar {
namespace {

TEST(FileIoTest, WritesAndReadsWholeRangesAndReportsTheEndOfTheFile) {
  testing::TempDir dir;
  UniqueFd fd(::open(dir.File("f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.valid());
  const std::string big(3 << 20, 'x');  // larger than one pipe/page batch
  ASSERT_EQ(PwriteAll(fd.get(), 10, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  std::string back(big.size(), '\0');
  ASSERT_EQ(PreadAll(fd.get(), 10, back.data(), back.size()), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(back, big);
  // Past the end: the bytes that exist, then the count says where the file ended.
  std::string tail(100, '\0');
  EXPECT_EQ(PreadAll(fd.get(), 10 + big.size() - 40, tail.data(), tail.size()), 40);
  EXPECT_EQ(PreadAll(fd.get(), 10 + big.size() + 5, tail.data(), tail.size()), 0);
  // The hole before offset 10 reads as zeros, as pread does.
  EXPECT_EQ(PreadAll(fd.get(), 0, tail.data(), 10), 10);
  EXPECT_EQ(tail.substr(0, 10), std::string(10, '\0'));
}

TEST(FileIoTest, ErrorsComeBackAsMinusOneWithErrno) {
  char buf[4];
  errno = 0;
  EXPECT_EQ(PreadAll(-1, 0, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EBADF);
  errno = 0;
  EXPECT_EQ(PwriteAll(-1, 0, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EBADF);
}

}  // namespace
}  // namespace poplar
