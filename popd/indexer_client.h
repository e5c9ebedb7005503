// popd's side of the maildrop service (proto/poplar/maildrop.proto), asynchronous.
//
// Calls use gRPC's callback API: nothing blocks an event loop. Completions run on gRPC's own
// threads; every callback here is expected to hand its result to the connection's loop
// (EventLoop::Post) and return. A call object stays alive until gRPC is done with it, so a
// connection that closes early only has to Cancel() it: for a session stream that ends the
// maildrop lease at once (the indexer releases a lease when its stream ends) and nothing is
// committed.
#ifndef POPLAR_POPD_INDEXER_CLIENT_H_
#define POPLAR_POPD_INDEXER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "poplar/maildrop.grpc.pb.h"

namespace poplar::popd {

// gRPC status -> absl::Status: the same code enum, message kept (for logs only; the POP3
// reply text comes from pop3::ErrorLine, which never shows it).
absl::Status FromGrpc(const grpc::Status& s);

// One POP3 session's stream: OpenSession -> Snapshot, [Commit -> CommitResult], half-close.
class SessionCall : public grpc::ClientBidiReactor<v1::SessionRequest, v1::SessionEvent> {
 public:
  struct Handlers {
    // Exactly once unless Cancel() came first: the snapshot, or why there is none
    // (RESOURCE_EXHAUSTED: the maildrop is in use).
    std::function<void(absl::StatusOr<v1::Snapshot>)> on_snapshot;
    // Once per Commit(): the result or why there is none.
    std::function<void(absl::StatusOr<v1::CommitResult>)> on_commit;
    // The stream ended while the session was open and no commit was pending (e.g. an admin
    // ended the session, or the indexer went away): the lease is gone.
    std::function<void(absl::Status)> on_lost;
  };

  // Sends Commit (possibly with no deletions: that only releases the lease). After on_snapshot
  // delivered a snapshot; otherwise on_commit gets FailedPrecondition.
  void Commit(v1::Commit commit);
  // Idempotent and safe at any time from any thread; no handler runs after it returns... except
  // one already running on a gRPC thread, which is why handlers only post to the loop.
  void Cancel();

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  friend class IndexerClient;
  enum class Phase { kOpening, kOpen, kCommitting, kClosing, kDone };
  void StartNextWriteLocked();

  std::recursive_mutex mu_;  // recursive: gRPC may run a reaction inline from a Start* call
  Phase phase_ = Phase::kOpening;
  bool cancelled_ = false;
  bool write_in_flight_ = false;
  bool open_write_pending_ = false;  // the OpenSession (with the password) not yet written
  bool commit_queued_ = false;
  bool writes_done_queued_ = false;
  Handlers handlers_;
  grpc::ClientContext ctx_;
  v1::SessionRequest open_;
  v1::SessionRequest commit_;
  v1::SessionEvent event_;
  std::shared_ptr<SessionCall> self_;  // keeps the reactor alive until OnDone
};

class IndexerClient {
 public:
  struct Options {
    std::string target;  // "unix:/path" or "host:port"
    uint32_t max_snapshot_bytes = 256u << 20;
  };
  explicit IndexerClient(const Options& options);

  // `password` non-empty (USER/PASS, PLAIN, LOGIN) or `scram` set: the indexer checks the
  // credentials in the same round trip (an UNAUTHENTICATED status then comes through
  // on_snapshot; a SCRAM snapshot carries the server signature).
  std::shared_ptr<SessionCall> OpenSession(v1::OpenSession open, SessionCall::Handlers handlers);

  // SCRAM's first step; `done` runs on a gRPC thread. `deadline` bounds the call.
  using ScramDone = std::function<void(absl::StatusOr<v1::ScramLookupReply>)>;
  void ScramLookup(const std::string& user, const std::string& client_address,
                   std::chrono::system_clock::time_point deadline, ScramDone done);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Maildrop::Stub> stub_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_INDEXER_CLIENT_H_
