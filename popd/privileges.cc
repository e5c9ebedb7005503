#include "popd/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace poplar::popd {
namespace {

absl::Status Refused(const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat("dropping privileges: ", what, ": ",
                                                    std::strerror(errno)));
}

bool LookupGroup(const std::string& name, gid_t* gid) {
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  *gid = g.gr_gid;
  return true;
}

}  // namespace

absl::Status DropPrivileges(const std::string& user, const std::string& group,
                            const std::vector<std::string>& extra_groups) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  errno = 0;
  if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("run_as.user ", user, " does not exist"));
  }
  if (pw.pw_uid == 0) return absl::FailedPreconditionError("run_as.user must not be root");
  gid_t gid = pw.pw_gid;
  if (!group.empty() && !LookupGroup(group, &gid)) {
    return absl::FailedPreconditionError(absl::StrCat("run_as.group ", group, " does not exist"));
  }
  std::vector<gid_t> groups;
  for (const std::string& g : extra_groups) {
    gid_t extra = 0;
    if (!LookupGroup(g, &extra)) {
      return absl::FailedPreconditionError(absl::StrCat("run_as.extra_groups: ", g, " does not exist"));
    }
    groups.push_back(extra);
  }
  // Order matters: groups first (it needs root), the uid last.
  if (setgroups(groups.size(), groups.data()) != 0) return Refused("setgroups");
  if (setgid(gid) != 0) return Refused("setgid");
  if (setuid(pw.pw_uid) != 0) return Refused("setuid");
  if (setuid(0) == 0 || geteuid() == 0) {
    return absl::FailedPreconditionError("dropping privileges: root could be regained");
  }
  return absl::OkStatus();
}

}  // namespace poplar::popd
