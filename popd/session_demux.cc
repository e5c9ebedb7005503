#include "popd/session_demux.h"

#include "absl/strings/str_cat.h"

namespace poplar::popd {

uint64_t SessionDemux::Open() {
  const uint64_t tag = next_tag_++;
  phases_.emplace(tag, Phase::kOpening);
  return tag;
}

bool SessionDemux::Commit(uint64_t tag) {
  auto it = phases_.find(tag);
  if (it == phases_.end() || it->second != Phase::kOpen) return false;
  it->second = Phase::kCommitting;
  return true;
}

bool SessionDemux::Cancel(uint64_t tag) { return phases_.erase(tag) > 0; }

SessionDemux::Outcome SessionDemux::Failure(Phase phase, absl::Status why) {
  Outcome o;
  o.status = std::move(why);
  switch (phase) {
    case Phase::kOpening:
      o.report = Report::kSnapshotFailed;
      break;
    case Phase::kOpen:
      o.report = Report::kLost;
      break;
    case Phase::kCommitting:
      o.report = Report::kCommitFailed;
      break;
  }
  return o;
}

SessionDemux::Outcome SessionDemux::OutOfProtocol(uint64_t tag, Phase phase) {
  phases_.erase(tag);
  Outcome o = Failure(
      phase, absl::InternalError(absl::StrCat("unexpected event from the indexer for tag ", tag)));
  o.send_close = true;
  return o;
}

SessionDemux::Outcome SessionDemux::OnSnapshot(uint64_t tag) {
  auto it = phases_.find(tag);
  if (it == phases_.end()) return {};
  if (it->second != Phase::kOpening) return OutOfProtocol(tag, it->second);
  it->second = Phase::kOpen;
  return Outcome{Report::kSnapshot, absl::OkStatus(), false};
}

SessionDemux::Outcome SessionDemux::OnCommitted(uint64_t tag) {
  auto it = phases_.find(tag);
  if (it == phases_.end()) return {};
  if (it->second != Phase::kCommitting) return OutOfProtocol(tag, it->second);
  phases_.erase(it);  // the indexer ended the session with the commit
  return Outcome{Report::kCommitted, absl::OkStatus(), false};
}

SessionDemux::Outcome SessionDemux::OnError(uint64_t tag, absl::Status why) {
  auto it = phases_.find(tag);
  if (it == phases_.end()) return {};
  const Phase phase = it->second;
  phases_.erase(it);  // the indexer ended the session and released its lease
  if (why.ok()) why = absl::UnknownError("error event without a code");
  return Failure(phase, std::move(why));
}

SessionDemux::Outcome SessionDemux::OnUnknownEvent(uint64_t tag) {
  auto it = phases_.find(tag);
  if (it == phases_.end()) return {};
  return OutOfProtocol(tag, it->second);
}

SessionDemux::Outcome SessionDemux::OnProbe(uint64_t tag) {
  auto it = phases_.find(tag);
  if (it == phases_.end() || it->second == Phase::kCommitting) return {};
  return Outcome{Report::kProbe, absl::OkStatus(), false};
}

bool SessionDemux::Alive(uint64_t tag) {
  auto it = phases_.find(tag);
  return it != phases_.end() && it->second != Phase::kCommitting;
}

std::vector<std::pair<uint64_t, SessionDemux::Outcome>> SessionDemux::EndAll(
    const absl::Status& why) {
  std::vector<std::pair<uint64_t, Outcome>> out;
  out.reserve(phases_.size());
  for (const auto& [tag, phase] : phases_) out.emplace_back(tag, Failure(phase, why));
  phases_.clear();
  return out;
}

}  // namespace poplar::popd
