#include "popd/abuse_guard.h"

#include <algorithm>

namespace poplar::popd {

void AbuseGuard::set_limits(Limits limits) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_ = limits;
}

bool AbuseGuard::Connected(const IpAddress& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  PerIp& e = ips_[ip.bytes()];
  if (e.connections >= limits_.max_connections_per_ip) {
    if (e.connections == 0 && e.failures.times.empty()) ips_.erase(ip.bytes());
    return false;
  }
  ++e.connections;
  Trim();
  return true;
}

void AbuseGuard::Disconnected(const IpAddress& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ips_.find(ip.bytes());
  if (it == ips_.end()) return;
  if (it->second.connections > 0) --it->second.connections;
  if (it->second.connections == 0 && it->second.failures.times.empty()) ips_.erase(it);
}

void AbuseGuard::Prune(Failures& f, Clock::time_point now) const {
  while (!f.times.empty() && now - f.times.front() >= limits_.window) f.times.pop_front();
}

bool AbuseGuard::LoginAllowed(const IpAddress& ip, const std::string& user, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = ips_.find(ip.bytes()); it != ips_.end()) {
    Prune(it->second.failures, now);
    if (it->second.failures.times.size() >= limits_.max_failures_per_ip) return false;
  }
  if (auto it = users_.find(user); it != users_.end()) {
    Prune(it->second, now);
    if (it->second.times.empty()) {
      users_.erase(it);
    } else if (it->second.times.size() >= limits_.max_failures_per_user) {
      return false;
    }
  }
  return true;
}

void AbuseGuard::LoginFailed(const IpAddress& ip, const std::string& user, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  PerIp& e = ips_[ip.bytes()];
  Prune(e.failures, now);
  // Only as many as the limit matter: the deques stay small whatever a client does.
  if (e.failures.times.size() < limits_.max_failures_per_ip) e.failures.times.push_back(now);
  Failures& u = users_[user];
  Prune(u, now);
  if (u.times.size() < limits_.max_failures_per_user) u.times.push_back(now);
  Trim();
}

void AbuseGuard::Trim() {
  // Bounded memory under a flood of distinct addresses or names: forget failure-only records
  // (never an address's open-connection count) until under the bound.
  if (ips_.size() + users_.size() <= limits_.max_tracked) return;
  for (auto it = users_.begin();
       it != users_.end() && ips_.size() + users_.size() > limits_.max_tracked;) {
    it = users_.erase(it);
  }
  for (auto it = ips_.begin();
       it != ips_.end() && ips_.size() + users_.size() > limits_.max_tracked;) {
    if (it->second.connections == 0) {
      it = ips_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t AbuseGuard::tracked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ips_.size() + users_.size();
}

}  // namespace poplar::popd
