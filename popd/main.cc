// poplar-popd [--config FILE] [--check-config]
//
// Signals: SIGTERM/SIGINT drain (stop accepting, let sessions finish up to
// limits.drain_timeout_s, then hang up; nothing partial is committed), SIGHUP reloads the
// configuration file (limits, timeouts, plaintext networks; a change of listen address,
// threads or indexer target needs a restart and is logged as such).
#include <unistd.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/daemon/daemon_main.h"
#include "common/daemon/grpc_library_scope.h"
#include "common/privileges/privileges.h"
#include "common/util/log.h"
#include "common/util/malloc_tuning.h"
#include "google/protobuf/util/message_differencer.h"
#include "popd/popd_config.h"
#include "popd/server.h"

namespace {

std::string DefaultFrontEndName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return absl::StrCat("popd@unknown:", getpid());
  return absl::StrCat("popd@", host, ":", getpid());
}

bool NeedsRestart(const poplar::config::PopdConfig& a, const poplar::config::PopdConfig& b) {
  using google::protobuf::util::MessageDifferencer;
  return !MessageDifferencer::Equals(a.listen(), b.listen()) ||
         !MessageDifferencer::Equals(a.indexer(), b.indexer()) || a.threads() != b.threads();
}

// The server's start-up options from a validated configuration (addresses and networks were
// checked by LoadPopdConfig, hence the bare dereferences).
poplar::popd::Server::Options ServerOptions(const poplar::config::PopdConfig& config) {
  poplar::popd::Server::Options options;
  options.listen = *poplar::popd::Endpoint::Parse(config.listen().address());
  if (config.listen().has_implicit_tls_address()) {
    options.implicit_tls = *poplar::popd::Endpoint::Parse(config.listen().implicit_tls_address());
  }
  options.threads = config.threads() != 0
                        ? static_cast<int>(config.threads())
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.indexer.target = config.indexer().target();
  options.indexer.max_snapshot_bytes = config.indexer().max_snapshot_bytes();
  options.proxy_protocol = config.listen().proxy_protocol();
  for (const std::string& n : config.listen().proxy_trusted_networks()) {
    options.proxy_trusted.push_back(*poplar::popd::Network::Parse(n));  // validated
  }
  options.proxy_timeout = std::chrono::milliseconds(config.listen().proxy_header_timeout_ms());
  options.indexer.multiplex_sessions = config.indexer().multiplex_sessions();
  return options;
}

// SIGHUP: the configuration file again. Settings that a running server can take (limits,
// timeouts, TLS, plaintext networks) apply to new connections; the rest is logged as needing a
// restart. A file that does not load or validate leaves the running configuration as it is.
void Reload(const std::string& config_path, const poplar::config::PopdConfig& running,
            const std::string& front_end, poplar::popd::Server& server) {
  absl::StatusOr<poplar::config::PopdConfig> next = poplar::popd::LoadPopdConfig(config_path);
  if (!next.ok()) {
    poplar::log::Warning("SIGHUP: keeping the running configuration: ", next.status().message());
    return;
  }
  if (NeedsRestart(running, *next)) {
    poplar::log::Warning(
        "SIGHUP: listen, indexer and threads changes take effect only after a restart");
  }
  absl::StatusOr<poplar::popd::Settings> settings = poplar::popd::LoadSettings(*next, front_end);
  if (!settings.ok()) {
    poplar::log::Warning("SIGHUP: keeping the running configuration: ",
                         settings.status().message());
    return;
  }
  server.Reload(std::make_shared<const poplar::popd::Settings>(*std::move(settings)));
  poplar::log::Info("SIGHUP: configuration reloaded (certificate re-read for new connections)");
}

}  // namespace

int main(int argc, char** argv) {
  poplar::TuneMallocForLargeSnapshots();
  const poplar::daemon::CommandLine line =
      poplar::daemon::Start({"poplar-popd", "/etc/poplar/popd.conf"}, argc, argv);
  absl::StatusOr<poplar::config::PopdConfig> config =
      poplar::popd::LoadPopdConfig(line.config_path);
  if (!config.ok()) {
    poplar::log::Error(config.status().message());
    return 2;
  }
  if (line.check_config) {
    std::cout << "poplar-popd: " << line.config_path << " is valid\n";
    return 0;
  }
  poplar::daemon::BlockSignals();  // before the event loops and gRPC start their threads
  // After the signal mask (gRPC's threads inherit it), before any gRPC object; released last.
  poplar::GrpcLibraryScope grpc_library;

  const std::string front_end = DefaultFrontEndName();
  const poplar::popd::Server::Options options = ServerOptions(*config);
  absl::StatusOr<poplar::popd::Settings> settings = poplar::popd::LoadSettings(*config, front_end);
  if (!settings.ok()) {
    poplar::log::Error(settings.status().message());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<poplar::popd::Server>> server = poplar::popd::Server::Start(
      options, std::make_shared<const poplar::popd::Settings>(*std::move(settings)));
  if (!server.ok()) {
    poplar::log::Error(server.status().message());
    return 1;
  }
  if (config->has_run_as()) {
    const poplar::config::PopdRunAs& r = config->run_as();
    absl::Status dropped = poplar::privileges::DropPrivileges(
        r.user(), r.group(),
        std::vector<std::string>(r.extra_groups().begin(), r.extra_groups().end()));
    if (!dropped.ok()) {
      poplar::log::Error(dropped.message());
      return 1;
    }
    poplar::log::Info("running as ", r.user(), " from now on");
  }
  poplar::popd::Endpoint bound = options.listen;
  bound.port = (*server)->port();
  if (options.implicit_tls) {
    poplar::popd::Endpoint tls_bound = *options.implicit_tls;
    tls_bound.port = (*server)->tls_port();
    std::cout << "poplar-popd: listening on pop3s " << tls_bound.ToString() << "\n";
  }
  std::cout << "poplar-popd: listening on pop3 " << bound.ToString()
            << (config->has_tls() ? " (STLS)" : "") << " with " << options.threads
            << " event loop(s), indexer " << options.indexer.target << std::endl;
  poplar::daemon::WaitForStop([&] { Reload(line.config_path, *config, front_end, **server); });
  poplar::log::Info("draining ", (*server)->connections(), " connection(s)");
  (*server)->Drain(std::chrono::seconds(config->limits().drain_timeout_s()));
  poplar::log::Info("stopped");
  return 0;
}
