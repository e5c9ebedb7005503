// SessionTable: every rule of the Maildrop.Sessions protocol as a scripted sequence of inputs,
// each with the Step the service must carry out.
#include "indexer/session_table.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace poplar::indexer {
namespace {

using Start = SessionTable::Step::Start;

// One input and what must come of it.
struct In {
  enum Kind {
    kOpen,
    kCommit,
    kClose,
    kMalformed,
    kOpenOk,
    kOpenFailed,
    kCommitOk,
    kCommitFailed,
    kRevoke
  };
  Kind kind;
  uint64_t tag;
  // Expected:
  Start start = Start::kNone;
  std::string release = "";                        // lease released
  absl::StatusCode error = absl::StatusCode::kOk;  // kOk: no error event
  bool outcome = false;
};

struct Script {
  const char* name;
  size_t max_sessions;
  std::vector<In> steps;
  size_t live_after;
};

// OpenOk(tag) grants the lease "s<tag>".
SessionTable::Step Apply(SessionTable& t, const In& in) {
  const std::string id = "s" + std::to_string(in.tag);
  switch (in.kind) {
    case In::kOpen:
      return t.Open(in.tag);
    case In::kCommit:
      return t.Commit(in.tag);
    case In::kClose:
      return t.Close(in.tag);
    case In::kMalformed:
      return t.Malformed(in.tag);
    case In::kOpenOk:
      return t.OpenDone(in.tag, absl::OkStatus(), id);
    case In::kOpenFailed:
      return t.OpenDone(in.tag, absl::ResourceExhaustedError("in use"), "");
    case In::kCommitOk:
      return t.CommitDone(in.tag, absl::OkStatus());
    case In::kCommitFailed:
      return t.CommitDone(in.tag, absl::UnavailableError("locks busy"));
    case In::kRevoke:
      return t.Revoke(in.tag);
  }
  return {};
}

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

const Script kScripts[] = {
    {"open, snapshot, commit, result",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kCommit, 1, Start::kCommit},
      {In::kCommitOk, 1, Start::kNone, "s1", absl::StatusCode::kOk, true}},
     0},
    {"two sessions interleaved keep their own state",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpen, 2, Start::kOpen},
      {In::kOpenOk, 2, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kCommit, 2, Start::kCommit},
      {In::kClose, 1, Start::kNone, "s1"},
      {In::kCommitOk, 2, Start::kNone, "s2", absl::StatusCode::kOk, true}},
     0},
    {"open refused: the error ends the tag, no lease",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenFailed, 1, Start::kNone, "", absl::StatusCode::kResourceExhausted},
      {In::kClose, 1}},
     0},
    {"failed commit: error, lease released",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kCommit, 1, Start::kCommit},
      {In::kCommitFailed, 1, Start::kNone, "s1", absl::StatusCode::kUnavailable}},
     0},
    {"close of an open session releases it silently",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kClose, 1, Start::kNone, "s1"},
      {In::kClose, 1}},  // again: ignored
     0},
    {"close while opening: released at completion, no event",
     10,
     {{In::kOpen, 1, Start::kOpen}, {In::kClose, 1}, {In::kOpenOk, 1, Start::kNone, "s1"}},
     0},
    {"close while committing: released at completion, no event",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kCommit, 1, Start::kCommit},
      {In::kClose, 1},
      {In::kCommitOk, 1, Start::kNone, "s1"}},
     0},
    {"commit before open: error for that tag only",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kCommit, 2, Start::kNone, "", kInvalid},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true}},
     1},
    {"commit before the snapshot: the open's completion releases and sends the error",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kCommit, 1},
      {In::kOpenOk, 1, Start::kNone, "s1", kInvalid}},
     0},
    {"commit twice: the running commit ends with the error",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kCommit, 1, Start::kCommit},
      {In::kCommit, 1},
      {In::kCommitOk, 1, Start::kNone, "s1", kInvalid}},
     0},
    {"duplicate tag on an open session: that session ends, the other goes on",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpen, 2, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kOpenOk, 2, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kOpen, 1, Start::kNone, "s1", kInvalid},
      {In::kCommit, 2, Start::kCommit}},
     1},
    {"duplicate tag while opening: ended at completion",
     10,
     {{In::kOpen, 1, Start::kOpen}, {In::kOpen, 1}, {In::kOpenOk, 1, Start::kNone, "s1", kInvalid}},
     0},
    {"a request with no kind ends its tag",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kMalformed, 1, Start::kNone, "s1", kInvalid},
      {In::kMalformed, 7, Start::kNone, "", kInvalid}},
     0},
    {"the session limit refuses with UNAVAILABLE, and frees with the sessions",
     2,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpen, 2, Start::kOpen},
      {In::kOpen, 3, Start::kNone, "", absl::StatusCode::kUnavailable},
      {In::kOpenFailed, 2, Start::kNone, "", absl::StatusCode::kResourceExhausted},
      {In::kOpen, 3, Start::kOpen}},
     2},
    {"revoke of an open session: released, CANCELLED",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kRevoke, 1, Start::kNone, "s1", absl::StatusCode::kCancelled},
      {In::kRevoke, 1},
      {In::kCommit, 1, Start::kNone, "", kInvalid}},
     0},
    {"revoke while opening: the completion releases and sends CANCELLED",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kRevoke, 1},
      {In::kOpenOk, 1, Start::kNone, "s1", absl::StatusCode::kCancelled}},
     0},
    {"revoke while committing: the commit's own outcome goes out",
     10,
     {{In::kOpen, 1, Start::kOpen},
      {In::kOpenOk, 1, Start::kNone, "", absl::StatusCode::kOk, true},
      {In::kCommit, 1, Start::kCommit},
      {In::kRevoke, 1},
      {In::kCommitOk, 1, Start::kNone, "s1", absl::StatusCode::kOk, true}},
     0},
};

TEST(SessionTableTest, Scripts) {
  for (const Script& script : kScripts) {
    SCOPED_TRACE(script.name);
    SessionTable table(script.max_sessions);
    for (size_t i = 0; i < script.steps.size(); ++i) {
      const In& in = script.steps[i];
      SCOPED_TRACE(::testing::Message() << "step " << i << " tag " << in.tag);
      SessionTable::Step got = Apply(table, in);
      EXPECT_EQ(got.start, in.start);
      EXPECT_EQ(got.release, in.release);
      EXPECT_EQ(got.error.has_value() ? got.error->code() : absl::StatusCode::kOk, in.error);
      if (in.error != absl::StatusCode::kOk) {
        EXPECT_FALSE(got.error->message().empty());
      }
      EXPECT_EQ(got.send_outcome, in.outcome);
      if (got.start == Start::kCommit) {
        EXPECT_EQ(got.commit_session, "s" + std::to_string(in.tag));
      }
    }
    EXPECT_EQ(table.size(), script.live_after);
  }
}

TEST(SessionTableTest, EndAllReleasesIdleSessionsAndSilencesBusyOnes) {
  SessionTable t(10);
  t.Open(1);
  t.OpenDone(1, absl::OkStatus(), "s1");
  t.Open(2);  // opening
  t.Open(3);
  t.OpenDone(3, absl::OkStatus(), "s3");
  t.Commit(3);  // committing
  t.Open(4);
  t.Revoke(4);  // marked to fail: the stream's end wins, nothing can be sent
  std::vector<std::string> released = t.EndAll();
  EXPECT_EQ(released, std::vector<std::string>{"s1"});
  EXPECT_TRUE(t.ended());
  SessionTable::Step s2 = t.OpenDone(2, absl::OkStatus(), "s2");
  EXPECT_EQ(s2.release, "s2");
  EXPECT_FALSE(s2.error.has_value());
  EXPECT_FALSE(s2.send_outcome);
  SessionTable::Step s3 = t.CommitDone(3, absl::OkStatus());
  EXPECT_EQ(s3.release, "s3");
  EXPECT_FALSE(s3.send_outcome);
  SessionTable::Step s4 = t.OpenDone(4, absl::OkStatus(), "s4");
  EXPECT_EQ(s4.release, "s4");
  EXPECT_FALSE(s4.error.has_value());
  EXPECT_EQ(t.size(), 0u);
  // Nothing starts after the end.
  EXPECT_EQ(t.Open(5).start, Start::kNone);
  EXPECT_EQ(t.size(), 0u);
}

// Liveness probes: what the table answers for a tag in each situation, and what its client's
// `alive` then reports to the LeaseManager.
TEST(SessionTableTest, ProbeAnswersFromWhatTheTableKnows) {
  using P = SessionTable::ProbeAnswer;
  struct Case {
    const char* name;
    std::vector<In> before;  // inputs before the probe (their steps are not checked here)
    bool answers_probes;
    P want;
    std::vector<In> between;  // inputs between the probe and the client's `alive`
    std::string alive;        // what Alive(1) reports
  };
  const In open{In::kOpen, 1}, ok{In::kOpenOk, 1}, commit{In::kCommit, 1}, close{In::kClose, 1},
      revoke{In::kRevoke, 1};
  const Case cases[] = {
      {"open: asked", {open, ok}, true, P::kAsk, {}, "lease"},
      {"opening (lease granted, snapshot not out yet): asked", {open}, true, P::kAsk, {}, "lease"},
      {"open, client does not answer probes: alive", {open, ok}, false, P::kAlive, {}, ""},
      {"committing (QUIT): ending", {open, ok, commit}, true, P::kEnding, {}, ""},
      {"closed while opening: ending", {open, close}, true, P::kEnding, {}, ""},
      {"revoked while opening: ending", {open, revoke}, true, P::kEnding, {}, ""},
      {"closed (gone from the table): ending", {open, ok, close}, true, P::kEnding, {}, ""},
      {"never opened: ending", {}, true, P::kEnding, {}, ""},
      {"asked, then closed: the alive that crossed the close is ignored",
       {open, ok},
       true,
       P::kAsk,
       {close},
       ""},
      {"asked, then committing: ignored", {open, ok}, true, P::kAsk, {commit}, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SessionTable t(10);
    for (const In& in : c.before) Apply(t, in);
    EXPECT_EQ(t.Probe(1, "lease", c.answers_probes), c.want);
    for (const In& in : c.between) Apply(t, in);
    EXPECT_EQ(t.Alive(1), c.alive);
    EXPECT_EQ(t.Alive(1), "");  // one answer per probe
  }
  // An alive nobody asked for reports nothing; the stream's end makes every holder ending.
  SessionTable t(10);
  t.Open(1);
  t.OpenDone(1, absl::OkStatus(), "s1");
  EXPECT_EQ(t.Alive(1), "");
  t.EndAll();
  EXPECT_EQ(t.Probe(1, "s1", true), P::kEnding);
}

}  // namespace
}  // namespace poplar::indexer
