// SessionDemux: popd's bookkeeping of one Maildrop.Sessions stream (proto/poplar/maildrop.proto)
// without gRPC: which tags are live, in which phase, and what each event, call or the stream's
// end means for a session. SessionMux (popd/indexer_client.cc) carries out the answers: it calls
// the session's handler and sends the Close. Table-driven tests:
// tests/component/session_demux_test.cc.
//
// Not thread-safe: SessionMux calls it under its stream's lock.
#ifndef POPLAR_POPD_SESSION_DEMUX_H_
#define POPLAR_POPD_SESSION_DEMUX_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace poplar::popd {

class SessionDemux {
 public:
  // Which of the session's handlers must run (SessionCall::Handlers).
  enum class Report {
    kNone,
    kSnapshot,        // on_snapshot(the event's snapshot)
    kSnapshotFailed,  // on_snapshot(status)
    kCommitted,       // on_commit(the event's result)
    kCommitFailed,    // on_commit(status)
    kLost,            // on_lost(status)
    kProbe,           // on_probe(): is the session still alive? (it goes on either way)
  };
  struct Outcome {
    Report report = Report::kNone;
    absl::Status status;
    bool send_close = false;  // the indexer must be told to release the tag
    // Every report but kSnapshot and kProbe ends the session: its tag is no longer live.
    bool ends() const {
      return report != Report::kNone && report != Report::kSnapshot && report != Report::kProbe;
    }
  };

  // A new session: its tag (counting up from 1, never reused on the stream), opening.
  uint64_t Open();
  // The session asks to commit: true (now committing) if it is open, else false.
  bool Commit(uint64_t tag);
  // The session gives up (no handler runs after): true if the indexer must get a Close.
  bool Cancel(uint64_t tag);
  // Events from the indexer. An event for a tag that is not live is ignored (it crossed the
  // session's Cancel); one out of protocol ends the session with INTERNAL and a Close.
  Outcome OnSnapshot(uint64_t tag);
  Outcome OnCommitted(uint64_t tag);
  Outcome OnError(uint64_t tag, absl::Status why);
  Outcome OnUnknownEvent(uint64_t tag);
  // A liveness probe (maildrop.proto): another login waits for this session's maildrop. For
  // a session opening or open: kProbe (the connection checks itself, then answers with
  // Alive() or ends the session). For one committing (its QUIT is being answered, the lease
  // goes with the result) or not live (it crossed the Close): nothing, the release is on its
  // way.
  Outcome OnProbe(uint64_t tag);
  // The session answers a probe: true if the `alive` request must go (the tag is still live
  // and not committing).
  bool Alive(uint64_t tag);
  // The stream ended: every live session fails with `why` in its phase.
  std::vector<std::pair<uint64_t, Outcome>> EndAll(const absl::Status& why);

  size_t size() const { return phases_.size(); }

 private:
  enum class Phase { kOpening, kOpen, kCommitting };
  // The failure report of a session in `phase`, which ends it.
  static Outcome Failure(Phase phase, absl::Status why);
  Outcome OutOfProtocol(uint64_t tag, Phase phase);

  uint64_t next_tag_ = 1;
  absl::flat_hash_map<uint64_t, Phase> phases_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_SESSION_DEMUX_H_
