// poplar-indexer [--config FILE] [--check-config]
//
// Signals: SIGTERM/SIGINT shut down (the server stops, leases end), SIGHUP re-scans the spools
// (picks up directories created meanwhile); the configuration is not reloaded.
#include <cstring>
#include <iostream>
#include <string>

#include "common/daemon/daemon_main.h"
#include "common/util/log.h"
#include "common/util/malloc_tuning.h"
#include "indexer/daemon.h"
#include "indexer/indexer_config.h"

int main(int argc, char** argv) {
  poplar::TuneMallocForLargeSnapshots();
  const poplar::daemon::CommandLine line =
      poplar::daemon::Start({"poplar-indexer", "/etc/poplar/indexer.conf"}, argc, argv);
  absl::StatusOr<poplar::config::IndexerConfig> config =
      poplar::indexer::LoadIndexerConfig(line.config_path);
  if (!config.ok()) {
    poplar::log::Error(config.status().message());
    return 2;
  }
  if (line.check_config) {
    std::cout << "poplar-indexer: " << line.config_path << " is valid\n";
    return 0;
  }
  poplar::daemon::BlockSignals();  // before the daemon's threads start

  absl::StatusOr<std::unique_ptr<poplar::indexer::Daemon>> daemon =
      poplar::indexer::Daemon::Start(*config);
  if (!daemon.ok()) {
    poplar::log::Error(daemon.status());
    return 1;
  }
  if (!config->listen().unix_socket().empty()) {
    std::cout << "poplar-indexer: listening on unix:" << config->listen().unix_socket() << "\n";
  }
  if ((*daemon)->tcp_port() != 0) {
    std::cout << "poplar-indexer: listening on tcp port " << (*daemon)->tcp_port() << "\n";
  }
  std::cout.flush();
  const int sig = poplar::daemon::WaitForStop([&] {
    if (absl::Status s = (*daemon)->indexer()->RescanAll(); !s.ok()) {
      poplar::log::Warning("rescan: ", s);
    }
  });
  std::cout << "poplar-indexer: " << strsignal(sig) << ", shutting down" << std::endl;
  (*daemon)->Shutdown();
  return 0;
}
