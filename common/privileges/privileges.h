// Least privilege for Poplar's daemons (design §8): start as root, do what needs root, then
// become an unprivileged user for good, keeping at most a few named capabilities.
//
// popd binds its ports and reads its TLS key first (run_as in popd.conf); the indexer drops
// before it opens anything (run_as in indexer.conf), so its database, journals, dotlocks and
// socket belong to the user it runs as. Capabilities are per thread in Linux: Drop() must run
// while the process has one thread (or before any thread that must keep or lose them exists);
// the uid/gid change itself is applied to every thread by glibc.
#ifndef POPLAR_COMMON_PRIVILEGES_PRIVILEGES_H_
#define POPLAR_COMMON_PRIVILEGES_PRIVILEGES_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace poplar::privileges {

struct Identity {
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups: exactly these
};

// Looks the names up: `group` empty means the user's primary group. FailedPrecondition naming
// the missing name ("run_as.user X does not exist"), or a root user; `section` prefixes the
// field names in messages.
absl::StatusOr<Identity> Resolve(const std::string& user, const std::string& group,
                                 const std::vector<std::string>& extra_groups,
                                 std::string_view section = "run_as");

// The capabilities a daemon may keep after Drop, by name as in capabilities(7): the file
// access ones (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN) and
// CAP_NET_BIND_SERVICE. Nothing that could give root back (CAP_SETUID, CAP_SYS_ADMIN, ...).
// InvalidArgument for any other name.
absl::StatusOr<std::vector<int>> CapabilitiesFromNames(const std::vector<std::string>& names);
bool IsKeepableCapability(std::string_view name);

// For good: with `narrow_bounding_set`, the bounding set loses every capability not in `keep`
// (when the process may change it); then setgroups + setresgid + setresuid to `id`, then the
// permitted and effective sets are exactly `keep` (inheritable and ambient empty). Checks that
// root cannot be regained. FailedPrecondition naming the step that was refused.
absl::Status Drop(const Identity& id, const std::vector<int>& keep = {},
                  bool narrow_bounding_set = true);

// Resolve + Drop without capabilities (popd's run_as). popd drops after its event-loop threads
// exist; the uid change reaches them (glibc) and empties their capability sets (the kernel),
// but the bounding set is per thread, so it is left as the service manager set it rather than
// narrowed in one thread only.
absl::Status DropPrivileges(const std::string& user, const std::string& group,
                            const std::vector<std::string>& extra_groups);

}  // namespace poplar::privileges

#endif  // POPLAR_COMMON_PRIVILEGES_PRIVILEGES_H_
