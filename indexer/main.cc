// poplar-indexer --config FILE [--check-config]
#include <signal.h>

#include <cstring>
#include <iostream>
#include <string>

#include "common/util/malloc_tuning.h"
#include "indexer/daemon.h"
#include "indexer/indexer_config.h"

int main(int argc, char** argv) {
  poplar::TuneMallocForLargeSnapshots();
  std::string config_path = "/etc/poplar/indexer.conf";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else {
      std::cerr << "usage: poplar-indexer [--config FILE] [--check-config]\n";
      return 2;
    }
  }
  absl::StatusOr<poplar::config::IndexerConfig> config =
      poplar::indexer::LoadIndexerConfig(config_path);
  if (!config.ok()) {
    std::cerr << "poplar-indexer: " << config.status().message() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << "poplar-indexer: " << config_path << " is valid\n";
    return 0;
  }
  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<poplar::indexer::Daemon>> daemon =
      poplar::indexer::Daemon::Start(*config);
  if (!daemon.ok()) {
    std::cerr << "poplar-indexer: " << daemon.status() << "\n";
    return 1;
  }
  if (!config->listen().unix_socket().empty()) {
    std::cout << "poplar-indexer: listening on unix:" << config->listen().unix_socket() << "\n";
  }
  if ((*daemon)->tcp_port() != 0) {
    std::cout << "poplar-indexer: listening on tcp port " << (*daemon)->tcp_port() << "\n";
  }
  std::cout.flush();
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      // Re-scan the spools (picks up directories created meanwhile); config reload comes later.
      if (absl::Status s = (*daemon)->indexer()->RescanAll(); !s.ok()) {
        std::cerr << "poplar-indexer: rescan: " << s << "\n";
      }
      continue;
    }
    std::cout << "poplar-indexer: " << strsignal(sig) << ", shutting down\n";
    break;
  }
  (*daemon)->Shutdown();
  return 0;
}
