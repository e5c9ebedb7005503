#include "indexer/lease_manager.h"

#include <openssl/rand.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/util/hash.h"

namespace poplar::indexer {

absl::StatusOr<LeaseInfo> LeaseManager::Acquire(LeaseInfo info, std::function<void()> on_revoke) {
  // Unguessable ids: a session id is what EndSession takes, and it appears in logs.
  unsigned char random[12];
  if (RAND_bytes(random, sizeof random) != 1) {
    return absl::UnavailableError("no randomness for a session id");
  }
  absl::MutexLock lock(&mu_);
  if (by_mailbox_.contains(info.mailbox)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("maildrop ", info.mailbox, " is in use by another session"));
  }
  info.session_id = absl::StrCat(
      ++counter_, "-", HexEncode(std::string_view(reinterpret_cast<char*>(random), sizeof random)));
  info.started = absl::Now();
  by_mailbox_[info.mailbox] = info.session_id;
  by_session_[info.session_id] = Entry{info, std::move(on_revoke)};
  return info;
}

void LeaseManager::Release(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  by_mailbox_.erase(it->second.info.mailbox);
  by_session_.erase(it);
}

absl::Status LeaseManager::Revoke(const std::string& session_id) {
  std::function<void()> cb;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_session_.find(session_id);
    if (it == by_session_.end())
      return absl::NotFoundError(absl::StrCat("no session ", session_id));
    cb = it->second.on_revoke;
  }
  if (cb) cb();
  return absl::OkStatus();
}

std::vector<LeaseInfo> LeaseManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<LeaseInfo> out;
  out.reserve(by_session_.size());
  for (const auto& [id, e] : by_session_) out.push_back(e.info);
  std::sort(out.begin(), out.end(),
            [](const LeaseInfo& a, const LeaseInfo& b) { return a.started < b.started; });
  return out;
}

bool LeaseManager::IsLeased(const std::string& mailbox) const {
  absl::MutexLock lock(&mu_);
  return by_mailbox_.contains(mailbox);
}

size_t LeaseManager::size() const {
  absl::MutexLock lock(&mu_);
  return by_session_.size();
}

}  // namespace poplar::indexer
