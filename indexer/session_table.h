// SessionTable: the bookkeeping of one Maildrop.Sessions stream (proto/poplar/maildrop.proto),
// without gRPC or the Indexer, so that every protocol rule is a table-driven unit test
// (tests/unit/session_table_test.cc). The service (indexer/maildrop_service.cc) feeds it each
// request, each finished OpenSession/Commit and each admin revoke, and carries out the Step it
// returns: release a lease, start an operation, send an event.
//
// A tag is kOpening while its OpenSession runs, kOpen while the POP3 session is in TRANSACTION
// state, kCommitting while its Commit runs; it leaves the table when its session ends. A busy
// tag (opening or committing) cannot end at once: a close, revoke or protocol error marks it,
// and the operation's completion then ends it as marked.
//
// Not thread-safe: the service calls it under its own lock.
#ifndef POPLAR_INDEXER_SESSION_TABLE_H_
#define POPLAR_INDEXER_SESSION_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace poplar::indexer {

class SessionTable {
 public:
  explicit SessionTable(size_t max_sessions) : max_sessions_(max_sessions) {}

  // What the caller must do, in this order: release `release` (a lease's session id) if not
  // empty; start `start`; then send the tag's event: the error if `error` is set, else the
  // operation's outcome if `send_outcome` (the Snapshot, or the CommitResult or its failure).
  struct Step {
    enum class Start { kNone, kOpen, kCommit };
    Start start = Start::kNone;
    std::string commit_session;  // kCommit: the session to commit
    std::string release;
    std::optional<absl::Status> error;
    bool send_outcome = false;
  };

  // Requests read from the stream.
  Step Open(uint64_t tag);
  Step Commit(uint64_t tag);
  Step Close(uint64_t tag);
  Step Malformed(uint64_t tag);  // a request with no kind
  // The OpenSession started by Open(tag) finished: the lease's session id, or why none.
  Step OpenDone(uint64_t tag, const absl::Status& status, const std::string& session_id);
  // The Commit started by Commit(tag) finished (the Indexer's Commit keeps the lease either way).
  Step CommitDone(uint64_t tag, const absl::Status& status);
  // An administrator ended the session (LeaseManager::Revoke).
  Step Revoke(uint64_t tag);

  // Liveness probes (maildrop.proto, rpc Sessions): another login wants the maildrop whose
  // lease `session_id` this tag holds (from its open on, even before the snapshot went out).
  // kEnding when the session is over or going (closed or failed while busy, committing, not
  // in the table, the stream ended): the release is on its way. Else kAsk when the client
  // answers probes (`answers_probes`: the caller must then send the probe event, and the tag
  // remembers the lease it asked about), kAlive when it does not.
  enum class ProbeAnswer { kAlive, kEnding, kAsk };
  ProbeAnswer Probe(uint64_t tag, const std::string& session_id, bool answers_probes);
  // The client says the tag's session is alive: the lease asked about (to report alive to the
  // LeaseManager), or empty when there is nothing to report (not asked, or ending since).
  std::string Alive(uint64_t tag);
  // The stream is over (client half-close, cancel, transport failure): every idle session's
  // lease to release now. Busy ones are marked; their completions release them silently.
  std::vector<std::string> EndAll();

  size_t size() const { return tags_.size(); }
  bool ended() const { return ended_; }

 private:
  enum class Phase { kOpening, kOpen, kCommitting };
  struct Entry {
    Phase phase;
    std::string session_id;            // set once the open succeeded
    bool end_silently = false;         // closed by the client, or the stream ended
    std::optional<absl::Status> fail;  // end with this error event at completion
    std::string probed;                // the lease a probe asked about, until the answer
  };
  // Ends the tag's session with an error event: at once if idle, at its completion if busy.
  Step Fail(uint64_t tag, absl::Status why);

  size_t max_sessions_;
  bool ended_ = false;
  absl::flat_hash_map<uint64_t, Entry> tags_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_SESSION_TABLE_H_
