#include "indexer/daemon.h"

#include <grpcpp/health_check_service_interface.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/privileges/privileges.h"
#include "common/util/errno_status.h"
#include "common/util/log.h"

namespace poplar::indexer {
namespace {

// Removes a stale socket left by a previous run; refuses to remove anything that is not one.
// A directory created here for the socket is given to `owner` (run_as) when there is one.
absl::Status PrepareSocketPath(const std::string& path,
                               const privileges::Identity* owner = nullptr) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const bool created = std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the directory of ", path, ": ", ec.message()));
  if (created && owner != nullptr && ::chown(dir.c_str(), owner->uid, owner->gid) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("chown ", dir.string()));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a socket"));
    }
    if (::unlink(path.c_str()) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("cannot remove stale socket ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// run_as: becomes the configured user before anything is opened and before any thread
// exists (capabilities are per thread; a thread created later inherits exactly these).
absl::Status DropToRunAs(const config::IndexerConfig& config) {
  const config::IndexerRunAs& r = config.run_as();
  absl::StatusOr<privileges::Identity> id = privileges::Resolve(
      r.user(), r.group(),
      std::vector<std::string>(r.extra_groups().begin(), r.extra_groups().end()));
  if (!id.ok()) return id.status();
  absl::StatusOr<std::vector<int>> keep = privileges::CapabilitiesFromNames(
      std::vector<std::string>(r.keep_capabilities().begin(), r.keep_capabilities().end()));
  if (!keep.ok()) return keep.status();
  const std::string& sock = config.listen().unix_socket();
  if (!sock.empty()) {
    if (absl::Status s = PrepareSocketPath(sock, &*id); !s.ok()) return s;
  }
  if (absl::Status s = privileges::Drop(*id, *keep); !s.ok()) return s;
  std::string groups;
  for (gid_t g : id->groups) absl::StrAppend(&groups, groups.empty() ? "" : ",", g);
  std::string caps;
  for (const std::string& c : r.keep_capabilities())
    absl::StrAppend(&caps, caps.empty() ? "" : ",", c);
  log::Info("running as ", id->user, " (uid ", id->uid, ", gid ", id->gid, ", groups ",
            groups.empty() ? "none" : groups, ", capabilities ", caps.empty() ? "none" : caps, ")");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const config::IndexerConfig& config) {
  if (config.has_run_as()) {
    if (absl::Status s = DropToRunAs(config); !s.ok()) return s;
  }
  std::unique_ptr<Daemon> d(new Daemon(config));
  absl::StatusOr<std::unique_ptr<Indexer>> idx = Indexer::Create(config);
  if (!idx.ok()) return idx.status();
  d->indexer_ = std::move(*idx);
  // The first full scan happens before serving, so the first login finds a current index.
  if (absl::Status s = d->indexer_->RescanAll(); !s.ok()) {
    log::Warning("initial scan: ", s);  // one bad mailbox is not fatal
  }

  // Two servers, because what a peer may do depends on how it came in. The unix socket's file
  // permissions (0660, below) are its access control: there popd opens sessions and poplarctl
  // administers. The TCP listener (loopback only, see indexer_config.cc) authenticates no peer:
  // it serves the Maildrop service alone, and opens a session only with the user's own
  // credentials; the Admin service is never on it.
  d->maildrop_ =
      std::make_unique<MaildropService>(d->indexer_.get(), config.max_sessions_per_stream(),
                                        /*require_credentials=*/false);
  d->admin_ = std::make_unique<AdminService>(d->indexer_.get());
  grpc::EnableDefaultHealthCheckService(true);
  // A front-end that dies must lose its leases within seconds: ping idle connections and drop
  // those that do not answer (design §5 "Leases").
  const int keepalive_ms = std::max<int>(1000, static_cast<int>(config.lease_grace_ms()));
  auto configure = [keepalive_ms](grpc::ServerBuilder& builder) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, keepalive_ms);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    builder.SetMaxReceiveMessageSize(4 << 20);
    builder.SetMaxSendMessageSize(256 << 20);  // a snapshot of a very large mailbox
  };
  const std::string& sock = config.listen().unix_socket();
  if (!sock.empty()) {
    if (absl::Status s = PrepareSocketPath(sock); !s.ok()) return s;
    grpc::ServerBuilder builder;
    configure(builder);
    builder.AddListeningPort("unix:" + sock, grpc::InsecureServerCredentials());
    builder.RegisterService(d->maildrop_.get());
    builder.RegisterService(d->admin_.get());
    d->server_ = builder.BuildAndStart();
    if (!d->server_) return absl::UnavailableError("cannot start the gRPC server on " + sock);
  }
  if (!config.listen().tcp_address().empty()) {
    d->tcp_maildrop_ =
        std::make_unique<MaildropService>(d->indexer_.get(), config.max_sessions_per_stream(),
                                          /*require_credentials=*/true);
    grpc::ServerBuilder builder;
    configure(builder);
    builder.AddListeningPort(config.listen().tcp_address(), grpc::InsecureServerCredentials(),
                             &d->tcp_port_);
    builder.RegisterService(d->tcp_maildrop_.get());
    d->tcp_server_ = builder.BuildAndStart();
    if (!d->tcp_server_) {
      return absl::UnavailableError("cannot start the gRPC server on " +
                                    config.listen().tcp_address() + " (address in use?)");
    }
  }
  if (!sock.empty()) {
    // The socket is the access control of the admin API: owner and group only.
    if (::chmod(sock.c_str(), 0660) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("chmod ", sock));
    }
  }
  d->stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!d->stop_fd_.valid()) return absl::InternalError("eventfd failed");
  d->events_ = std::thread([raw = d.get()] { raw->EventLoop(); });
  return d;
}

void Daemon::EventLoop() {
  const absl::Duration reconcile = absl::Seconds(config_.reconcile_interval_s());
  absl::Duration poll_every = reconcile;
  bool polling = false;
  for (const config::Spool& s : config_.spools()) {
    if (!s.poll()) continue;
    polling = true;
    poll_every = std::min(poll_every, absl::Milliseconds(s.poll_interval_ms()));
  }
  absl::Time next_reconcile = absl::Now() + poll_every;
  // Deferred compaction is checked every few seconds (cheap: one query per mailbox with
  // hidden messages).
  const absl::Duration compact_every = absl::Seconds(5);
  absl::Time next_compact = absl::Now() + compact_every;
  while (!stopped_.load()) {
    struct pollfd fds[2] = {{indexer_->watch_fd(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    const absl::Time wake =
        indexer_->deferred_expunge() ? std::min(next_reconcile, next_compact) : next_reconcile;
    int timeout_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now())));
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    if (stopped_.load()) break;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      if (absl::Status s = indexer_->HandleWatchEvents(); !s.ok()) {
        log::Warning("watch: ", s);
      }
    }
    if (absl::Now() >= next_reconcile) {
      // Polled spools are listed again too, so new mailboxes there are found without inotify.
      if (absl::Status s = polling ? indexer_->RescanAll() : indexer_->ReconcileKnown(); !s.ok()) {
        log::Warning("reconcile: ", s);
      }
      next_reconcile = absl::Now() + poll_every;
    }
    if (indexer_->deferred_expunge() && absl::Now() >= next_compact) {
      if (absl::StatusOr<int> compacted = indexer_->CompactDue(); !compacted.ok()) {
        log::Warning("deferred expunge: ", compacted.status());
      }
      next_compact = absl::Now() + compact_every;
    }
  }
}

void Daemon::Shutdown(absl::Duration grace) {
  if (stopped_.exchange(true)) return;
  uint64_t one = 1;
  if (::write(stop_fd_.get(), &one, sizeof one) < 0) {
    // The loop also checks stopped_ at every wake-up; the reconcile timer wakes it at worst.
  }
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace);
  if (tcp_server_) tcp_server_->Shutdown(deadline);
  if (server_) server_->Shutdown(deadline);
  if (events_.joinable()) events_.join();
}

Daemon::~Daemon() { Shutdown(absl::ZeroDuration()); }

}  // namespace poplar::indexer
