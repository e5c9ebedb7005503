#include "common/metrics/metrics.h"

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <list>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/net/ip_address.h"
#include "common/util/host_port.h"
#include "common/util/strings.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace poplar::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr std::array<std::string_view, 15> kVerbs = {"USER", "PASS", "QUIT", "STAT", "LIST",
                                                     "RETR", "DELE", "NOOP", "RSET", "TOP",
                                                     "UIDL", "CAPA", "STLS", "APOP", "AUTH"};
constexpr std::array<std::string_view, 6> kMechanisms = {"USER",  "APOP",          "PLAIN",
                                                         "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"};
constexpr std::array<std::string_view, 9> kSessionResults = {
    "quit",       "commit_failed", "client_disconnected",
    "timeout",    "autologout",    "shutdown",
    "lease_lost", "error",         "no_login"};

// Every metric of both daemons. Built once (a function-local static, never destroyed: the
// endpoint's threads may scrape while the process exits).
struct Catalog {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  Family<Counter>& popd_commands = BuildCounter()
                                       .Name("poplar_popd_commands_total")
                                       .Help("POP3 commands executed, by verb")
                                       .Register(*registry);
  Family<Counter>& popd_sessions = BuildCounter()
                                       .Name("poplar_popd_sessions_total")
                                       .Help("POP3 connections ended, by result")
                                       .Register(*registry);
  Counter& popd_sent = BuildCounter()
                           .Name("poplar_popd_sent_bytes_total")
                           .Help("Bytes sent to POP3 clients (before TLS)")
                           .Register(*registry)
                           .Add({});
  Family<Counter>& popd_logins = BuildCounter()
                                     .Name("poplar_popd_logins_total")
                                     .Help("Successful POP3 logins, by mechanism")
                                     .Register(*registry);
  Family<Counter>& popd_login_failures =
      BuildCounter()
          .Name("poplar_popd_login_failures_total")
          .Help("Failed or refused POP3 logins, by mechanism and reason")
          .Register(*registry);
  Family<Counter>& popd_tls = BuildCounter()
                                  .Name("poplar_popd_tls_handshakes_total")
                                  .Help("TLS handshakes completed, by kind (implicit, stls)")
                                  .Register(*registry);
  Family<Counter>& popd_tls_failures = BuildCounter()
                                           .Name("poplar_popd_tls_handshake_failures_total")
                                           .Help("TLS handshakes that failed, by kind")
                                           .Register(*registry);
  Counter& popd_accepted = BuildCounter()
                               .Name("poplar_popd_connections_total")
                               .Help("POP3 connections accepted")
                               .Register(*registry)
                               .Add({});
  Gauge& popd_open = BuildGauge()
                         .Name("poplar_popd_connections_open")
                         .Help("POP3 connections open now")
                         .Register(*registry)
                         .Add({});

  // Delivery to index: inotify makes this milliseconds; polling (NFS) up to poll_interval_ms.
  Histogram& indexer_lag =
      BuildHistogram()
          .Name("poplar_indexer_delivery_lag_seconds")
          .Help("Time from a message's delivery (mailbox mtime) to its indexing")
          .Register(*registry)
          .Add({}, Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                               10, 30, 60});
  Counter& indexer_rescans = BuildCounter()
                                 .Name("poplar_indexer_rescans_total")
                                 .Help("Full listings of the spools")
                                 .Register(*registry)
                                 .Add({});
  Counter& indexer_overflows = BuildCounter()
                                   .Name("poplar_indexer_inotify_overflows_total")
                                   .Help("inotify queue overflows (each forces a full rescan)")
                                   .Register(*registry)
                                   .Add({});
  Histogram& expunge_duration =
      BuildHistogram()
          .Name("poplar_indexer_expunge_duration_seconds")
          .Help("Duration of an expunge (verify, journal, rewrite, index)")
          .Register(*registry)
          .Add({}, Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60,
                                               300});
  Counter& expunge_bytes = BuildCounter()
                               .Name("poplar_indexer_expunge_rewritten_bytes_total")
                               .Help("Bytes of mailboxes rewritten by expunges")
                               .Register(*registry)
                               .Add({});
  Counter& expunge_messages = BuildCounter()
                                  .Name("poplar_indexer_expunged_messages_total")
                                  .Help("Messages deleted by expunges")
                                  .Register(*registry)
                                  .Add({});
  Family<Counter>& expunge_refusals = BuildCounter()
                                          .Name("poplar_indexer_expunge_refusals_total")
                                          .Help("Expunges that deleted nothing, by reason")
                                          .Register(*registry);
  Family<Counter>& expunge_recoveries =
      BuildCounter()
          .Name("poplar_indexer_expunge_recoveries_total")
          .Help("Interrupted expunges finished at start-up, by outcome")
          .Register(*registry);
  Family<Counter>& grpc_errors = BuildCounter()
                                     .Name("poplar_indexer_grpc_errors_total")
                                     .Help("gRPC calls answered with an error, by method and code")
                                     .Register(*registry);
  Gauge& mailboxes = BuildGauge()
                         .Name("poplar_indexer_mailboxes")
                         .Help("Mailboxes in the index")
                         .Register(*registry)
                         .Add({});
  Gauge& messages = BuildGauge()
                        .Name("poplar_indexer_messages")
                        .Help("Messages in the index")
                        .Register(*registry)
                        .Add({});
  Gauge& index_bytes = BuildGauge()
                           .Name("poplar_indexer_mailbox_bytes")
                           .Help("Bytes of the indexed messages")
                           .Register(*registry)
                           .Add({});
  Gauge& leases = BuildGauge()
                      .Name("poplar_indexer_leases")
                      .Help("Maildrops leased by an open POP3 session")
                      .Register(*registry)
                      .Add({});
  Gauge& index_lag = BuildGauge()
                         .Name("poplar_indexer_index_lag_seconds")
                         .Help("Age of the oldest change seen but not yet indexed")
                         .Register(*registry)
                         .Add({});
  Gauge& build_info = BuildGauge()
                          .Name("poplar_build_info")
                          .Help("Always 1; the labels name the build")
                          .Register(*registry)
                          .Add({{"version", POPLAR_VERSION}});

  // The Status totals (prometheus-cpp's values are doubles; these are exact).
  const int64_t started_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
  std::atomic<uint64_t> deliveries{0};
  std::atomic<uint64_t> expunges{0};
  std::atomic<uint64_t> refusals{0};
  std::atomic<uint64_t> rescans{0};
  absl::Mutex expunging_mu;
  std::list<std::string> expunging ABSL_GUARDED_BY(expunging_mu);

  Catalog() {
    build_info.Set(1);
    // Series that exist from the start, so a dashboard and rate() see zeros, not gaps.
    for (std::string_view r : kSessionResults) popd_sessions.Add({{"result", std::string(r)}});
    for (std::string_view m : kMechanisms) popd_logins.Add({{"mechanism", std::string(m)}});
    for (const char* k : {"implicit", "stls"}) {
      popd_tls.Add({{"kind", k}});
      popd_tls_failures.Add({{"kind", k}});
    }
    for (const char* r : {"locked", "changed", "in_use", "invalid", "error"}) {
      expunge_refusals.Add({{"reason", r}});
    }
  }
};

Catalog& Get() {
  static Catalog* catalog = new Catalog();
  return *catalog;
}

// A label value from a small fixed set, or "other".
template <size_t N>
std::string_view Known(const std::array<std::string_view, N>& set, std::string_view value) {
  for (std::string_view s : set) {
    if (absl::EqualsIgnoreCase(Absl(s), Absl(value))) return s;
  }
  return "other";
}

// Serves the registry after `refresh` has set the gauges.
class Refreshing final : public prometheus::Collectable {
 public:
  explicit Refreshing(std::function<void()> refresh) : refresh_(std::move(refresh)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    if (refresh_) refresh_();
    return Get().registry->Collect();
  }

 private:
  std::function<void()> refresh_;
};

}  // namespace

std::string_view NormalizeVerb(std::string_view verb) { return Known(kVerbs, verb); }

std::string_view NormalizeMechanism(std::string_view mechanism) {
  return Known(kMechanisms, mechanism);
}

absl::Status ValidateListenAddress(std::string_view address) {
  const std::optional<HostPort> hp = SplitHostPort(address);
  if (!hp) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", Absl(address), "\" is not ADDRESS:PORT (\"127.0.0.1:9110\", \"[::1]:9110\")"));
  }
  if (!net::IpAddress::Parse(hp->host).ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", Absl(hp->host), "\" is not a numeric IP address (no host names)"));
  }
  return absl::OkStatus();
}

void PopdCommand(std::string_view verb) {
  Get().popd_commands.Add({{"verb", std::string(NormalizeVerb(verb))}}).Increment();
}
void PopdSessionEnded(std::string_view result) {
  Get().popd_sessions.Add({{"result", std::string(Known(kSessionResults, result))}}).Increment();
}
void PopdBytesSent(uint64_t bytes) { Get().popd_sent.Increment(static_cast<double>(bytes)); }
void PopdLogin(std::string_view mechanism) {
  Get().popd_logins.Add({{"mechanism", std::string(NormalizeMechanism(mechanism))}}).Increment();
}
void PopdLoginFailure(std::string_view mechanism, std::string_view reason) {
  constexpr std::array<std::string_view, 6> kReasons = {
      "bad_credentials", "rate_limited", "in_use", "temporary", "permanent", "timeout"};
  Get()
      .popd_login_failures
      .Add({{"mechanism", std::string(NormalizeMechanism(mechanism))},
            {"reason", std::string(Known(kReasons, reason))}})
      .Increment();
}
void PopdTlsHandshake(std::string_view kind, bool ok) {
  const std::string k = kind == "implicit" ? "implicit" : "stls";
  (ok ? Get().popd_tls : Get().popd_tls_failures).Add({{"kind", k}}).Increment();
}
void PopdConnectionAccepted() { Get().popd_accepted.Increment(); }

void IndexerDeliveryLag(double seconds) {
  Get().indexer_lag.Observe(seconds < 0 ? 0 : seconds);
  Get().deliveries.fetch_add(1);
}
void IndexerRescan() {
  Get().indexer_rescans.Increment();
  Get().rescans.fetch_add(1);
}
void IndexerInotifyOverflow() { Get().indexer_overflows.Increment(); }
void IndexerExpunge(double seconds, uint64_t bytes_rewritten, uint32_t messages_deleted) {
  Catalog& c = Get();
  c.expunge_duration.Observe(seconds);
  c.expunge_bytes.Increment(static_cast<double>(bytes_rewritten));
  c.expunge_messages.Increment(messages_deleted);
  c.expunges.fetch_add(1);
}
void IndexerExpungeRefused(std::string_view reason) {
  constexpr std::array<std::string_view, 5> kReasons = {"locked", "changed", "in_use", "invalid",
                                                        "error"};
  Get().expunge_refusals.Add({{"reason", std::string(Known(kReasons, reason))}}).Increment();
  Get().refusals.fetch_add(1);
}

IndexerTotals IndexerTotalsNow() {
  Catalog& c = Get();
  IndexerTotals t;
  t.started_unix_ms = c.started_unix_ms;
  t.deliveries_indexed = c.deliveries.load();
  t.expunges = c.expunges.load();
  t.expunge_refusals = c.refusals.load();
  t.rescans = c.rescans.load();
  absl::MutexLock lock(&c.expunging_mu);
  t.expunging.assign(c.expunging.begin(), c.expunging.end());
  return t;
}

ExpungeInProgress::ExpungeInProgress(std::string mailbox) : mailbox_(std::move(mailbox)) {
  Catalog& c = Get();
  absl::MutexLock lock(&c.expunging_mu);
  c.expunging.push_back(mailbox_);
}

ExpungeInProgress::~ExpungeInProgress() {
  Catalog& c = Get();
  absl::MutexLock lock(&c.expunging_mu);
  for (auto it = c.expunging.begin(); it != c.expunging.end(); ++it) {
    if (*it == mailbox_) {
      c.expunging.erase(it);
      break;
    }
  }
}
void IndexerExpungeRecovery(std::string_view outcome) {
  constexpr std::array<std::string_view, 4> kOutcomes = {"replayed", "rejected", "busy", "failed"};
  Get().expunge_recoveries.Add({{"outcome", std::string(Known(kOutcomes, outcome))}}).Increment();
}
void IndexerGrpcError(std::string_view method, std::string_view code) {
  Get().grpc_errors.Add({{"method", std::string(method)}, {"code", std::string(code)}}).Increment();
}

struct Endpoint::Impl {
  std::shared_ptr<Refreshing> collectable;
  std::unique_ptr<prometheus::Exposer> exposer;
};

namespace {

absl::StatusOr<std::unique_ptr<Endpoint::Impl>> Expose(std::string_view address,
                                                       std::function<void()> refresh, int* port) {
  if (absl::Status s = ValidateListenAddress(address); !s.ok()) return s;
  auto impl = std::make_unique<Endpoint::Impl>();
  impl->collectable = std::make_shared<Refreshing>(std::move(refresh));
  try {
    // One thread: a scrape every few seconds needs no more, and each civetweb thread costs a
    // stack.
    impl->exposer = std::make_unique<prometheus::Exposer>(std::string(address), 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint on ", Absl(address), ": ", e.what(), " (address in use?)"));
  }
  impl->exposer->RegisterCollectable(impl->collectable);
  const std::vector<int> ports = impl->exposer->GetListeningPorts();
  *port = ports.empty() ? 0 : ports.front();
  return impl;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Endpoint>> Endpoint::StartPopd(std::string_view address,
                                                              std::function<PopdGauges()> refresh) {
  int port = 0;
  absl::StatusOr<std::unique_ptr<Impl>> impl = Expose(
      address,
      [refresh = std::move(refresh)] {
        const PopdGauges g = refresh ? refresh() : PopdGauges{};
        Get().popd_open.Set(static_cast<double>(g.connections_open));
      },
      &port);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<Endpoint>(new Endpoint(*std::move(impl), port));
}

absl::StatusOr<std::unique_ptr<Endpoint>> Endpoint::StartIndexer(
    std::string_view address, std::function<IndexerGauges()> refresh) {
  int port = 0;
  absl::StatusOr<std::unique_ptr<Impl>> impl = Expose(
      address,
      [refresh = std::move(refresh)] {
        const IndexerGauges g = refresh ? refresh() : IndexerGauges{};
        Catalog& c = Get();
        c.mailboxes.Set(static_cast<double>(g.mailboxes));
        c.messages.Set(static_cast<double>(g.messages));
        c.index_bytes.Set(static_cast<double>(g.bytes));
        c.leases.Set(static_cast<double>(g.sessions));
        c.index_lag.Set(g.index_lag_seconds);
      },
      &port);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<Endpoint>(new Endpoint(*std::move(impl), port));
}

Endpoint::Endpoint(std::unique_ptr<Impl> impl, int port) : impl_(std::move(impl)), port_(port) {}
Endpoint::~Endpoint() = default;

std::string Render() { return prometheus::TextSerializer().Serialize(Get().registry->Collect()); }

}  // namespace poplar::metrics
