#include "indexer/lease_manager.h"

#include <openssl/rand.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/util/hex.h"

namespace poplar::indexer {

LeaseManager::LeaseManager() : thread_([this] { Run(); }) {}

LeaseManager::~LeaseManager() { Shutdown(); }

absl::Status LeaseManager::InUse(const std::string& mailbox) {
  return absl::ResourceExhaustedError(
      absl::StrCat("maildrop ", mailbox, " is in use by another session"));
}

absl::StatusOr<LeaseInfo> LeaseManager::GrantLocked(LeaseInfo info, LeaseHooks hooks) {
  // Unguessable ids: a session id is what EndSession takes, and it appears in logs.
  unsigned char random[12];
  if (RAND_bytes(random, sizeof random) != 1) {
    return absl::UnavailableError("no randomness for a session id");
  }
  info.session_id = absl::StrCat(
      ++counter_, "-", HexEncode(std::string_view(reinterpret_cast<char*>(random), sizeof random)));
  info.started = absl::Now();
  by_mailbox_[info.mailbox] = info.session_id;
  by_session_[info.session_id] = Entry{info, std::move(hooks)};
  return info;
}

absl::StatusOr<LeaseInfo> LeaseManager::Acquire(LeaseInfo info, std::function<void()> on_revoke) {
  return Acquire(std::move(info), LeaseHooks{std::move(on_revoke), nullptr});
}

absl::StatusOr<LeaseInfo> LeaseManager::Acquire(LeaseInfo info, LeaseHooks hooks) {
  absl::MutexLock lock(&mu_);
  if (by_mailbox_.contains(info.mailbox)) return InUse(info.mailbox);
  return GrantLocked(std::move(info), std::move(hooks));
}

void LeaseManager::AcquireAsync(LeaseInfo info, LeaseHooks hooks, absl::Duration wait,
                                AcquireDone done) {
  std::optional<absl::StatusOr<LeaseInfo>> now;  // the answer, when it needs no waiting
  std::function<Liveness(const std::string&)> check;
  std::string holder;
  {
    absl::MutexLock lock(&mu_);
    auto held = by_mailbox_.find(info.mailbox);
    if (held == by_mailbox_.end()) {
      now = GrantLocked(std::move(info), std::move(hooks));
    } else {
      Entry& e = by_session_.at(held->second);
      // A holder with no way to ask it is taken to be alive: [IN-USE] at once, as ever (an old
      // front-end, a Session stream, the deferred expunge).
      if (stopping_) {
        now = absl::UnavailableError("the indexer is shutting down");
      } else if (wait <= absl::ZeroDuration() || !e.hooks.check) {
        now = InUse(info.mailbox);
      } else {
        std::deque<Waiter>& queue = waiters_[info.mailbox];
        queue.push_back(
            Waiter{std::move(info), std::move(hooks), absl::Now() + wait, wait, std::move(done)});
        ++waiting_;
        wake_.Signal();  // a new deadline
        // One question per holder: the waiters that come while it is out share its answer.
        if (!e.checked) {
          e.checked = true;
          check = e.hooks.check;
          holder = held->second;
        }
      }
    }
  }
  if (now) {
    done(std::move(*now));
    return;
  }
  // Outside the lock: the hook reaches into the holder's stream, which may be releasing a
  // lease (and so waiting for this lock) right now.
  if (check && check(holder) == Liveness::kAlive) Alive(holder);
}

void LeaseManager::CompleteLocked(AcquireDone done, absl::StatusOr<LeaseInfo> result) {
  due_.push_back(
      [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
  wake_.Signal();
}

void LeaseManager::Alive(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  it->second.checked = false;  // the next login asks again: the holder may end later
  auto w = waiters_.find(it->second.info.mailbox);
  if (w == waiters_.end()) return;
  for (Waiter& waiter : w->second) CompleteLocked(std::move(waiter.done), InUse(w->first));
  waiting_ -= w->second.size();
  waiters_.erase(w);
}

void LeaseManager::Release(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  const std::string mailbox = it->second.info.mailbox;
  by_mailbox_.erase(mailbox);
  by_session_.erase(it);
  auto w = waiters_.find(mailbox);
  if (w == waiters_.end()) return;
  std::deque<Waiter> queue = std::move(w->second);
  waiters_.erase(w);
  waiting_ -= queue.size();
  // The oldest waiter gets the lease in the same step (no other login can slip in between);
  // the others now face a session that has just logged in, which is alive: [IN-USE].
  Waiter first = std::move(queue.front());
  queue.pop_front();
  CompleteLocked(std::move(first.done), GrantLocked(std::move(first.info), std::move(first.hooks)));
  for (Waiter& waiter : queue) CompleteLocked(std::move(waiter.done), InUse(mailbox));
}

absl::Status LeaseManager::Revoke(const std::string& session_id) {
  std::function<void()> cb;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_session_.find(session_id);
    if (it == by_session_.end())
      return absl::NotFoundError(absl::StrCat("no session ", session_id));
    cb = it->second.hooks.on_revoke;
  }
  if (cb) cb();
  return absl::OkStatus();
}

void LeaseManager::Run() {
  mu_.Lock();
  for (;;) {
    const absl::Time now = absl::Now();
    absl::Time next = absl::InfiniteFuture();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      std::deque<Waiter>& queue = it->second;
      for (auto w = queue.begin(); w != queue.end();) {
        if (w->deadline <= now) {
          CompleteLocked(std::move(w->done),
                         absl::ResourceExhaustedError(absl::StrCat(
                             "maildrop ", it->first, " is still in use by another session after ",
                             absl::FormatDuration(w->wait))));
          w = queue.erase(w);
          --waiting_;
        } else {
          next = std::min(next, w->deadline);
          ++w;
        }
      }
      if (queue.empty()) {
        // Nobody waits any more: the next login asks the holder again.
        auto holder = by_mailbox_.find(it->first);
        if (holder != by_mailbox_.end()) by_session_.at(holder->second).checked = false;
        waiters_.erase(it++);
      } else {
        ++it;
      }
    }
    if (!due_.empty()) {
      std::vector<std::function<void()>> run;
      run.swap(due_);
      mu_.Unlock();
      for (std::function<void()>& fn : run) fn();
      run.clear();  // what the completions captured goes before the lock is taken again
      mu_.Lock();
      continue;
    }
    if (stopping_) break;
    wake_.WaitWithDeadline(&mu_, next);
  }
  mu_.Unlock();
}

void LeaseManager::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [mailbox, queue] : waiters_) {
      for (Waiter& waiter : queue) {
        CompleteLocked(std::move(waiter.done),
                       absl::UnavailableError("the indexer is shutting down"));
      }
    }
    waiters_.clear();
    waiting_ = 0;
    wake_.Signal();
  }
  if (thread_.joinable()) thread_.join();
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

size_t LeaseManager::waiting() const {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

}  // namespace poplar::indexer
