#include "common/privileges/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/util/errno_status.h"
#include "common/util/strings.h"

namespace poplar::privileges {
namespace {

absl::Status Refused(std::string_view what) {
  return ErrnoToStatus(errno, absl::StrCat("dropping privileges: ", Absl(what)));
}

bool LookupGroup(const std::string& name, gid_t* gid) {
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    return false;
  *gid = g.gr_gid;
  return true;
}

struct NamedCapability {
  std::string_view name;
  int cap;
};
constexpr NamedCapability kKeepable[] = {
    {"CAP_CHOWN", CAP_CHOWN},
    {"CAP_DAC_OVERRIDE", CAP_DAC_OVERRIDE},
    {"CAP_DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
    {"CAP_FOWNER", CAP_FOWNER},
    {"CAP_NET_BIND_SERVICE", CAP_NET_BIND_SERVICE},
};

int LastCapability() {
  int last = CAP_LAST_CAP;
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  if (in >> last && last >= 0 && last < 64) return last;
  return CAP_LAST_CAP;
}

// capget/capset of this thread (glibc has no wrapper; libcap is not needed for two calls).
bool GetCaps(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &hdr, data) == 0;
}
bool SetCaps(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capset, &hdr, data) == 0;
}
bool Has(const __user_cap_data_struct (&data)[2], int cap) {
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

absl::StatusOr<Identity> Resolve(const std::string& user, const std::string& group,
                                 const std::vector<std::string>& extra_groups,
                                 std::string_view section) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (user.empty() || getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 ||
      found == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(Absl(section), ".user ", user, " does not exist"));
  }
  if (pw.pw_uid == 0) {
    return absl::FailedPreconditionError(absl::StrCat(Absl(section), ".user must not be root"));
  }
  Identity id;
  id.user = user;
  id.uid = pw.pw_uid;
  id.gid = pw.pw_gid;
  if (!group.empty() && !LookupGroup(group, &id.gid)) {
    return absl::FailedPreconditionError(
        absl::StrCat(Absl(section), ".group ", group, " does not exist"));
  }
  for (const std::string& g : extra_groups) {
    gid_t extra = 0;
    if (!LookupGroup(g, &extra)) {
      return absl::FailedPreconditionError(
          absl::StrCat(Absl(section), ".extra_groups: ", g, " does not exist"));
    }
    id.groups.push_back(extra);
  }
  return id;
}

bool IsKeepableCapability(std::string_view name) {
  for (const NamedCapability& c : kKeepable) {
    if (c.name == name) return true;
  }
  return false;
}

absl::StatusOr<std::vector<int>> CapabilitiesFromNames(const std::vector<std::string>& names) {
  std::vector<int> caps;
  for (const std::string& n : names) {
    bool known = false;
    for (const NamedCapability& c : kKeepable) {
      if (c.name == n) {
        caps.push_back(c.cap);
        known = true;
      }
    }
    if (!known)
      return absl::InvalidArgumentError(absl::StrCat("capability ", n, " cannot be kept"));
  }
  return caps;
}

absl::Status Drop(const Identity& id, const std::vector<int>& keep, bool narrow_bounding_set) {
  if (id.uid == 0)
    return absl::FailedPreconditionError("dropping privileges: the user must not be root");
  auto kept = [&](int cap) { return std::find(keep.begin(), keep.end(), cap) != keep.end(); };
  __user_cap_data_struct now[2] = {};
  if (!GetCaps(now)) return Refused("capget");
  // The bounding set limits what any program this process runs could gain. Changing it needs
  // CAP_SETPCAP; without it (a service manager already narrowed the set) it stays as given.
  if (narrow_bounding_set && Has(now, CAP_SETPCAP)) {
    for (int cap = 0; cap <= LastCapability(); ++cap) {
      if (kept(cap) || ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
        return Refused(absl::StrCat("dropping capability ", cap));
    }
  }
  if (!keep.empty() && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return Refused("PR_SET_KEEPCAPS");
  // Order matters: groups first (it needs root), the uid last.
  if (::setgroups(id.groups.size(), id.groups.data()) != 0) return Refused("setgroups");
  if (::setresgid(id.gid, id.gid, id.gid) != 0) return Refused("setresgid");
  if (::setresuid(id.uid, id.uid, id.uid) != 0) return Refused("setresuid");
  __user_cap_data_struct want[2] = {};
  for (int cap : keep) {
    want[cap / 32].permitted |= 1u << (cap % 32);
    want[cap / 32].effective |= 1u << (cap % 32);
  }
  if (!SetCaps(want)) return Refused("capset");
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return Refused("PR_SET_KEEPCAPS");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return Refused("clearing ambient capabilities");
  }
  if (::setuid(0) == 0 || ::geteuid() == 0) {
    return absl::FailedPreconditionError("dropping privileges: root could be regained");
  }
  return absl::OkStatus();
}

absl::Status DropPrivileges(const std::string& user, const std::string& group,
                            const std::vector<std::string>& extra_groups) {
  absl::StatusOr<Identity> id = Resolve(user, group, extra_groups);
  if (!id.ok()) return id.status();
  return Drop(*id, {}, /*narrow_bounding_set=*/false);
}

}  // namespace poplar::privileges
