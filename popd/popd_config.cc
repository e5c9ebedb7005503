#include "popd/popd_config.h"

#include <unistd.h>

#include <cstring>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/textproto.h"
#include "common/util/host_port.h"
#include "common/util/strings.h"

namespace poplar::popd {
namespace {

bool ValidIndexerTarget(std::string_view t) {
  if (t.starts_with("unix:")) return t.size() > 6 && t[5] == '/' && t.size() <= 5 + 107;
  // "host:port" with a name or an address: gRPC resolves it; only the shape is checked here.
  return SplitHostPort(t).has_value();
}

}  // namespace

// Long on purpose: one flat list of independent checks in the order of popd_config.proto, each
// a few lines that add to `errs` (see indexer_config.cc's Validate).
absl::Status Validate(const config::PopdConfig& c) {
  std::vector<std::string> errs;
  if (absl::StatusOr<Endpoint> e = Endpoint::Parse(c.listen().address()); !e.ok()) {
    errs.push_back(absl::StrCat("listen.address: ", e.status().message()));
  }
  if (!ValidIndexerTarget(c.indexer().target())) {
    errs.push_back(absl::StrCat("indexer.target must be unix:/ABSOLUTE/PATH or HOST:PORT (got \"",
                                c.indexer().target(), "\")"));
  }
  const config::PopdIndexer& ix = c.indexer();
  if (ix.login_timeout_ms() < 100 || ix.login_timeout_ms() > 600000) {
    errs.push_back("indexer.login_timeout_ms must be within 100..600000");
  }
  if (ix.commit_timeout_ms() < 1000 || ix.commit_timeout_ms() > 3600000) {
    errs.push_back("indexer.commit_timeout_ms must be within 1000..3600000");
  }
  if (ix.max_snapshot_bytes() < 65536)
    errs.push_back("indexer.max_snapshot_bytes must be at least 65536");
  const config::PopdLimits& l = c.limits();
  if (l.autologout_s() < 600) {
    errs.push_back("limits.autologout_s must be at least 600 (RFC 1939 §3: ten minutes)");
  }
  if (l.autologout_s() > 86400) errs.push_back("limits.autologout_s must be at most 86400");
  if (l.preauth_timeout_s() < 5 || l.preauth_timeout_s() > 3600) {
    errs.push_back("limits.preauth_timeout_s must be within 5..3600");
  }
  if (l.max_bad_commands() < 1 || l.max_bad_commands() > 1000) {
    errs.push_back("limits.max_bad_commands must be within 1..1000");
  }
  if (l.max_auth_failures() < 1 || l.max_auth_failures() > 100) {
    errs.push_back("limits.max_auth_failures must be within 1..100");
  }
  if (l.output_high_water_bytes() < 4096 || l.output_high_water_bytes() > (64u << 20)) {
    errs.push_back("limits.output_high_water_bytes must be within 4096..67108864");
  }
  if (l.max_connections() < 1 || l.max_connections() > 1000000) {
    errs.push_back("limits.max_connections must be within 1..1000000");
  }
  if (l.drain_timeout_s() > 3600) errs.push_back("limits.drain_timeout_s must be at most 3600");
  if (l.max_connections_per_ip() < 1)
    errs.push_back("limits.max_connections_per_ip must be at least 1");
  if (l.auth_failure_delay_ms() > 60000)
    errs.push_back("limits.auth_failure_delay_ms must be at most 60000");
  if (l.max_auth_failures_per_ip() < 1 || l.max_auth_failures_per_user() < 1) {
    errs.push_back("limits.max_auth_failures_per_ip and _per_user must be at least 1");
  }
  if (l.auth_failure_window_s() < 1 || l.auth_failure_window_s() > 86400) {
    errs.push_back("limits.auth_failure_window_s must be within 1..86400");
  }
  if (c.threads() > 256) errs.push_back("threads must be at most 256 (0 = one per CPU)");
  for (int i = 0; i < c.plaintext_auth_networks_size(); ++i) {
    if (absl::StatusOr<Network> n = Network::Parse(c.plaintext_auth_networks(i)); !n.ok()) {
      errs.push_back(absl::StrCat("plaintext_auth_networks[", i, "]: ", n.status().message()));
    }
  }
  if (c.front_end_name().size() > 200) errs.push_back("front_end_name is longer than 200 bytes");
  if (c.listen().proxy_protocol() && c.listen().proxy_trusted_networks_size() == 0) {
    errs.push_back(
        "listen.proxy_protocol needs proxy_trusted_networks (the load balancers' networks)");
  }
  for (const std::string& n : c.listen().proxy_trusted_networks()) {
    if (absl::StatusOr<Network> net = Network::Parse(n); !net.ok()) {
      errs.push_back(absl::StrCat("listen.proxy_trusted_networks: ", net.status().message()));
    }
  }
  if (c.listen().proxy_header_timeout_ms() < 100 || c.listen().proxy_header_timeout_ms() > 60000) {
    errs.push_back("listen.proxy_header_timeout_ms must be within 100..60000");
  }
  if (c.listen().has_implicit_tls_address()) {
    if (absl::StatusOr<Endpoint> e = Endpoint::Parse(c.listen().implicit_tls_address()); !e.ok()) {
      errs.push_back(absl::StrCat("listen.implicit_tls_address: ", e.status().message()));
    }
    if (!c.has_tls()) errs.push_back("listen.implicit_tls_address needs a tls { ... } section");
  }
  if (c.has_run_as() && (c.run_as().user().empty() || c.run_as().user() == "root")) {
    errs.push_back("run_as.user must name an unprivileged user");
  }
  if (c.has_tls()) {
    const config::PopdTls& t = c.tls();
    if (t.certificate_chain_file().empty() || t.certificate_chain_file()[0] != '/') {
      errs.push_back("tls.certificate_chain_file must be an absolute path");
    }
    if (t.private_key_file().empty() || t.private_key_file()[0] != '/') {
      errs.push_back("tls.private_key_file must be an absolute path");
    }
    if (t.min_version() != "TLSv1.2" && t.min_version() != "TLSv1.3") {
      errs.push_back("tls.min_version must be \"TLSv1.2\" or \"TLSv1.3\"");
    }
  }
  if (errs.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errs, "; "));
}

absl::StatusOr<config::PopdConfig> LoadPopdConfig(const std::string& path) {
  config::PopdConfig c;
  if (absl::Status s = config::LoadTextProtoFile(path, &c); !s.ok()) return s;
  if (absl::Status s = Validate(c); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return c;
}

bool Settings::PlaintextAllowedFrom(const IpAddress& peer) const {
  for (const Network& n : plaintext_networks) {
    if (n.Contains(peer)) return true;
  }
  return false;
}

Settings MakeSettings(const config::PopdConfig& c, const std::string& default_front_end) {
  Settings s;
  s.login_timeout = std::chrono::milliseconds(c.indexer().login_timeout_ms());
  s.commit_timeout = std::chrono::milliseconds(c.indexer().commit_timeout_ms());
  s.autologout = std::chrono::seconds(c.limits().autologout_s());
  s.preauth_timeout = std::chrono::seconds(c.limits().preauth_timeout_s());
  s.output_high_water = c.limits().output_high_water_bytes();
  s.max_connections = c.limits().max_connections();
  for (const std::string& n : c.plaintext_auth_networks())
    s.plaintext_networks.push_back(*Network::Parse(n));
  s.session.max_bad_commands = static_cast<int>(c.limits().max_bad_commands());
  s.session.max_auth_failures = static_cast<int>(c.limits().max_auth_failures());
  s.front_end_name = c.front_end_name().empty() ? default_front_end : c.front_end_name();
  s.auth_failure_delay = std::chrono::milliseconds(c.limits().auth_failure_delay_ms());
  s.apop = c.apop();
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  s.hostname = host;
  s.abuse.max_connections_per_ip = c.limits().max_connections_per_ip();
  s.abuse.max_failures_per_ip = c.limits().max_auth_failures_per_ip();
  s.abuse.max_failures_per_user = c.limits().max_auth_failures_per_user();
  s.abuse.window = std::chrono::seconds(c.limits().auth_failure_window_s());
  return s;
}

absl::StatusOr<Settings> LoadSettings(const config::PopdConfig& c,
                                      const std::string& default_front_end) {
  Settings s = MakeSettings(c, default_front_end);
  if (c.has_tls()) {
    absl::StatusOr<TlsContext> tls = MakeTlsContext(c.tls());
    if (!tls.ok()) return tls.status();
    s.tls = std::move(*tls);
  }
  return s;
}

}  // namespace poplar::popd
