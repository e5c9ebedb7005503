// What one POP3 connection did, gathered for its log line and the metrics (issue 14). The
// connection calls one hook per event (a command line, a login's outcome, a retrieval, the
// commit, the end); Finish writes the session's one log line (popd/session_log.h) and counts it.
// Lives in the Connection, on its event loop's thread.
#ifndef POPLAR_POPD_SESSION_REPORT_H_
#define POPLAR_POPD_SESSION_REPORT_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/net/ip_address.h"
#include "popd/transport.h"

namespace poplar::popd {

class SessionReport {
 public:
  SessionReport() : started_(std::chrono::steady_clock::now()) {}

  // A command line as the client sent it; `in_sasl`: the session waits for a SASL response
  // (a credential: not looked at).
  void OnLine(std::string_view line, bool in_sasl);
  // The login limit refused the attempt before asking the indexer.
  void RateLimited() { rate_limited_ = true; }
  // A login ended: OK, or why not.
  void LoginResult(const absl::Status& status);
  void Retrieved(uint64_t octets);
  void Committed(uint32_t deleted, uint64_t bytes);
  // The connection closes: the log line and the session counters. `transport` may be null.
  void Finish(std::string_view user, const net::IpAddress& peer, const Transport* transport,
              bool implicit_tls, uint64_t sent_bytes, std::string_view reason);

 private:
  std::chrono::steady_clock::time_point started_;
  std::string mechanism_;  // of the login attempt in progress, then of the session
  bool logged_in_ = false;
  bool rate_limited_ = false;
  uint32_t retrieved_ = 0;
  uint64_t retrieved_bytes_ = 0;
  uint32_t deleted_ = 0;
  uint64_t deleted_bytes_ = 0;
  bool finished_ = false;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_SESSION_REPORT_H_
