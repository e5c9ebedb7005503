#include "popd/session_report.h"

#include "common/metrics/metrics.h"
#include "common/util/log.h"
#include "popd/session_log.h"

namespace poplar::popd {
namespace {

std::string_view FailureReason(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnauthenticated:
      return "bad_credentials";
    case absl::StatusCode::kResourceExhausted:
      return "in_use";  // [IN-USE]: the maildrop is leased by another session
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
      return "temporary";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    default:
      return "permanent";
  }
}

}  // namespace

void SessionReport::OnLine(std::string_view line, bool in_sasl) {
  if (in_sasl) return;
  metrics::PopdCommand(VerbOf(line));
  if (std::string_view mech = MechanismOfCommand(line); !mech.empty() && !logged_in_) {
    mechanism_ = std::string(mech);
  }
}

void SessionReport::LoginResult(const absl::Status& status) {
  const std::string_view mech = mechanism_.empty() ? "USER" : std::string_view(mechanism_);
  if (status.ok()) {
    logged_in_ = true;
    metrics::PopdLogin(mech);
    return;
  }
  metrics::PopdLoginFailure(mech, rate_limited_ ? "rate_limited" : FailureReason(status));
  rate_limited_ = false;
}

void SessionReport::Retrieved(uint64_t octets) {
  ++retrieved_;
  retrieved_bytes_ += octets;
}

void SessionReport::Committed(uint32_t deleted, uint64_t bytes) {
  deleted_ = deleted;
  deleted_bytes_ = bytes;
}

void SessionReport::Finish(std::string_view user, const net::IpAddress& peer,
                           const Transport* transport, bool implicit_tls, uint64_t sent_bytes,
                           std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  SessionRecord r;
  if (logged_in_) {
    r.user = std::string(user);
    r.mechanism = mechanism_.empty() ? "USER" : mechanism_;
  }
  r.client = peer.ToString();
  if (transport != nullptr && transport->encrypted()) {
    const bool done = transport->handshake_done();
    metrics::PopdTlsHandshake(implicit_tls ? "implicit" : "stls", done);
    if (done) r.tls = std::string(transport->tls_version());
  }
  r.retrieved = retrieved_;
  r.retrieved_bytes = retrieved_bytes_;
  r.deleted = deleted_;
  r.deleted_bytes = deleted_bytes_;
  r.sent_bytes = sent_bytes;
  r.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  r.end = std::string(SessionResult(reason, logged_in_));
  r.reason = std::string(reason);
  metrics::PopdSessionEnded(r.end);
  metrics::PopdBytesSent(sent_bytes);
  log::Info(FormatSessionLine(r));
}

}  // namespace poplar::popd
