#include "popd/server.h"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/proxy/proxy_header.h"
#include "common/util/errno_status.h"
#include "common/util/log.h"
#include "common/util/strings.h"
#include "popd/connection.h"
#include "popd/event_loop.h"

namespace poplar::popd {
namespace {

absl::Status Errno(std::string_view what) { return ErrnoToStatus(errno, what); }

absl::StatusOr<UniqueFd> Listen(const Endpoint& at) {
  sockaddr_storage sa{};
  const socklen_t len = at.ToSockaddr(&sa);
  UniqueFd fd(::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket");
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return Errno("setsockopt");
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    return Errno(absl::StrCat("bind ", at.ToString()));
  }
  if (::listen(fd.get(), 1024) != 0) return Errno("listen");
  return fd;
}

}  // namespace

class Worker final : public ConnectionHost {
 public:
  Worker(const Server::Options& options, IndexerClient* indexer, AbuseGuard* guard,
         std::atomic<size_t>* connections, UniqueFd plain, UniqueFd tls,
         std::shared_ptr<const Settings> settings)
      : options_(options),
        indexer_(indexer),
        guard_(guard),
        connections_(connections),
        settings_(std::move(settings)) {
    if (indexer->multiplex_sessions()) mux_ = std::make_unique<SessionMux>(indexer);
    plain_.worker = this;
    plain_.fd = std::move(plain);
    tls_.worker = this;
    tls_.fd = std::move(tls);
    tls_.implicit_tls = true;
  }

  ~Worker() override {
    // Connections go before the loop: their destructors cancel their gRPC calls. Then the
    // loop's shared stream, if any, is cancelled.
    connections_->fetch_sub(connections_map_.size());
    connections_map_.clear();
    for (auto& entry : proxied_) loop_->Remove(entry.second->fd.get());
    proxied_.clear();
    mux_.reset();
  }

  absl::Status Init() {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop =
        EventLoop::Create(std::chrono::milliseconds(1000), [this] { OnTick(); });
    if (!loop.ok()) return loop.status();
    loop_ = std::move(*loop);
    for (Listener* l : {&plain_, &tls_}) {
      if (!l->fd.valid()) continue;
      if (absl::Status s = loop_->Add(l->fd.get(), EPOLLIN, l); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  void Run() { loop_->Run(); }

  // ConnectionHost
  EventLoop& loop() override { return *loop_; }
  IndexerClient& indexer() override { return *indexer_; }
  SessionOpener& sessions() override {
    if (mux_) return *mux_;
    return *indexer_;
  }
  AbuseGuard& guard() override { return *guard_; }
  void WithConnection(uint64_t id, const std::function<void(Connection&)>& fn) override {
    auto it = connections_map_.find(id);
    if (it != connections_map_.end() && !it->second->closed()) fn(*it->second);
  }
  void Closed(uint64_t id) override {
    // Deleted from a posted closure: after the current event batch, never under our caller.
    loop_->Post([this, id] {
      if (connections_map_.erase(id) > 0) connections_->fetch_sub(1);
      MaybeFinishDrain();
    });
  }

  void SetSettings(std::shared_ptr<const Settings> settings) { settings_ = std::move(settings); }

  void BeginDrain(EventLoop::Clock::time_point deadline) {
    for (Listener* l : {&plain_, &tls_}) {
      if (!l->fd.valid()) continue;
      loop_->Remove(l->fd.get());
      l->fd.Reset();
    }
    drain_deadline_ = deadline;
    for (auto& entry : proxied_) loop_->Remove(entry.second->fd.get());
    proxied_.clear();  // no header yet: not a session, nothing to finish
    MaybeFinishDrain();
  }

 private:
  struct Listener final : EventLoop::Handler {
    Worker* worker = nullptr;
    UniqueFd fd;
    bool implicit_tls = false;
    void OnEvents(uint32_t) override { worker->Accept(*this); }
  };

  // A connection on a PROXY listener until its header is complete: the header is peeked at and
  // consumed exactly, so the client's first bytes (a TLS ClientHello) stay in the socket.
  struct Proxied final : EventLoop::Handler {
    Worker* worker = nullptr;
    uint64_t id = 0;
    UniqueFd fd;
    IpAddress balancer;
    bool implicit_tls = false;
    EventLoop::Clock::time_point deadline;
    std::string consumed;  // header bytes read so far
    void OnEvents(uint32_t) override { worker->ReadProxyHeader(*this); }
  };

  // Listener readable: accept what is queued (a bounded batch, then other events get a turn).
  void Accept(Listener& l) {
    for (int i = 0; i < 64 && l.fd.valid(); ++i) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      UniqueFd fd(::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                            SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd.valid()) {
        if (errno == EMFILE || errno == ENFILE) log::Warning("accept: out of file descriptors");
        return;
      }
      const IpAddress ip = IpAddress::FromSockaddr(peer);
      if (options_.proxy_protocol) {
        AwaitProxyHeader(std::move(fd), ip, l.implicit_tls);
      } else {
        Admit(std::move(fd), ip, l.implicit_tls);
      }
    }
  }

  void AwaitProxyHeader(UniqueFd fd, const IpAddress& from, bool implicit_tls) {
    bool trusted = false;
    for (const Network& n : options_.proxy_trusted) trusted = trusted || n.Contains(from);
    if (!trusted) {
      // Only a balancer may say who the client is; anyone else could claim any address.
      log::Warning("proxy: connection from ", from.ToString(),
                   " refused: not in listen.proxy_trusted_networks");
      return;
    }
    if (connections_->load() + proxied_.size() >= settings_->max_connections) return;
    auto p = std::make_unique<Proxied>();
    p->worker = this;
    p->id = next_id_++;
    p->fd = std::move(fd);
    p->balancer = from;
    p->implicit_tls = implicit_tls;
    p->deadline = EventLoop::Clock::now() + options_.proxy_timeout;
    if (!loop_->Add(p->fd.get(), EPOLLIN, p.get()).ok()) return;
    proxied_.emplace(p->id, std::move(p));
  }

  void ReadProxyHeader(Proxied& p) {
    auto drop = [&](std::string_view why) {
      log::Warning("proxy: connection from ", p.balancer.ToString(), " closed: ", why);
      loop_->Remove(p.fd.get());
      proxied_.erase(p.id);  // destroys p
    };
    char buf[proxy::kMaxBytes];
    const size_t room = proxy::kMaxBytes - p.consumed.size();
    const ssize_t n = ::recv(p.fd.get(), buf, room, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) return drop("closed before a complete PROXY header");
    std::string seen = p.consumed;
    seen.append(buf, static_cast<size_t>(n));
    const proxy::ParseResult r = proxy::Parse(seen);
    if (r.status == proxy::ParseStatus::kInvalid) return drop(r.error);
    // Everything peeked is header while it is incomplete; once complete, exactly the rest of it.
    const size_t take = r.status == proxy::ParseStatus::kNeedMore
                            ? static_cast<size_t>(n)
                            : r.header.length - p.consumed.size();
    if (::recv(p.fd.get(), buf, take, 0) != static_cast<ssize_t>(take)) return drop("read failed");
    p.consumed.append(buf, take);
    if (r.status == proxy::ParseStatus::kNeedMore) return;
    IpAddress client = p.balancer;  // LOCAL / UNKNOWN: the balancer's own connection
    // A v4 client behind a dual-stack balancer may come as ::ffff:a.b.c.d: it is an IPv4 client
    // (per-IP caps and allowed networks), as on a dual-stack socket of our own.
    if (r.header.has_address) client = r.header.source.ip.Unmapped();
    loop_->Remove(p.fd.get());
    UniqueFd fd = std::move(p.fd);
    const bool implicit_tls = p.implicit_tls;
    proxied_.erase(p.id);
    Admit(std::move(fd), client, implicit_tls);
  }

  // A client (its real address) becomes a connection, or is refused for the limits.
  void Admit(UniqueFd fd, const IpAddress& ip, bool implicit_tls) {
    if (connections_->load() >= settings_->max_connections || (implicit_tls && !settings_->tls) ||
        !guard_->Connected(ip)) {
      // (A refused pop3s client gets no text: it would not be TLS.)
      if (!implicit_tls) {
        static constexpr std::string_view kBusy =
            "-ERR [SYS/TEMP] Too many connections, try again later\r\n";
        [[maybe_unused]] ssize_t n =
            ::send(fd.get(), kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      return;
    }
    const int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connections_->fetch_add(1);
    const uint64_t id = next_id_++;
    auto conn = std::make_unique<Connection>(this, id, std::move(fd), ip, settings_, implicit_tls);
    Connection* raw = conn.get();
    connections_map_.emplace(id, std::move(conn));
    raw->Start();
  }

  void OnTick() {
    const auto now = EventLoop::Clock::now();
    for (auto it = proxied_.begin(); it != proxied_.end();) {
      if (now < it->second->deadline) {
        ++it;
        continue;
      }
      log::Warning("proxy: connection from ", it->second->balancer.ToString(),
                   " closed: no complete PROXY header in time");
      loop_->Remove(it->second->fd.get());
      it = proxied_.erase(it);
    }
    if (drain_deadline_ && now >= *drain_deadline_) {
      for (auto& entry : connections_map_) entry.second->Abort();
    } else {
      for (auto& entry : connections_map_) entry.second->OnTick(now);
    }
    MaybeFinishDrain();
  }

  void MaybeFinishDrain() {
    if (drain_deadline_ && connections_map_.empty()) loop_->Stop();
  }

  const Server::Options& options_;  // owned by the Server, which outlives its workers
  IndexerClient* indexer_;
  std::unique_ptr<SessionMux> mux_;  // this loop's Sessions stream (null: a stream per session)
  AbuseGuard* guard_;
  std::atomic<size_t>* connections_;
  Listener plain_;
  Listener tls_;
  std::shared_ptr<const Settings> settings_;
  std::unique_ptr<EventLoop> loop_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_map_;
  std::unordered_map<uint64_t, std::unique_ptr<Proxied>> proxied_;
  uint64_t next_id_ = 1;
  std::optional<EventLoop::Clock::time_point> drain_deadline_;
};

namespace {

uint16_t BoundPort(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&sa)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Options& options,
                                                      std::shared_ptr<const Settings> settings) {
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->indexer_ = std::make_unique<IndexerClient>(options.indexer);
  server->guard_ = std::make_unique<AbuseGuard>(settings->abuse);
  Endpoint at = options.listen;
  std::optional<Endpoint> tls_at = options.implicit_tls;
  for (int i = 0; i < options.threads; ++i) {
    absl::StatusOr<UniqueFd> fd = Listen(at);
    if (!fd.ok()) return fd.status();
    UniqueFd tls_fd;
    if (tls_at) {
      absl::StatusOr<UniqueFd> t = Listen(*tls_at);
      if (!t.ok()) return t.status();
      tls_fd = std::move(*t);
    }
    if (i == 0) {
      // Port 0: the first bind picks the port; the other workers join it.
      at.port = server->port_ = BoundPort(fd->get());
      if (tls_at) tls_at->port = server->tls_port_ = BoundPort(tls_fd.get());
      if (at.port == 0 || (tls_at && tls_at->port == 0)) return Errno("getsockname");
    }
    auto worker = std::make_unique<Worker>(server->options_, server->indexer_.get(),
                                           server->guard_.get(), &server->connections_,
                                           std::move(*fd), std::move(tls_fd), settings);
    if (absl::Status s = worker->Init(); !s.ok()) return s;
    server->workers_.push_back(std::move(worker));
  }
  for (auto& w : server->workers_) server->threads_.emplace_back([w = w.get()] { w->Run(); });
  return server;
}

void Server::Reload(std::shared_ptr<const Settings> settings) {
  guard_->set_limits(settings->abuse);
  for (auto& w : workers_) {
    Worker* worker = w.get();
    w->loop().Post([worker, settings] { worker->SetSettings(settings); });
  }
}

void Server::Drain(std::chrono::seconds timeout) {
  const auto deadline = EventLoop::Clock::now() + timeout;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    w->loop().Post([worker, deadline] { worker->BeginDrain(deadline); });
  }
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

Server::~Server() {
  for (auto& w : workers_) w->loop().Stop();
  for (std::thread& t : threads_) t.join();
  workers_.clear();
}

}  // namespace poplar::popd
