// Prometheus metrics of poplar-indexer and poplar-popd (issue 14): a thin wrapper over
// prometheus-cpp (Debian's prometheus-cpp-dev). Every metric of both daemons is named here, once,
// with its help text, so names, units and labels follow one convention: the `poplar_` prefix,
// `_total` on counters, base units (`_seconds`, `_bytes`), and labels only from small fixed sets
// (a command verb, a mechanism, a reason, a gRPC code: never a user name or an address, which
// would make one time series per user and leak who logs in).
//
// The counters live in one process-wide registry and always count (an increment is an atomic
// add); they are served over HTTP only when the configuration has a `metrics` block (Endpoint).
// The call sites are one-line hooks (`metrics::PopdCommand(verb)`), so the code they sit in
// stays what it was. Label values that come from the network (a verb, a SASL mechanism) are
// folded into a fixed set before they become labels (`NormalizeVerb`, `NormalizeMechanism`).
#ifndef POPLAR_COMMON_METRICS_METRICS_H_
#define POPLAR_COMMON_METRICS_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace poplar::metrics {

// ---- pure helpers (unit-tested) ----

// A POP3 verb as a label: the RFC 1939/2449/2595/5034 verbs upper-cased, anything else "other".
std::string_view NormalizeVerb(std::string_view verb);
// A login mechanism as a label: "USER" (USER/PASS), "APOP", "PLAIN", "LOGIN", "SCRAM-SHA-256",
// "CRAM-MD5", anything else "other".
std::string_view NormalizeMechanism(std::string_view mechanism);
// The `metrics.listen_address` rule of both daemons' configurations: a numeric IPv4 or
// bracketed IPv6 address and a port ("127.0.0.1:9110", "[::1]:9110", port 0 picks one).
// A name is refused: the endpoint must not depend on DNS at start-up.
absl::Status ValidateListenAddress(std::string_view address);

// ---- poplar-popd ----

void PopdCommand(std::string_view verb);  // every command line a session executes
// A POP3 connection ended; `result` from a fixed set: "quit", "commit_failed",
// "client_disconnected", "timeout", "autologout", "shutdown", "lease_lost", "error",
// "no_login" (closed before any successful login).
void PopdSessionEnded(std::string_view result);
void PopdBytesSent(uint64_t bytes);
void PopdLogin(std::string_view mechanism);
// `reason`: "bad_credentials", "rate_limited", "in_use", "temporary", "permanent", "timeout".
void PopdLoginFailure(std::string_view mechanism, std::string_view reason);
// `kind`: "implicit" (pop3s port) or "stls".
void PopdTlsHandshake(std::string_view kind, bool ok);
void PopdConnectionAccepted();
// The popd gauges, read at scrape time.
struct PopdGauges {
  uint64_t connections_open = 0;
};

// ---- poplar-indexer ----

void IndexerDeliveryLag(double seconds);  // a message's delivery (file mtime) to its indexing
void IndexerRescan();                     // a full listing of the spools
void IndexerInotifyOverflow();
void IndexerExpunge(double seconds, uint64_t bytes_rewritten, uint32_t messages_deleted);
// `reason`: "locked", "changed", "in_use", "invalid", "error".
void IndexerExpungeRefused(std::string_view reason);
// `outcome`: "replayed" (or found complete), "rejected" (moved aside), "busy" (locks not
// available; retried), "failed".
void IndexerExpungeRecovery(std::string_view outcome);
// A gRPC call the indexer answered with a non-OK status; `method` is the short method name.
void IndexerGrpcError(std::string_view method, std::string_view code);
// Totals since the process started and the expunges running now, for the Admin API's Status
// (poplarctl status) as much as for Prometheus.
struct IndexerTotals {
  int64_t started_unix_ms = 0;
  uint64_t deliveries_indexed = 0;  // observations of the delivery lag
  uint64_t expunges = 0;
  uint64_t expunge_refusals = 0;
  uint64_t rescans = 0;
  std::vector<std::string> expunging;  // mailboxes being compacted now, oldest first
};
IndexerTotals IndexerTotalsNow();
// Marks `mailbox` as being expunged for its lifetime (one line at the top of an expunge).
class ExpungeInProgress {
 public:
  explicit ExpungeInProgress(std::string mailbox);
  ~ExpungeInProgress();
  ExpungeInProgress(const ExpungeInProgress&) = delete;
  ExpungeInProgress& operator=(const ExpungeInProgress&) = delete;

 private:
  std::string mailbox_;
};
// The indexer gauges, read at scrape time.
struct IndexerGauges {
  uint64_t mailboxes = 0;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t sessions = 0;  // open maildrop sessions, each holding its maildrop's lease
  double index_lag_seconds = 0;
};

// ---- exposition ----

// The HTTP endpoint (prometheus-cpp's civetweb-based Exposer): GET /metrics in the text format.
// `refresh` runs on the endpoint's thread before each scrape and fills the gauges; it must be
// thread-safe. Owns its threads; destroying it stops them.
class Endpoint {
 public:
  static absl::StatusOr<std::unique_ptr<Endpoint>> StartPopd(std::string_view address,
                                                             std::function<PopdGauges()> refresh);
  static absl::StatusOr<std::unique_ptr<Endpoint>> StartIndexer(
      std::string_view address, std::function<IndexerGauges()> refresh);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  int port() const { return port_; }  // the bound port (the configured one, or the picked one)

  struct Impl;

 private:
  explicit Endpoint(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The text exposition of everything registered (for tests and --print-metrics style tools).
std::string Render();

}  // namespace poplar::metrics

#endif  // POPLAR_COMMON_METRICS_METRICS_H_
