#include "common/util/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace poplar {

absl::StatusCode ErrnoCode(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
    case ELOOP:
    case EROFS:
    case EISDIR:
    case ENAMETOOLONG:
    case EXDEV:
      return absl::StatusCode::kFailedPrecondition;
    case EINTR:
    case EAGAIN:
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
    case EBUSY:
    case ETIMEDOUT:
    case ESTALE:
    case ENOLCK:
    case ECONNREFUSED:
    case ECONNRESET:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status ErrnoToStatus(int err, std::string_view what) {
  std::string msg(what);
  msg.append(": ");
  msg.append(std::strerror(err));
  return absl::Status(ErrnoCode(err), msg);
}

}  // namespace poplar
