// poplar-popd's configuration: the schema (proto/poplar/popd_config.proto) loaded, validated
// and turned into the values the event loops use. Validate() is pure and reports every
// problem at once; a bad file is fatal at start and ignored (with the reason logged) on SIGHUP.
#ifndef POPLAR_POPD_POPD_CONFIG_H_
#define POPLAR_POPD_POPD_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pop3/session.h"
#include "popd/abuse_guard.h"
#include "popd/net.h"
#include "popd/transport.h"
#include "poplar/popd_config.pb.h"

namespace poplar::popd {

// InvalidArgument listing every problem, or OK.
absl::Status Validate(const config::PopdConfig& c);

// Reads the text-format file and validates it.
absl::StatusOr<config::PopdConfig> LoadPopdConfig(const std::string& path);

// What a connection needs, resolved once per (re)load and shared read-only by the loops.
struct Settings {
  std::chrono::milliseconds login_timeout{10000};
  std::chrono::milliseconds commit_timeout{120000};
  std::chrono::seconds autologout{600};
  std::chrono::seconds preauth_timeout{60};
  size_t output_high_water = 256 * 1024;
  uint32_t max_connections = 10000;
  std::vector<Network> plaintext_networks;
  pop3::Session::Options session;  // allow_plaintext is set per connection
  std::string front_end_name;
  TlsContext tls;        // null without TLS
  bool apop = false;     // APOP and CRAM-MD5 offered
  std::string hostname;  // for APOP timestamps
  std::chrono::milliseconds auth_failure_delay{2000};
  AbuseGuard::Limits abuse;

  bool PlaintextAllowedFrom(const IpAddress& peer) const;
};

// `c` must have passed Validate(). Pure: no TLS context (see LoadSettings).
Settings MakeSettings(const config::PopdConfig& c, const std::string& default_front_end);

// MakeSettings plus the TLS context, whose certificate and key are read now (at start and on
// every SIGHUP). InvalidArgument if they cannot be loaded.
absl::StatusOr<Settings> LoadSettings(const config::PopdConfig& c,
                                      const std::string& default_front_end);

}  // namespace poplar::popd

#endif  // POPLAR_POPD_POPD_CONFIG_H_
