// poplar-popd's server: one worker per event-loop thread (design §6). Each worker owns an
// epoll loop, its own listening socket on the shared address (SO_REUSEPORT, so the kernel
// spreads new connections over the workers without a shared accept lock) and the connections
// it accepted, and its own Maildrop.Sessions stream that carries all its POP3 sessions
// (SessionMux); nothing is shared between workers but the indexer client (gRPC channels are
// thread-safe) and a connection counter.
#ifndef POPLAR_POPD_SERVER_H_
#define POPLAR_POPD_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "popd/abuse_guard.h"
#include "popd/indexer_client.h"
#include "popd/net.h"
#include "popd/popd_config.h"

namespace poplar::popd {

class Worker;

class Server {
 public:
  struct Options {
    Endpoint listen;
    std::optional<Endpoint> implicit_tls;  // the pop3s port, if any
    int threads = 1;
    IndexerClient::Options indexer;
    // PROXY protocol on both ports (config listen.proxy_protocol): connections must come from
    // `proxy_trusted` and start with a header, read before anything else (greeting, TLS).
    bool proxy_protocol = false;
    std::vector<Network> proxy_trusted;
    std::chrono::milliseconds proxy_timeout{5000};
  };

  // Binds (all listeners before any thread starts, so a bad address fails start-up) and runs.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Options& options,
                                                       std::shared_ptr<const Settings> settings);
  ~Server();

  // The bound port (the configured one, or the one the kernel picked for port 0).
  uint16_t port() const { return port_; }
  uint16_t tls_port() const { return tls_port_; }

  // SIGHUP: new connections use these settings; open ones keep theirs. Thread-safe.
  void Reload(std::shared_ptr<const Settings> settings);

  // SIGTERM: stop accepting at once, let open sessions run up to `timeout`, then hang up on the
  // rest (nothing of theirs is committed). Returns when every worker has stopped.
  void Drain(std::chrono::seconds timeout);

  size_t connections() const { return connections_.load(); }

 private:
  Server() = default;

  Options options_;
  uint16_t port_ = 0;
  uint16_t tls_port_ = 0;
  std::unique_ptr<IndexerClient> indexer_;
  std::unique_ptr<AbuseGuard> guard_;  // outlives the workers (declared before them)
  std::atomic<size_t> connections_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_SERVER_H_
