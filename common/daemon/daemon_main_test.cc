// common/daemon: the command line and the signal loop the two daemons share.
#include "common/daemon/daemon_main.h"

#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

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
                                          "--check-config"};
  static std::vector<char*> argv = Argv(args);
  const CommandLine line = Start(kProgram, static_cast<int>(args.size()), argv.data());
  EXPECT_EQ(line.config_path, "/tmp/x.conf");
  EXPECT_TRUE(line.check_config);
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

}  // namespace
}  // namespace poplar::daemon
