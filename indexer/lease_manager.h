// LeaseManager: the exclusive per-maildrop session lease (design §2 invariant 4, §5 "Leases").
//
// A maildrop has at most one lease. A second Acquire fails at once with ResourceExhausted,
// which popd turns into "-ERR [IN-USE]" (never a 10-second wait). The lease lives exactly as
// long as the front-end's Session stream: the service releases it when the stream ends for
// any reason (QUIT, client gone, front-end crashed and its channel died). Revoke() is the
// admin's "end this session": it asks the stream to cancel; the lease is released when the
// stream actually ends, so no second session can start while the first may still commit.
// Thread-safe: gRPC calls it from many threads.
#ifndef POPLAR_INDEXER_LEASE_MANAGER_H_
#define POPLAR_INDEXER_LEASE_MANAGER_H_

#include <functional>
#include <string>
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

class LeaseManager {
 public:
  // Grants the lease on info.mailbox; returns it with session_id filled in. `on_revoke` is
  // called (without the manager's lock held) if an admin revokes the session.
  absl::StatusOr<LeaseInfo> Acquire(LeaseInfo info, std::function<void()> on_revoke);
  // Ends the lease of `session_id`; a no-op if it is not held.
  void Release(const std::string& session_id);
  // Asks the session to end. NotFound if no such session.
  absl::Status Revoke(const std::string& session_id);

  std::vector<LeaseInfo> List() const;
  bool IsLeased(const std::string& mailbox) const;
  size_t size() const;

 private:
  struct Entry {
    LeaseInfo info;
    std::function<void()> on_revoke;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> by_session_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> by_mailbox_ ABSL_GUARDED_BY(mu_);
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_LEASE_MANAGER_H_
