#include "common/daemon/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "common/util/errno_status.h"
#include "common/util/unique_fd.h"

namespace poplar::daemon {

absl::Status Notify(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return absl::OkStatus();
  const size_t len = std::strlen(path);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) {
    return absl::InvalidArgumentError("NOTIFY_SOCKET is not a unix socket path");
  }
  std::memcpy(sa.sun_path, path, len);
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoToStatus(errno, "socket(AF_UNIX, SOCK_DGRAM)");
  const socklen_t sa_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&sa), sa_len) < 0) {
    return ErrnoToStatus(errno, "sd_notify sendto");
  }
  return absl::OkStatus();
}

std::optional<std::chrono::microseconds> WatchdogInterval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return std::nullopt;
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr) {
    int64_t p = 0;
    if (!absl::SimpleAtoi(pid, &p) || p != ::getpid()) return std::nullopt;
  }
  uint64_t v = 0;
  if (!absl::SimpleAtoi(usec, &v) || v == 0) return std::nullopt;
  return std::chrono::microseconds(v);
}

}  // namespace poplar::daemon
