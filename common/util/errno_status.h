// The one errno -> absl::Status mapping of the tree. The code it picks decides what a POP3 client
// hears (common/pop3/session.h ErrorLine): Unavailable is "-ERR [SYS/TEMP]" (try again later),
// everything else "-ERR [SYS/PERM]". So the classes below say whether retrying can help.
#ifndef POPLAR_COMMON_UTIL_ERRNO_STATUS_H_
#define POPLAR_COMMON_UTIL_ERRNO_STATUS_H_

#include <string_view>

#include "absl/status/status.h"

namespace poplar {

// `what` names the operation and its object ("open /var/mail/ann"); the message is
// "what: strerror(err)".
//   ENOENT, ENOTDIR                          -> NotFound (the object is not there)
//   EACCES, EPERM, ELOOP, EROFS, EISDIR,
//   ENAMETOOLONG, EXDEV                      -> FailedPrecondition (set-up: fix it, then retry)
//   EINTR, EAGAIN, EIO, ENOSPC, EDQUOT, ENOMEM,
//   EMFILE, ENFILE, EBUSY, ETIMEDOUT, ESTALE,
//   ENOLCK, ECONNREFUSED, ECONNRESET         -> Unavailable (transient: disk, NFS, limits)
//   EINVAL, EBADF and anything else          -> Internal (a bug or an impossible state)
absl::Status ErrnoToStatus(int err, std::string_view what);

// The absl code of ErrnoToStatus for `err`, for callers that build their own message.
absl::StatusCode ErrnoCode(int err);

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_ERRNO_STATUS_H_
