// LeaseManager: the exclusive per-maildrop session lease (design §2 invariant 4, §5 "Leases").
//
// A maildrop has at most one lease. A second Acquire fails at once with ResourceExhausted,
// which popd turns into "-ERR [IN-USE]" (never a 10-second wait). The lease lives exactly as
// long as the front-end's Session stream: the service releases it when the stream ends for
// any reason (QUIT, client gone, front-end crashed and its channel died). Revoke() is the
// admin's "end this session": it asks the stream to cancel; the lease is released when the
// stream actually ends, so no second session can start while the first may still commit.
//
// Waiting for an ending holder (issue 15, maildrop.proto "Liveness probes"): a client whose
// connection dropped and that reconnects at once can ask for its maildrop before the old
// session's release arrives. AcquireAsync does not fail such a login at once: it asks the
// holder's `check` hook how the holder stands. Alive (or no hook): ResourceExhausted at once,
// as Acquire. Ending (its Close or commit is under way): the login waits for the release.
// Asked (a probe went to the holder's front-end): the login waits for the release or for
// Alive(holder), which fails it at once. Every wait is bounded (`wait`), then
// ResourceExhausted. Waiting costs a queue entry, never a thread: the completions of waiters
// run on the manager's own thread, never under its lock, never on the thread that released
// the lease (a gRPC thread in the middle of a reactor's step).
//
// Thread-safe: gRPC calls it from many threads.
#ifndef POPLAR_INDEXER_LEASE_MANAGER_H_
#define POPLAR_INDEXER_LEASE_MANAGER_H_

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace poplar::indexer {

struct LeaseInfo {
  std::string session_id;
  std::string mailbox;
  std::string user;
  std::string client_address;
  std::string front_end;
  absl::Time started;
};

// How a lease's holder stands when another login wants its maildrop.
enum class Liveness {
  kAlive,   // a live session: the other login gets ResourceExhausted at once
  kEnding,  // its release is on its way: the other login waits for it
  kAsked,   // a probe went to its front-end: wait for the release or for Alive()
};

// What the session holding a lease can be asked. Both are called without the manager's lock.
struct LeaseHooks {
  // An admin revokes the session (Revoke).
  std::function<void()> on_revoke;
  // Another login wants the maildrop; called with the holder's session id, at most once per
  // round of waiters. Empty: the holder is taken to be alive.
  std::function<Liveness(const std::string& session_id)> check;
};

class LeaseManager {
 public:
  LeaseManager();
  ~LeaseManager();  // Shutdown()
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;

  // Grants the lease on info.mailbox; returns it with session_id filled in. `on_revoke` is
  // called (without the manager's lock held) if an admin revokes the session. Never waits.
  absl::StatusOr<LeaseInfo> Acquire(LeaseInfo info, std::function<void()> on_revoke);
  absl::StatusOr<LeaseInfo> Acquire(LeaseInfo info, LeaseHooks hooks);

  // Acquire that may wait, at most `wait`, for a holder that is ending (see the top). `done`
  // runs exactly once: before this returns when no waiting is possible (the maildrop is free,
  // `wait` is zero, the holder has no `check`), else later on the manager's thread (also when
  // `check` answers kAlive). After Shutdown: Unavailable.
  using AcquireDone = std::function<void(absl::StatusOr<LeaseInfo>)>;
  void AcquireAsync(LeaseInfo info, LeaseHooks hooks, absl::Duration wait, AcquireDone done);
  // The holder `session_id` answered a probe: it is alive. Its waiters get ResourceExhausted.
  // A no-op if it holds no lease (released meanwhile: its waiter got the lease).
  void Alive(const std::string& session_id);
  // Ends the lease of `session_id`; a no-op if it is not held.
  void Release(const std::string& session_id);
  // Asks the session to end. NotFound if no such session.
  absl::Status Revoke(const std::string& session_id);

  std::vector<LeaseInfo> List() const;
  bool IsLeased(const std::string& mailbox) const;
  size_t size() const;
  size_t waiting() const;  // logins waiting for a holder now

  // Fails every waiter with Unavailable, runs the completions due, and stops the manager's
  // thread; from then on AcquireAsync answers at once. Idempotent.
  void Shutdown();

 private:
  struct Entry {
    LeaseInfo info;
    LeaseHooks hooks;
    bool checked = false;  // the waiters of this holder have asked `check`
  };
  struct Waiter {
    LeaseInfo info;
    LeaseHooks hooks;
    absl::Time deadline;
    absl::Duration wait;
    AcquireDone done;
  };
  // Records a granted lease (a fresh session id) and returns it.
  absl::StatusOr<LeaseInfo> GrantLocked(LeaseInfo info, LeaseHooks hooks)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static absl::Status InUse(const std::string& mailbox);
  // Queues `done(result)` for the manager's thread.
  void CompleteLocked(AcquireDone done, absl::StatusOr<LeaseInfo> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run();  // the manager's thread: deadlines and completions

  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  absl::flat_hash_map<std::string, Entry> by_session_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> by_mailbox_ ABSL_GUARDED_BY(mu_);
  // Logins waiting for a mailbox's holder, oldest first.
  absl::flat_hash_map<std::string, std::deque<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  size_t waiting_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> due_ ABSL_GUARDED_BY(mu_);  // completions to run
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_LEASE_MANAGER_H_
