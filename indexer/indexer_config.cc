#include "indexer/indexer_config.h"

#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/textproto.h"
#include "common/net/ip_address.h"
#include "common/privileges/privileges.h"
#include "common/sasl/user_name.h"
#include "common/util/host_port.h"

namespace poplar::indexer {
namespace {

void ValidateUidl(const config::Uidl& u, const std::string& where, std::vector<std::string>* errs) {
  if (u.scheme() != "poplar" && u.scheme() != "dovecot" && u.scheme() != "qpopper") {
    errs->push_back(absl::StrCat(where,
                                 ".scheme must be \"poplar\", \"dovecot\" or \"qpopper\" (got \"",
                                 u.scheme(), "\")"));
  }
  if (u.has_qpopper() && u.scheme() != "qpopper") {
    errs->push_back(absl::StrCat(where, ".qpopper is set but ", where, ".scheme is \"", u.scheme(),
                                 "\" (it needs \"qpopper\")"));
  }
  if (u.trust_x_uidl() && !u.reuse_x_uidl()) {
    errs->push_back(absl::StrCat(where, ".trust_x_uidl needs ", where, ".reuse_x_uidl"));
  }
}

mbox::UidlOptions UidlOptionsFromProto(const config::Uidl& u) {
  mbox::UidlOptions o;
  o.scheme = u.scheme() == "dovecot"   ? mbox::UidlScheme::kDovecot
             : u.scheme() == "qpopper" ? mbox::UidlScheme::kQpopper
                                       : mbox::UidlScheme::kPoplar;
  o.reuse_x_uidl = u.reuse_x_uidl();
  o.trust_x_uidl = u.trust_x_uidl();
  o.qpopper.old_style = u.qpopper().old_style_uid();
  o.qpopper.server_mode = u.qpopper().server_mode();
  o.qpopper.content_length = u.qpopper().content_length();
  return o;
}

bool IsAbsoluteClean(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  return p.find("/../") == std::string_view::npos && p.find("/./") == std::string_view::npos &&
         !p.ends_with("/..") && !p.ends_with("/.");
}

// A host that only this machine can reach: "localhost", 127.0.0.0/8 or [::1]. Wildcards
// (0.0.0.0, [::]) and every other address (::ffff:127.0.0.1 included) are reachable from
// elsewhere, or not this rule's to judge.
bool IsLoopbackHost(const HostPort& hp) {
  if (hp.host == "localhost") return true;
  absl::StatusOr<net::IpAddress> a = net::IpAddress::Parse(hp.host);
  return a.ok() && a->IsLoopback();
}

}  // namespace

void ApplyDefaults(config::IndexerConfig* c) {
  if (c->lock_methods_size() == 0) {
    c->add_lock_methods(config::LOCK_DOTLOCK);
    c->add_lock_methods(config::LOCK_FCNTL);
  }
}

// Long on purpose: one flat list of independent checks in the order of config.proto, each a
// few lines that add to `errs`, so every refusal is found by reading down the schema (split, the
// checks would be scattered without any part of them being shared).
absl::Status Validate(const config::IndexerConfig& c) {
  std::vector<std::string> errs;
  if (c.spools_size() == 0) errs.push_back("at least one spools { directory: ... } is required");
  std::set<std::string> dirs;
  for (int i = 0; i < c.spools_size(); ++i) {
    const config::Spool& s = c.spools(i);
    std::string where = absl::StrCat("spools[", i, "]");
    if (!IsAbsoluteClean(s.directory())) {
      errs.push_back(absl::StrCat(where,
                                  ".directory must be an absolute path without . or .. (got \"",
                                  s.directory(), "\")"));
    } else if (!dirs.insert(s.directory()).second) {
      errs.push_back(absl::StrCat(where, ".directory ", s.directory(), " is listed twice"));
    }
    if (s.poll() && (s.poll_interval_ms() < 50 || s.poll_interval_ms() > 60000)) {
      errs.push_back(absl::StrCat(where, ".poll_interval_ms must be within 50..60000"));
    }
    if (s.layout() == config::SPOOL_HOME) {
      std::string_view m = s.home_mailbox();
      if (m.empty() || m[0] == '/' ||
          absl::StrCat("/", s.home_mailbox(), "/").find("/../") != std::string::npos) {
        errs.push_back(
            absl::StrCat(where, ".home_mailbox must be a relative path inside the home"));
      }
    }
  }
  if (!IsAbsoluteClean(c.database_path())) {
    errs.push_back(
        absl::StrCat("database_path must be an absolute path (got \"", c.database_path(), "\")"));
  }
  const config::Listen& l = c.listen();
  if (l.unix_socket().empty() && l.tcp_address().empty()) {
    errs.push_back("listen needs a unix_socket or a tcp_address");
  }
  if (!l.unix_socket().empty() && !IsAbsoluteClean(l.unix_socket())) {
    errs.push_back("listen.unix_socket must be an absolute path");
  }
  if (l.unix_socket().size() > 107) errs.push_back("listen.unix_socket is longer than 107 bytes");
  const std::optional<HostPort> tcp = SplitHostPort(l.tcp_address());
  if (!l.tcp_address().empty() && !tcp) {
    errs.push_back(absl::StrCat("listen.tcp_address must be host:port or [ipv6]:port (got \"",
                                l.tcp_address(), "\")"));
  } else if (tcp && !IsLoopbackHost(*tcp)) {
    // Plaintext gRPC with no peer authentication: anyone who reaches the port could open any
    // user's session by name (README, "Running poplar-indexer"). Until mutual TLS between hosts
    // exists, TCP stays on this host.
    errs.push_back(absl::StrCat("listen.tcp_address must be a loopback address (got \"",
                                l.tcp_address(),
                                "\"): the TCP listener has no peer authentication yet; remote "
                                "front-ends need mutual TLS, which is not available"));
  }
  std::set<int> locks;
  for (int m : c.lock_methods()) {
    if (!locks.insert(m).second) errs.push_back("lock_methods lists a method twice");
  }
  if (c.reconcile_interval_s() < 1 || c.reconcile_interval_s() > 3600) {
    errs.push_back("reconcile_interval_s must be within 1..3600");
  }
  if (c.lock_timeout_ms() < 1 || c.lock_timeout_ms() > 600000) {
    errs.push_back("lock_timeout_ms must be within 1..600000");
  }
  if (c.dotlock_stale_s() < 120 || c.dotlock_stale_s() > 86400) {
    errs.push_back("dotlock_stale_s must be within 120..86400");
  }
  if (c.has_expunge_journal_dir() && !IsAbsoluteClean(c.expunge_journal_dir())) {
    errs.push_back(absl::StrCat("expunge_journal_dir must be an absolute path (got \"",
                                c.expunge_journal_dir(), "\")"));
  }
  if (c.deferred_expunge_delay_s() > 30 * 86400) {
    errs.push_back("deferred_expunge_delay_s must be at most 2592000 (30 days)");
  }
  if (c.lease_grace_ms() > 60000) errs.push_back("lease_grace_ms must be at most 60000");
  if (c.lease_wait_ms() > 30000) errs.push_back("lease_wait_ms must be within 0..30000");
  if (c.max_sessions_per_stream() < 1 || c.max_sessions_per_stream() > 1000000) {
    errs.push_back("max_sessions_per_stream must be within 1..1000000");
  }
  ValidateUidl(c.uidl(), "uidl", &errs);
  for (int i = 0; i < c.spools_size(); ++i) {
    if (c.spools(i).has_uidl()) {
      ValidateUidl(c.spools(i).uidl(), absl::StrCat("spools[", i, "].uidl"), &errs);
    }
  }
  if (c.scram_iterations() < 4096 || c.scram_iterations() > 10000000) {
    errs.push_back("scram_iterations must be within 4096..10000000 (RFC 7677)");
  }
  const config::OwnerCheck& owner = c.check_owner();
  if (!owner.spool_owner().empty() && !sasl::IsValidUserName(owner.spool_owner())) {
    errs.push_back(absl::StrCat("check_owner.spool_owner is not a valid user name (got \"",
                                owner.spool_owner(), "\")"));
  }
  if (owner.rule() == config::OwnerCheck::OWNER_SPOOL_OWNER && owner.spool_owner().empty()) {
    errs.push_back("check_owner.rule OWNER_SPOOL_OWNER needs check_owner.spool_owner");
  }
  if (c.has_pam()) {
    const config::Pam& pam = c.pam();
    const bool name_ok = !pam.service().empty() && pam.service().size() <= 64 &&
                         pam.service().find_first_not_of(
                             "abcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos &&
                         pam.service()[0] != '.';
    if (!name_ok) {
      errs.push_back(absl::StrCat("pam.service must be a file name of [a-z0-9._-] (got \"",
                                  pam.service(), "\")"));
    }
    if (pam.threads() < 1 || pam.threads() > 64) errs.push_back("pam.threads must be within 1..64");
    if (pam.max_waiting() < 1 || pam.max_waiting() > 10000) {
      errs.push_back("pam.max_waiting must be within 1..10000");
    }
    if (pam.has_config_dir() && !IsAbsoluteClean(pam.config_dir())) {
      errs.push_back(
          absl::StrCat("pam.config_dir must be an absolute path (got \"", pam.config_dir(), "\")"));
    }
  }
  if (c.has_run_as()) {
    const config::IndexerRunAs& r = c.run_as();
    if (r.user().empty() || r.user() == "root")
      errs.push_back("run_as.user must name an unprivileged user");
    for (const std::string& cap : r.keep_capabilities()) {
      if (!privileges::IsKeepableCapability(cap)) {
        errs.push_back(absl::StrCat("run_as.keep_capabilities: ", cap,
                                    " cannot be kept (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, "
                                    "CAP_FOWNER, CAP_CHOWN, CAP_NET_BIND_SERVICE)"));
      }
    }
  }
  if (errs.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errs, "; "));
}

absl::StatusOr<config::IndexerConfig> LoadIndexerConfig(const std::string& path) {
  config::IndexerConfig c;
  if (absl::Status s = poplar::config::LoadTextProtoFile(path, &c); !s.ok()) return s;
  ApplyDefaults(&c);
  if (absl::Status s = Validate(c); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return c;
}

mbox::UidlOptions UidlFromConfig(const config::IndexerConfig& c) {
  mbox::UidlOptions site = UidlOptionsFromProto(c.uidl());
  auto per_spool = std::make_shared<std::vector<mbox::SpoolUidlOptions>>();
  for (const config::Spool& spool : c.spools()) {
    if (!spool.has_uidl()) continue;
    std::string dir = spool.directory();
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    per_spool->push_back({dir, UidlOptionsFromProto(spool.uidl())});
  }
  if (!per_spool->empty()) site.per_spool = std::move(per_spool);
  return site;
}

}  // namespace poplar::indexer
