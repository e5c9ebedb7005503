// poplar-popd --config FILE [--check-config]
//
// Signals: SIGTERM/SIGINT drain (stop accepting, let sessions finish up to
// limits.drain_timeout_s, then hang up; nothing partial is committed), SIGHUP reloads the
// configuration file (limits, timeouts, plaintext networks; a change of listen address,
// threads or indexer target needs a restart and is logged as such).
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/privileges/privileges.h"
#include "common/util/log.h"
#include "common/util/malloc_tuning.h"
#include "google/protobuf/util/message_differencer.h"
#include "popd/popd_config.h"
#include "popd/server.h"

namespace {

std::string DefaultFrontEndName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return absl::StrCat("popd@", host, ":", getpid());
}

bool NeedsRestart(const poplar::config::PopdConfig& a, const poplar::config::PopdConfig& b) {
  using google::protobuf::util::MessageDifferencer;
  return !MessageDifferencer::Equals(a.listen(), b.listen()) ||
         !MessageDifferencer::Equals(a.indexer(), b.indexer()) || a.threads() != b.threads();
}

}  // namespace

int main(int argc, char** argv) {
  poplar::log::Init("poplar-popd");
  poplar::TuneMallocForLargeSnapshots();
  std::string config_path = "/etc/poplar/popd.conf";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check-config") {
      check_only = true;
    } else {
      std::cerr << "usage: poplar-popd [--config FILE] [--check-config]\n";
      return 2;
    }
  }
  absl::StatusOr<poplar::config::PopdConfig> config = poplar::popd::LoadPopdConfig(config_path);
  if (!config.ok()) {
    std::cerr << "poplar-popd: " << config.status().message() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << "poplar-popd: " << config_path << " is valid\n";
    return 0;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // every thread started later inherits it
  ::signal(SIGPIPE, SIG_IGN);

  const std::string front_end = DefaultFrontEndName();
  poplar::popd::Server::Options options;
  options.listen = *poplar::popd::Endpoint::Parse(config->listen().address());
  if (config->listen().has_implicit_tls_address()) {
    options.implicit_tls = *poplar::popd::Endpoint::Parse(config->listen().implicit_tls_address());
  }
  options.threads = config->threads() != 0
                        ? static_cast<int>(config->threads())
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.indexer.target = config->indexer().target();
  options.indexer.max_snapshot_bytes = config->indexer().max_snapshot_bytes();
  options.proxy_protocol = config->listen().proxy_protocol();
  for (const std::string& n : config->listen().proxy_trusted_networks()) {
    options.proxy_trusted.push_back(*poplar::popd::Network::Parse(n));  // validated
  }
  options.proxy_timeout = std::chrono::milliseconds(config->listen().proxy_header_timeout_ms());
  options.indexer.multiplex_sessions = config->indexer().multiplex_sessions();
  absl::StatusOr<poplar::popd::Settings> settings = poplar::popd::LoadSettings(*config, front_end);
  if (!settings.ok()) {
    std::cerr << "poplar-popd: " << settings.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<poplar::popd::Server>> server = poplar::popd::Server::Start(
      options, std::make_shared<const poplar::popd::Settings>(*std::move(settings)));
  if (!server.ok()) {
    std::cerr << "poplar-popd: " << server.status().message() << "\n";
    return 1;
  }
  if (config->has_run_as()) {
    const poplar::config::PopdRunAs& r = config->run_as();
    absl::Status dropped = poplar::privileges::DropPrivileges(
        r.user(), r.group(),
        std::vector<std::string>(r.extra_groups().begin(), r.extra_groups().end()));
    if (!dropped.ok()) {
      std::cerr << "poplar-popd: " << dropped.message() << "\n";
      return 1;
    }
    poplar::log::Info(absl::StrCat("running as ", r.user(), " from now on"));
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
  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      absl::StatusOr<poplar::config::PopdConfig> next = poplar::popd::LoadPopdConfig(config_path);
      if (!next.ok()) {
        poplar::log::Info(
            absl::StrCat("SIGHUP: keeping the running configuration: ", next.status().message()));
        continue;
      }
      if (NeedsRestart(*config, *next)) {
        poplar::log::Info(
            "SIGHUP: listen, indexer and threads changes take effect only after a restart");
      }
      absl::StatusOr<poplar::popd::Settings> next_settings =
          poplar::popd::LoadSettings(*next, front_end);
      if (!next_settings.ok()) {
        poplar::log::Info(absl::StrCat("SIGHUP: keeping the running configuration: ",
                                       next_settings.status().message()));
        continue;
      }
      (*server)->Reload(std::make_shared<const poplar::popd::Settings>(*std::move(next_settings)));
      poplar::log::Info("SIGHUP: configuration reloaded (certificate re-read for new connections)");
      continue;
    }
    poplar::log::Info(absl::StrCat("draining ", (*server)->connections(), " connection(s)"));
    (*server)->Drain(std::chrono::seconds(config->limits().drain_timeout_s()));
    poplar::log::Info("stopped");
    return 0;
  }
}
