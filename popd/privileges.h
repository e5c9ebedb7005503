// Least privilege for popd (design §8): bind the ports and read the TLS key as whoever started
// the program (root, for ports below 1024), then become an unprivileged user for good.
#ifndef POPLAR_POPD_PRIVILEGES_H_
#define POPLAR_POPD_PRIVILEGES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace poplar::popd {

// setgroups(extra_groups) + setgid(group or the user's primary group) + setuid(user), then
// checks that root cannot be regained. FailedPrecondition naming what is missing or refused.
// Call before any thread that must keep privileges exists: on Linux glibc applies the change
// to every thread of the process.
absl::Status DropPrivileges(const std::string& user, const std::string& group,
                            const std::vector<std::string>& extra_groups);

}  // namespace poplar::popd

#endif  // POPLAR_POPD_PRIVILEGES_H_
