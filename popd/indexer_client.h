// popd's side of the maildrop service (proto/poplar/maildrop.proto), asynchronous.
//
// Calls use gRPC's callback API: nothing blocks an event loop. Completions run on gRPC's own
// threads; every callback here is expected to hand its result to the connection's loop
// (EventLoop::Post) and return. A call object stays alive until gRPC is done with it, so a
// connection that closes early only has to Cancel() it: that ends the maildrop lease at once
// (the indexer releases a lease when its session is closed or its stream ends) and nothing is
// committed.
#ifndef POPLAR_POPD_INDEXER_CLIENT_H_
#define POPLAR_POPD_INDEXER_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
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

// One POP3 session's maildrop session at the indexer: OpenSession -> Snapshot, [Commit ->
// CommitResult]. One tag of a Sessions stream: the event loop's shared one (SessionMux) or one
// of its own (IndexerClient::OpenSession); the connection sees no difference.
class SessionCall {
 public:
  struct Handlers {
    // Exactly once unless Cancel() came first: the snapshot, or why there is none
    // (RESOURCE_EXHAUSTED: the maildrop is in use).
    std::function<void(absl::StatusOr<v1::Snapshot>)> on_snapshot;
    // Once per Commit(): the result or why there is none.
    std::function<void(absl::StatusOr<v1::CommitResult>)> on_commit;
    // The session ended while it was open and no commit was pending (e.g. an admin ended the
    // session, or the indexer went away): the lease is gone.
    std::function<void(absl::Status)> on_lost;
    // Another login waits for this session's maildrop (a liveness probe, maildrop.proto): the
    // connection checks itself right now and either ends (Cancel, which releases the lease)
    // or calls Alive(). Empty: the session is answered alive at once.
    std::function<void()> on_probe;
  };
  virtual ~SessionCall() = default;

  // Sends Commit (possibly with no deletions: that only releases the lease). After on_snapshot
  // delivered a snapshot; otherwise on_commit gets FailedPrecondition.
  virtual void Commit(v1::Commit commit) = 0;
  // Ends the session without a commit: the lease is released, nothing deleted. Idempotent and
  // safe at any time from any thread; no handler runs after it returns... except one already
  // running on a gRPC thread, which is why handlers only post to the loop.
  virtual void Cancel() = 0;
  // The answer to on_probe: the session is alive (the waiting login gets [IN-USE] at once).
  // Safe at any time from any thread; a no-op where there is nothing to answer.
  virtual void Alive() {}
};

// Where a connection gets its SessionCall: IndexerClient (a stream per session) or SessionMux
// (a shared stream per event loop).
class SessionOpener {
 public:
  virtual ~SessionOpener() = default;
  // `open.password` non-empty (USER/PASS, PLAIN, LOGIN) or `open.scram` set: the indexer
  // checks the credentials in the same round trip (an UNAUTHENTICATED status then comes
  // through on_snapshot; a SCRAM snapshot carries the server signature).
  virtual std::shared_ptr<SessionCall> OpenSession(v1::OpenSession open,
                                                   SessionCall::Handlers handlers) = 0;
};

// Counts the gRPC calls in flight, so that their channel outlives every one of them. A channel
// (or the last gRPC object of the process) released inside a gRPC callback is destroyed on
// gRPC's own thread, concurrently with whatever the process does next; at exit that raced with
// gRPC's global shutdown (ASan: a double free in grpc_cq_internal_unref, issue 15). Each call
// object holds a token as its FIRST member, so the token goes after the call's ClientContext.
class CallTracker {
 public:
  using Token = std::shared_ptr<void>;
  Token Enter();
  // True when no call is in flight within `timeout`.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  int64_t in_flight_ = 0;
};

class IndexerClient final : public SessionOpener {
 public:
  struct Options {
    std::string target;  // "unix:/path" or "host:port"
    uint32_t max_snapshot_bytes = 256u << 20;
    // Event loops use a SessionMux each (true) or a Sessions stream per session (false).
    bool multiplex_sessions = true;
  };
  explicit IndexerClient(const Options& options);
  // Waits (bounded) until every call it started has ended; the owner cancels them first (the
  // event loops' connections and SessionMux streams). Calls that outlive the wait keep the
  // channel: it is then left to the process's exit rather than freed under them.
  ~IndexerClient() override;

  bool multiplex_sessions() const { return multiplex_sessions_; }
  v1::Maildrop::Stub& stub() { return *stub_; }
  CallTracker& calls() { return calls_; }

  // A session on a Sessions stream of its own (one tag), which ends with the session: when
  // the call is cancelled or its last owner lets it go.
  std::shared_ptr<SessionCall> OpenSession(v1::OpenSession open,
                                           SessionCall::Handlers handlers) override;

  // SCRAM's first step; `done` runs on a gRPC thread. `deadline` bounds the call.
  using ScramDone = std::function<void(absl::StatusOr<v1::ScramLookupReply>)>;
  void ScramLookup(const std::string& user, const std::string& client_address,
                   std::chrono::system_clock::time_point deadline, ScramDone done);

 private:
  bool multiplex_sessions_;
  CallTracker calls_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Maildrop::Stub> stub_;
};

// The sessions of one event loop over one Maildrop.Sessions stream (maildrop.proto), so an
// idle POP3 session costs a map entry here and a table entry in the indexer instead of a gRPC
// call on each side. The stream opens with the first session and stays; when it fails (the
// indexer restarted, the connection or keepalive failed) every session on it fails exactly as
// its own stream would have (on_snapshot / on_commit / on_lost with the status), and the next
// OpenSession starts a new one. Re-opening is paced by the channel, not here: while the
// indexer is unreachable the channel is in TRANSIENT_FAILURE between its reconnect attempts
// (GRPC_ARG_*_RECONNECT_BACKOFF_MS, 200 ms doubling to 2 s), and a stream started then fails
// at once, so the login gets [SYS/TEMP] at once, as with a stream per session; the first login
// after the channel reconnected gets a working stream. Every event loop has its own stream, so
// each loop must see a login to notice that the indexer is back.
//
// Its sessions answer liveness probes (OpenSession.answers_probes): a probe reaches the
// session's on_probe handler, which answers through SessionCall::Alive or ends the session.
//
// OpenSession from the owning loop's thread; SessionCall methods from any thread.
class SessionMux final : public SessionOpener {
 public:
  explicit SessionMux(IndexerClient* client) : client_(client) {}
  // Cancels the stream (its sessions were cancelled by their connections already).
  ~SessionMux() override;

  std::shared_ptr<SessionCall> OpenSession(v1::OpenSession open,
                                           SessionCall::Handlers handlers) override;

  class Stream;

 private:
  IndexerClient* client_;
  std::mutex mu_;
  std::shared_ptr<Stream> stream_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_INDEXER_CLIENT_H_
