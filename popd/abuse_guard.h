// Abuse limits shared by all of a popd's event loops (design §2.7, §6; issue: brute force).
//
//   * connections per client address: a cap on concurrent connections from one IP;
//   * failed logins per client address and per user name within a sliding window: past the
//     limit, logins from that address (or for that name) are refused without asking the
//     indexer, until the window has passed;
//   * every failed login is answered only after a delay (Connection does the waiting; this
//     class says how long), the same whether the name exists or not.
//
// Thread-safe (one mutex; touched at connect, disconnect and failed logins only, never per
// command). Memory is bounded: entries without connections or recent failures are dropped, and
// at most max_tracked addresses and names are kept (the oldest failure records go first).
// The clock is passed in, so the rules are unit-tested without sleeping.
#ifndef POPLAR_POPD_ABUSE_GUARD_H_
#define POPLAR_POPD_ABUSE_GUARD_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "popd/net.h"

namespace poplar::popd {

class AbuseGuard {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    uint32_t max_connections_per_ip = 50;
    uint32_t max_failures_per_ip = 20;     // in `window`
    uint32_t max_failures_per_user = 100;  // in `window`
    std::chrono::seconds window{600};
    size_t max_tracked = 100000;  // addresses + names remembered at most
  };

  explicit AbuseGuard(Limits limits) : limits_(limits) {}

  void set_limits(Limits limits);

  // A new connection from `ip`: false if it already has max_connections_per_ip open (the
  // caller refuses it). True means the caller must call Disconnected(ip) when it ends.
  bool Connected(const IpAddress& ip);
  void Disconnected(const IpAddress& ip);

  // May `user` try a password from `ip` now? False while either has reached its failure limit
  // within the window.
  bool LoginAllowed(const IpAddress& ip, const std::string& user, Clock::time_point now);
  void LoginFailed(const IpAddress& ip, const std::string& user, Clock::time_point now);

  size_t tracked() const;

 private:
  struct Failures {
    std::deque<Clock::time_point> times;  // within the window, oldest first
  };
  struct PerIp {
    uint32_t connections = 0;
    Failures failures;
  };
  using IpKey = std::array<uint8_t, 16>;

  void Prune(Failures& f, Clock::time_point now) const;
  void Trim();

  mutable std::mutex mu_;
  Limits limits_;
  std::map<IpKey, PerIp> ips_;
  std::map<std::string, Failures> users_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_ABUSE_GUARD_H_
