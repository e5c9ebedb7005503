// SessionDemux: popd's side of a Sessions stream as scripted sequences: each call, event or
// stream end with the handler that must run and whether the indexer must get a Close.
#include "popd/session_demux.h"

#include <vector>

#include "gtest/gtest.h"

namespace poplar::popd {
namespace {

using Report = SessionDemux::Report;

struct In {
  enum Kind {
    kOpen,
    kCommit,
    kCancel,
    kSnapshot,
    kCommitted,
    kError,
    kUnknownEvent,
    kProbe,
    kAlive
  };
  Kind kind;
  uint64_t tag;
  // Expected:
  Report report = Report::kNone;
  absl::StatusCode code = absl::StatusCode::kOk;
  bool close = false;    // kCancel: the Close to send; events: the Close of an out-of-protocol one
  bool accepted = true;  // kCommit: committing now; kAlive: the `alive` request must go
};

struct Script {
  const char* name;
  std::vector<In> steps;
  size_t live_after;
};

const Script kScripts[] = {
    {"open, snapshot, commit, result",
     {{In::kOpen, 1},
      {In::kSnapshot, 1, Report::kSnapshot},
      {In::kCommit, 1},
      {In::kCommitted, 1, Report::kCommitted}},
     0},
    {"interleaved sessions each get their own events",
     {{In::kOpen, 1},
      {In::kOpen, 2},
      {In::kSnapshot, 2, Report::kSnapshot},
      {In::kError, 1, Report::kSnapshotFailed, absl::StatusCode::kResourceExhausted},
      {In::kCommit, 2},
      {In::kCommitted, 2, Report::kCommitted}},
     0},
    {"an error ends the session in its phase",
     {{In::kOpen, 1},
      {In::kSnapshot, 1, Report::kSnapshot},
      {In::kError, 1, Report::kLost, absl::StatusCode::kCancelled},
      {In::kOpen, 2},
      {In::kSnapshot, 2, Report::kSnapshot},
      {In::kCommit, 2},
      {In::kError, 2, Report::kCommitFailed, absl::StatusCode::kUnavailable}},
     0},
    {"commit refused unless open",
     {{In::kOpen, 1},
      {In::kCommit, 1, Report::kNone, absl::StatusCode::kOk, false, false},
      {In::kSnapshot, 1, Report::kSnapshot},
      {In::kCommit, 1},
      {In::kCommit, 1, Report::kNone, absl::StatusCode::kOk, false, false},
      {In::kCommit, 9, Report::kNone, absl::StatusCode::kOk, false, false}},
     1},
    {"cancel sends a Close once; later events for the tag are ignored",
     {{In::kOpen, 1},
      {In::kCancel, 1, Report::kNone, absl::StatusCode::kOk, true},
      {In::kCancel, 1},
      {In::kSnapshot, 1},
      {In::kError, 1}},
     0},
    {"cancel after the session ended sends nothing",
     {{In::kOpen, 1},
      {In::kError, 1, Report::kSnapshotFailed, absl::StatusCode::kUnauthenticated},
      {In::kCancel, 1}},
     0},
    {"events out of protocol end the session with INTERNAL and a Close",
     {{In::kOpen, 1},
      {In::kCommitted, 1, Report::kSnapshotFailed, absl::StatusCode::kInternal, true},
      {In::kOpen, 2},
      {In::kSnapshot, 2, Report::kSnapshot},
      {In::kSnapshot, 2, Report::kLost, absl::StatusCode::kInternal, true},
      {In::kOpen, 3},
      {In::kSnapshot, 3, Report::kSnapshot},
      {In::kCommit, 3},
      {In::kUnknownEvent, 3, Report::kCommitFailed, absl::StatusCode::kInternal, true}},
     0},
    {"events for tags never opened are ignored",
     {{In::kSnapshot, 5}, {In::kCommitted, 5}, {In::kError, 5}, {In::kUnknownEvent, 5}},
     0},
    {"a probe reaches an opening or open session, which goes on and may answer alive",
     {{In::kOpen, 1},
      {In::kProbe, 1, Report::kProbe},
      {In::kAlive, 1},
      {In::kSnapshot, 1, Report::kSnapshot},
      {In::kProbe, 1, Report::kProbe},
      {In::kAlive, 1},
      {In::kAlive, 1},  // answering twice is harmless: the indexer ignores what it did not ask
      {In::kCommit, 1},
      {In::kCommitted, 1, Report::kCommitted}},
     0},
    {"a committing session is ending: its probe needs no answer and gets none",
     {{In::kOpen, 1},
      {In::kSnapshot, 1, Report::kSnapshot},
      {In::kCommit, 1},
      {In::kProbe, 1},
      {In::kAlive, 1, Report::kNone, absl::StatusCode::kOk, false, false},
      {In::kCommitted, 1, Report::kCommitted}},
     0},
    {"a probe that crossed the Close, or for a tag never opened, is ignored",
     {{In::kOpen, 1},
      {In::kSnapshot, 1, Report::kSnapshot},
      {In::kCancel, 1, Report::kNone, absl::StatusCode::kOk, true},
      {In::kProbe, 1},
      {In::kAlive, 1, Report::kNone, absl::StatusCode::kOk, false, false},
      {In::kProbe, 7},
      {In::kAlive, 7, Report::kNone, absl::StatusCode::kOk, false, false}},
     0},
};

TEST(SessionDemuxTest, Scripts) {
  for (const Script& script : kScripts) {
    SCOPED_TRACE(script.name);
    SessionDemux demux;
    for (size_t i = 0; i < script.steps.size(); ++i) {
      const In& in = script.steps[i];
      SCOPED_TRACE(::testing::Message() << "step " << i << " tag " << in.tag);
      SessionDemux::Outcome got;
      switch (in.kind) {
        case In::kOpen:
          EXPECT_EQ(demux.Open(), in.tag);
          continue;
        case In::kCommit:
          EXPECT_EQ(demux.Commit(in.tag), in.accepted);
          continue;
        case In::kCancel:
          EXPECT_EQ(demux.Cancel(in.tag), in.close);
          continue;
        case In::kSnapshot:
          got = demux.OnSnapshot(in.tag);
          break;
        case In::kCommitted:
          got = demux.OnCommitted(in.tag);
          break;
        case In::kError:
          got = demux.OnError(
              in.tag, absl::Status(in.code == absl::StatusCode::kOk ? absl::StatusCode::kUnavailable
                                                                    : in.code,
                                   "why"));
          break;
        case In::kUnknownEvent:
          got = demux.OnUnknownEvent(in.tag);
          break;
        case In::kProbe:
          got = demux.OnProbe(in.tag);
          EXPECT_FALSE(got.ends());  // a probe never ends the session by itself
          break;
        case In::kAlive:
          EXPECT_EQ(demux.Alive(in.tag), in.accepted);
          continue;
      }
      EXPECT_EQ(got.report, in.report);
      if (in.report != Report::kNone && in.report != Report::kSnapshot &&
          in.report != Report::kCommitted && in.report != Report::kProbe) {
        EXPECT_EQ(got.status.code(), in.code);
      }
      EXPECT_EQ(got.send_close, in.close);
    }
    EXPECT_EQ(demux.size(), script.live_after);
  }
}

TEST(SessionDemuxTest, StreamEndFailsEverySessionInItsPhase) {
  SessionDemux demux;
  const uint64_t opening = demux.Open();
  const uint64_t open = demux.Open();
  const uint64_t committing = demux.Open();
  demux.OnSnapshot(open);
  demux.OnSnapshot(committing);
  demux.Commit(committing);
  auto ended = demux.EndAll(absl::UnavailableError("stream gone"));
  ASSERT_EQ(ended.size(), 3u);
  for (const auto& [tag, outcome] : ended) {
    EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnavailable);
    EXPECT_FALSE(outcome.send_close);  // the stream is gone: the indexer released them itself
    EXPECT_TRUE(outcome.ends());
    const Report want = tag == opening ? Report::kSnapshotFailed
                        : tag == open  ? Report::kLost
                                       : Report::kCommitFailed;
    EXPECT_EQ(outcome.report, want) << "tag " << tag;
    EXPECT_TRUE(tag == opening || tag == open || tag == committing);
  }
  EXPECT_EQ(demux.size(), 0u);
  EXPECT_EQ(demux.Open(), 4u);  // tags are never reused on a stream
}

}  // namespace
}  // namespace poplar::popd
