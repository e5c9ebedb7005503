// systemd's readiness protocol (sd_notify(3)) without libsystemd: a datagram of "KEY=VALUE"
// lines to the unix socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
// namespace). The protocol is small, stable and documented by systemd as an interface for
// programs that do not link libsystemd; doing it here keeps the packages free of a
// libsystemd0 dependency for three messages. Without $NOTIFY_SOCKET (not under systemd, or
// Type=simple) every call does nothing.
//
//   READY=1       the daemon serves (after its listeners are bound and the first scan is done)
//   RELOADING=1   a SIGHUP reload begins (then READY=1 again)
//   STOPPING=1    shutdown begins
//   WATCHDOG=1    a liveness ping, sent every half WATCHDOG_USEC (WatchdogSec= in the unit)
#ifndef POPLAR_COMMON_DAEMON_SD_NOTIFY_H_
#define POPLAR_COMMON_DAEMON_SD_NOTIFY_H_

#include <chrono>
#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace poplar::daemon {

// Sends `state` to $NOTIFY_SOCKET. OK when there is no socket to tell.
absl::Status Notify(std::string_view state);

// The watchdog period systemd expects pings within ($WATCHDOG_USEC, for this process when
// $WATCHDOG_PID names it or is unset); nullopt when there is no watchdog.
std::optional<std::chrono::microseconds> WatchdogInterval();

}  // namespace poplar::daemon

#endif  // POPLAR_COMMON_DAEMON_SD_NOTIFY_H_
