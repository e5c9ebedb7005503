// common/privileges: names, lookups, and a real Drop in a forked child (root only: the child
// reports its /proc/self/status through a pipe; the test process keeps its own ids).
#include "common/privileges/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace poplar::privileges {
namespace {

using ::testing::HasSubstr;

TEST(Privileges, OnlyFileAccessCapabilitiesCanBeKept) {
  absl::StatusOr<std::vector<int>> caps = CapabilitiesFromNames({"CAP_DAC_OVERRIDE", "CAP_CHOWN"});
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(*caps, (std::vector<int>{CAP_DAC_OVERRIDE, CAP_CHOWN}));
  for (const char* bad : {"CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SETPCAP", "cap_dac_override", ""}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(IsKeepableCapability(bad));
    EXPECT_TRUE(absl::IsInvalidArgument(CapabilitiesFromNames({bad}).status()));
  }
}

TEST(Privileges, ResolveNamesWhatIsMissing) {
  EXPECT_THAT(std::string(Resolve("no-such-user-poplar", "", {}).status().message()),
              HasSubstr("run_as.user no-such-user-poplar does not exist"));
  EXPECT_THAT(std::string(Resolve("root", "", {}).status().message()),
              HasSubstr("must not be root"));
  EXPECT_THAT(std::string(Resolve("nobody", "no-such-group-poplar", {}).status().message()),
              HasSubstr("run_as.group no-such-group-poplar"));
  EXPECT_THAT(
      std::string(Resolve("nobody", "", {"mail", "no-such-group-poplar"}, "x").status().message()),
      HasSubstr("x.extra_groups: no-such-group-poplar"));
  absl::StatusOr<Identity> id = Resolve("nobody", "nogroup", {"mail"});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->uid, ::getpwnam("nobody")->pw_uid);
  EXPECT_EQ(id->gid, ::getgrnam("nogroup")->gr_gid);
  EXPECT_EQ(id->groups, std::vector<gid_t>{::getgrnam("mail")->gr_gid});
}

// Forks; the child drops to `id` keeping `keep` and sends back its status lines (or the error).
std::string StatusAfterDrop(const Identity& id, const std::vector<int>& keep) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    absl::Status s = Drop(id, keep);
    std::string out;
    if (!s.ok()) {
      out = "error: " + std::string(s.message());
    } else {
      std::ifstream in("/proc/self/status");
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0 ||
            line.rfind("Groups:", 0) == 0 || line.rfind("Cap", 0) == 0) {
          out += line + "\n";
        }
      }
      if (::setuid(0) == 0) out += "regained root\n";
    }
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return got;
}

TEST(Privileges, DropLeavesExactlyTheConfiguredIdsAndCapabilities) {
  if (::geteuid() != 0) GTEST_SKIP() << "dropping privileges needs root";
  absl::StatusOr<Identity> id = Resolve("nobody", "nogroup", {"mail"});
  ASSERT_TRUE(id.ok()) << id.status();
  const std::string u = std::to_string(id->uid), g = std::to_string(id->gid);
  const std::string mail = std::to_string(::getgrnam("mail")->gr_gid);

  std::string plain = StatusAfterDrop(*id, {});
  EXPECT_THAT(plain, HasSubstr("Uid:\t" + u + "\t" + u + "\t" + u + "\t" + u + "\n"));
  EXPECT_THAT(plain, HasSubstr("Gid:\t" + g + "\t" + g + "\t" + g + "\t" + g + "\n"));
  EXPECT_THAT(plain, HasSubstr("Groups:\t" + mail));
  EXPECT_THAT(plain, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(plain, HasSubstr("CapPrm:\t0000000000000000"));
  EXPECT_THAT(plain, HasSubstr("CapBnd:\t0000000000000000"));
  EXPECT_THAT(plain, ::testing::Not(HasSubstr("regained root")));

  std::string dac = StatusAfterDrop(*id, {CAP_DAC_OVERRIDE});
  EXPECT_THAT(dac, HasSubstr("Uid:\t" + u + "\t" + u + "\t" + u + "\t" + u + "\n"));
  EXPECT_THAT(dac, HasSubstr("CapEff:\t0000000000000002"));
  EXPECT_THAT(dac, HasSubstr("CapPrm:\t0000000000000002"));
  EXPECT_THAT(dac, HasSubstr("CapInh:\t0000000000000000"));
  EXPECT_THAT(dac, HasSubstr("CapBnd:\t0000000000000002"));
  EXPECT_THAT(dac, ::testing::Not(HasSubstr("regained root")));
}

}  // namespace
}  // namespace poplar::privileges
