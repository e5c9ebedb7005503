// common/daemon: the command line and the signal loop the two daemons share.
#include "common/daemon/daemon_main.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/daemon/sd_notify.h"
#include "gtest/gtest.h"

namespace poplar::daemon {
namespace {

constexpr Program kProgram = {"poplar-test", "/etc/poplar/test.conf"};

// argv as main() gets it (absl may keep pointers into it).
std::vector<char*> Argv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

TEST(DaemonMainTest, ConfigAndCheckConfigFlags) {
  static std::vector<std::string> args = {"poplar-test", "--config", "/tmp/x.conf",
                                          "--check-config", "--print-config"};
  static std::vector<char*> argv = Argv(args);
  const CommandLine line = Start(kProgram, static_cast<int>(args.size()), argv.data());
  EXPECT_EQ(line.config_path, "/tmp/x.conf");
  EXPECT_TRUE(line.check_config);
  EXPECT_TRUE(line.print_config);
}

// Start() with `args` after the program name (for the death tests: it exits). Start may run
// once per process (absl's usage message), so the death tests re-execute the binary.
void StartWith(std::vector<std::string> args) {
  args.insert(args.begin(), "poplar-test");
  std::vector<char*> argv = Argv(args);
  Start(kProgram, static_cast<int>(args.size()), argv.data());
}

TEST(DaemonMainTest, APositionalArgumentIsAUsageError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(StartWith({"extra"}), ::testing::ExitedWithCode(2),
              "usage: poplar-test \\[--config FILE\\] \\[--check-config\\]");
}

TEST(DaemonMainTest, AnUnknownFlagExits) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(StartWith({"--no-such-flag"}), ::testing::ExitedWithCode(1), "no-such-flag");
}

TEST(DaemonMainTest, SighupReloadsAndSigtermStops) {
  BlockSignals();
  // Both pending before the wait: the lower-numbered SIGHUP is taken first.
  ASSERT_EQ(::kill(::getpid(), SIGHUP), 0);
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
  int reloads = 0;
  EXPECT_EQ(WaitForStop([&] { ++reloads; }), SIGTERM);
  EXPECT_EQ(reloads, 1);
  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
  EXPECT_EQ(WaitForStop([&] { ++reloads; }), SIGINT);
  EXPECT_EQ(reloads, 1);
}

// sd_notify's protocol as systemd reads it: one datagram per message on $NOTIFY_SOCKET.
TEST(DaemonMainTest, NotifySendsADatagramToNotifySocket) {
  char dir[] = "/tmp/sd_notify_testXXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/notify";
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);

  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(Notify("READY=1").ok());  // nobody to tell: nothing sent, no error
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ASSERT_TRUE(Notify("READY=1").ok());
  ASSERT_TRUE(Notify("STOPPING=1").ok());
  char buf[64] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "READY=1");
  n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "STOPPING=1");
  ::setenv("NOTIFY_SOCKET", "relative/path", 1);
  EXPECT_FALSE(Notify("READY=1").ok());
  ::unsetenv("NOTIFY_SOCKET");
  ::close(fd);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST(DaemonMainTest, WatchdogIntervalFromTheEnvironment) {
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  EXPECT_FALSE(WatchdogInterval().has_value());
  ::setenv("WATCHDOG_USEC", "30000000", 1);
  ASSERT_TRUE(WatchdogInterval().has_value());
  EXPECT_EQ(WatchdogInterval()->count(), 30000000);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_FALSE(WatchdogInterval().has_value());  // meant for another process
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  EXPECT_TRUE(WatchdogInterval().has_value());
  ::setenv("WATCHDOG_USEC", "zero", 1);
  EXPECT_FALSE(WatchdogInterval().has_value());
  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
}

}  // namespace
}  // namespace poplar::daemon
