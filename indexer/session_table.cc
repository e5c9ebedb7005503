#include "indexer/session_table.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace poplar::indexer {

SessionTable::Step SessionTable::Fail(uint64_t tag, absl::Status why) {
  Step step;
  auto it = tags_.find(tag);
  if (it == tags_.end()) {
    step.error = std::move(why);
    return step;
  }
  Entry& e = it->second;
  if (e.phase == Phase::kOpen) {
    step.release = std::move(e.session_id);
    step.error = std::move(why);
    tags_.erase(it);
  } else if (!e.end_silently && !e.fail) {
    e.fail = std::move(why);  // sent when the running operation finishes
  }
  return step;
}

SessionTable::Step SessionTable::Open(uint64_t tag) {
  Step step;
  if (ended_) return step;
  if (tags_.contains(tag)) {
    return Fail(tag, absl::InvalidArgumentError(
                         absl::StrCat("tag ", tag, " is already in use on this stream")));
  }
  if (tags_.size() >= max_sessions_) {
    step.error = absl::UnavailableError(absl::StrCat(
        "too many sessions on one stream (max_sessions_per_stream ", max_sessions_, ")"));
    return step;
  }
  tags_.emplace(tag, Entry{Phase::kOpening, "", false, std::nullopt, ""});
  step.start = Step::Start::kOpen;
  return step;
}

SessionTable::Step SessionTable::Commit(uint64_t tag) {
  Step step;
  if (ended_) return step;
  auto it = tags_.find(tag);
  if (it == tags_.end()) {
    step.error = absl::InvalidArgumentError(
        absl::StrCat("commit for tag ", tag, ", which has no open session"));
    return step;
  }
  Entry& e = it->second;
  if (e.phase != Phase::kOpen) {
    return Fail(tag, absl::InvalidArgumentError(absl::StrCat(
                         "commit for tag ", tag,
                         e.phase == Phase::kOpening ? " before its snapshot" : " twice")));
  }
  e.phase = Phase::kCommitting;
  step.start = Step::Start::kCommit;
  step.commit_session = e.session_id;
  return step;
}

SessionTable::Step SessionTable::Close(uint64_t tag) {
  Step step;
  auto it = tags_.find(tag);
  if (it == tags_.end()) return step;  // may have crossed the event that ended it
  Entry& e = it->second;
  if (e.phase == Phase::kOpen) {
    step.release = std::move(e.session_id);
    tags_.erase(it);
  } else {
    e.end_silently = true;
  }
  return step;
}

SessionTable::Step SessionTable::Malformed(uint64_t tag) {
  if (ended_) return Step();
  return Fail(tag,
              absl::InvalidArgumentError(absl::StrCat("request for tag ", tag, " has no kind")));
}

SessionTable::Step SessionTable::OpenDone(uint64_t tag, const absl::Status& status,
                                          const std::string& session_id) {
  Step step;
  auto it = tags_.find(tag);
  if (it == tags_.end() || it->second.phase != Phase::kOpening) {
    // Not ours to keep (cannot happen: only Open starts an open, and a busy tag stays).
    if (status.ok()) step.release = session_id;
    return step;
  }
  Entry& e = it->second;
  if (e.end_silently || e.fail) {
    if (status.ok()) step.release = session_id;
    step.error = std::move(e.fail);
    tags_.erase(it);
    return step;
  }
  if (!status.ok()) {
    step.error = status;
    tags_.erase(it);
    return step;
  }
  e.phase = Phase::kOpen;
  e.session_id = session_id;
  step.send_outcome = true;
  return step;
}

SessionTable::Step SessionTable::CommitDone(uint64_t tag, const absl::Status& status) {
  Step step;
  auto it = tags_.find(tag);
  if (it == tags_.end() || it->second.phase != Phase::kCommitting) return step;
  Entry& e = it->second;
  // The session is over once committed, whatever the outcome: the lease ends before the event
  // goes out.
  step.release = std::move(e.session_id);
  if (e.fail) {
    step.error = std::move(e.fail);
  } else if (!e.end_silently) {
    if (status.ok()) {
      step.send_outcome = true;
    } else {
      step.error = status;
    }
  }
  tags_.erase(it);
  return step;
}

SessionTable::Step SessionTable::Revoke(uint64_t tag) {
  auto it = tags_.find(tag);
  // A running commit ends the session anyway, and its true outcome is worth more than "ended".
  if (it == tags_.end() || it->second.phase == Phase::kCommitting) return Step();
  return Fail(tag, absl::CancelledError("session ended by an administrator"));
}

SessionTable::ProbeAnswer SessionTable::Probe(uint64_t tag, const std::string& session_id,
                                              bool answers_probes) {
  auto it = tags_.find(tag);
  if (ended_ || it == tags_.end()) return ProbeAnswer::kEnding;
  Entry& e = it->second;
  // A session that is committing (its QUIT is being answered), closed or failed while busy
  // ends when its operation does, lease first: nothing to ask.
  if (e.phase == Phase::kCommitting || e.end_silently || e.fail) return ProbeAnswer::kEnding;
  if (!answers_probes) return ProbeAnswer::kAlive;
  e.probed = session_id;
  return ProbeAnswer::kAsk;
}

std::string SessionTable::Alive(uint64_t tag) {
  auto it = tags_.find(tag);
  if (ended_ || it == tags_.end()) return "";
  Entry& e = it->second;
  std::string probed = std::move(e.probed);
  e.probed.clear();
  if (e.phase == Phase::kCommitting || e.end_silently || e.fail) return "";
  return probed;
}

std::vector<std::string> SessionTable::EndAll() {
  ended_ = true;
  std::vector<std::string> release;
  for (auto it = tags_.begin(); it != tags_.end();) {
    if (it->second.phase == Phase::kOpen) {
      release.push_back(std::move(it->second.session_id));
      tags_.erase(it++);
    } else {
      it->second.end_silently = true;
      it->second.fail.reset();
      ++it;
    }
  }
  return release;
}

}  // namespace poplar::indexer
