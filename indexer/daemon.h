// Daemon: poplar-indexer's process wiring. Builds the Indexer, scans the spools, serves gRPC
// (Maildrop, Admin, health) on the unix socket and optional TCP address, and runs the event
// thread that turns inotify events, polling and the periodic reconcile into index updates.
// main.cc only parses flags and waits for signals; tests start a Daemon in-process.
#ifndef POPLAR_INDEXER_DAEMON_H_
#define POPLAR_INDEXER_DAEMON_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/daemon/grpc_library_scope.h"
#include "common/util/unique_fd.h"
#include "indexer/admin_service.h"
#include "indexer/indexer.h"
#include "indexer/maildrop_service.h"
#include "poplar/config.pb.h"

namespace poplar::indexer {

class Daemon {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const config::IndexerConfig& config);
  ~Daemon();

  // Stops accepting calls (in-flight ones get up to `grace` to finish) and the event thread.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  Indexer* indexer() { return indexer_.get(); }
  grpc::Server* server() { return server_.get(); }
  int tcp_port() const { return tcp_port_; }  // 0 when TCP is off

 private:
  explicit Daemon(config::IndexerConfig config) : config_(std::move(config)) {}
  void EventLoop();

  // First member, so released last (after the servers and the services), on the thread that
  // destroys the Daemon: see grpc_library_scope.h. A member rather than in main(): gRPC starts
  // threads when it is initialised, and they must be born after the privilege drop (run_as),
  // which Start() does before it constructs the Daemon.
  GrpcLibraryScope grpc_library_;
  config::IndexerConfig config_;
  std::unique_ptr<Indexer> indexer_;
  std::unique_ptr<MaildropService> maildrop_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<grpc::Server> server_;  // the unix socket: Maildrop and Admin
  // The TCP listener: Maildrop only, credentials required (Daemon::Start says why).
  std::unique_ptr<MaildropService> tcp_maildrop_;
  std::unique_ptr<grpc::Server> tcp_server_;
  int tcp_port_ = 0;
  UniqueFd stop_fd_;  // eventfd that wakes the event thread for shutdown
  std::thread events_;
  std::atomic<bool> stopped_{false};
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_DAEMON_H_
