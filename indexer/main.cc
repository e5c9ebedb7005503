// poplar-indexer [--config FILE] [--check-config] [--print-config]
//
// Signals: SIGTERM/SIGINT shut down (the server stops, leases end), SIGHUP re-reads the
// configuration (what a running indexer can take applies at once, the rest is logged as
// needing a restart: indexer/reload.h) and re-scans the spools. Under systemd: sd_notify
// READY=1 once the first scan is done and the sockets serve, WATCHDOG=1 while the index
// answers, STOPPING=1 at shutdown.
#include <cstring>
#include <iostream>
#include <string>

#include "absl/strings/str_join.h"
#include "common/config/effective.h"
#include "common/daemon/daemon_main.h"
#include "common/daemon/sd_notify.h"
#include "common/util/log.h"
#include "common/util/malloc_tuning.h"
#include "indexer/daemon.h"
#include "indexer/indexer_config.h"
#include "indexer/reload.h"

namespace {

// SIGHUP: the file again; what a running indexer takes applies now (indexer/reload.h), the rest
// is named as needing a restart. A file that does not load or validate changes nothing.
void Reload(const std::string& path, poplar::config::IndexerConfig* running) {
  absl::StatusOr<poplar::config::IndexerConfig> next = poplar::indexer::LoadIndexerConfig(path);
  if (!next.ok()) {
    poplar::log::Warning("SIGHUP: keeping the running configuration: ", next.status().message());
    return;
  }
  const poplar::indexer::ReloadPlan plan = poplar::indexer::PlanReload(*running, *next);
  if (!plan.need_restart.empty()) {
    poplar::log::Warning("SIGHUP: changed, needs a restart: ",
                         absl::StrJoin(plan.need_restart, ", "));
  }
  poplar::log::SetMinLevel(*poplar::log::ParseLevel(next->log().level()));  // validated
  running->mutable_log()->set_level(next->log().level());
  poplar::log::Info("SIGHUP: configuration reloaded",
                    plan.applied.empty()
                        ? ""
                        : absl::StrCat(" (applied: ", absl::StrJoin(plan.applied, ", "), ")"));
}

}  // namespace

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
  if (line.print_config) {
    std::cout << "# poplar-indexer: effective configuration of " << line.config_path << "\n"
              << poplar::config::PrintEffective(*config, {"pam", "run_as", "metrics"});
    return 0;
  }
  if (line.check_config) {
    std::cout << "poplar-indexer: " << line.config_path << " is valid\n";
    return 0;
  }
  poplar::log::SetMinLevel(*poplar::log::ParseLevel(config->log().level()));  // validated
  if (config->log().syslog()) poplar::log::UseSyslog();
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
  if ((*daemon)->metrics_port() != 0) {
    std::cout << "poplar-indexer: listening on metrics " << config->metrics().listen_address()
              << " port " << (*daemon)->metrics_port() << "\n";
  }
  std::cout.flush();
  if (absl::Status s = poplar::daemon::Notify("READY=1"); !s.ok()) {
    poplar::log::Warning("sd_notify: ", s);
  }
  const int sig = poplar::daemon::WaitForStop(
      [&] {
        Reload(line.config_path, &*config);
        if (absl::Status s = (*daemon)->indexer()->RescanAll(); !s.ok()) {
          poplar::log::Warning("rescan: ", s);
        }
      },
      // The watchdog's question: does the index answer (its lock and database work)?
      [&] { return (*daemon)->indexer()->Status().ok(); });
  std::cout << "poplar-indexer: " << strsignal(sig) << ", shutting down" << std::endl;
  (*daemon)->Shutdown();
  return 0;
}
