#include "tools/popload/engine.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "common/util/check.h"
#include "common/util/errno_status.h"
#include "tools/popload/proc_stats.h"

namespace poplar::popload {
namespace {

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kClosed:
      return "closed";
    case Phase::kConnecting:
      return "connect";
    case Phase::kHandshake:
      return "tls";
    case Phase::kGreeting:
      return "greeting";
    case Phase::kStls:
      return "stls";
    case Phase::kUser:
      return "user";
    case Phase::kPass:
      return "pass";
    case Phase::kAuth:
      return "auth";
    case Phase::kReady:
      return "ready";
  }
  return "?";
}

std::string ErrnoText(int err, const char* what) {
  return std::string(ErrnoToStatus(err, what).message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const Options& o, SSL_CTX* ctx) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(o.port);
  if (int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError("--host " + o.host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, freeaddrinfo);
  sockaddr_storage addr{};
  std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  if (!ep.valid()) return ErrnoToStatus(errno, "epoll_create1");
  return std::unique_ptr<Engine>(new Engine(o, ctx, std::move(ep), addr, found->ai_addrlen));
}

Engine::Engine(const Options& o, SSL_CTX* ctx, UniqueFd epoll, const sockaddr_storage& addr,
               socklen_t addr_len)
    : o_(o), ctx_(ctx), ep_(std::move(epoll)), addr_(addr), addr_len_(addr_len), buf_(1 << 18) {}

void Engine::Open(Conn& c) {
  Close(c);
  c.t_start = Now();
  c.fd.Reset(::socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.fd.valid()) return Fail(c, ErrnoText(errno, "socket"));
  c.phase = Phase::kConnecting;
  const int one = 1;
  if (::setsockopt(c.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return Fail(c, ErrnoText(errno, "setsockopt TCP_NODELAY"));
  }
  if (::connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&addr_), addr_len_) != 0 &&
      errno != EINPROGRESS) {
    return Fail(c, ErrnoText(errno, "connect"));
  }
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.ptr = &c;
  if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) {
    return Fail(c, ErrnoText(errno, "epoll_ctl ADD"));
  }
  c.events = EPOLLOUT;
}

void Engine::Send(Conn& c, std::string_view command, bool multi, bool keep, long tag) {
  c.out.append(command);
  c.out.append("\r\n");
  c.pending.push_back(Conn::Pending{multi, keep, tag});
  if (!in_event_) Flush(c);
}

void Engine::Close(Conn& c) {
  // Closing the fd takes it out of the epoll set.
  c.ssl.reset();
  c.fd.Reset();
  Reset(c);
}

void Engine::Loop(double deadline, const std::function<bool()>& done) {
  std::vector<epoll_event> events(1024);
  std::vector<uint64_t> gens;
  while (!done()) {
    const double left = deadline - Now();
    if (left <= 0) return;
    const int n = ::epoll_wait(ep_.get(), events.data(), static_cast<int>(events.size()),
                               static_cast<int>(std::min(20.0, left * 1000) + 1));
    if (n < 0) {
      if (errno == EINTR) continue;
      POPLAR_UNREACHABLE("epoll_wait on a valid epoll fd and buffer fails only with EINTR");
    }
    // A callback may close a connection and reopen it on a new socket while later events of
    // this batch still name it: those belong to the old socket and are dropped.
    gens.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
      gens[static_cast<size_t>(i)] = static_cast<Conn*>(events[i].data.ptr)->gen;
    for (int i = 0; i < n; ++i) {
      Conn& c = *static_cast<Conn*>(events[i].data.ptr);
      if (!c.fd.valid() || c.gen != gens[static_cast<size_t>(i)]) continue;
      Handle(c, events[i].events);
    }
  }
}

void Engine::Reset(Conn& c) {
  ++c.gen;
  c.phase = Phase::kClosed;
  c.events = 0;
  c.in.clear();
  c.out.clear();
  c.out_off = 0;
  c.pending.clear();
  c.in_body = false;
  c.body.clear();
}

void Engine::Fail(Conn& c, const std::string& why) {
  const std::string what = std::string(PhaseName(c.phase)) + ": " + why;
  Close(c);
  if (on_error) on_error(c, what);
}

void Engine::Arm(Conn& c, uint32_t events) {
  if (events == c.events || !c.fd.valid()) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &c;
  if (::epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) {
    return Fail(c, ErrnoText(errno, "epoll_ctl MOD"));
  }
  c.events = events;
}

void Engine::Handle(Conn& c, uint32_t events) {
  in_event_ = true;
  const uint64_t gen = c.gen;
  if (c.phase == Phase::kConnecting) {
    Connected(c);
  } else if (c.phase == Phase::kHandshake) {
    Handshake(c);
  } else if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 || c.ssl != nullptr) {
    ReadAll(c);
  }
  if (c.gen == gen && c.fd.valid()) Flush(c);
  in_event_ = false;
}

void Engine::Connected(Conn& c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return Fail(c, std::strerror(err));
  if (o_.tls == TlsMode::kImplicit) return StartTls(c);
  c.phase = Phase::kGreeting;
  c.pending.push_back(Conn::Pending{});
  Arm(c, EPOLLIN);
}

void Engine::StartTls(Conn& c) {
  c.ssl.reset(SSL_new(ctx_));
  if (c.ssl == nullptr || SSL_set_fd(c.ssl.get(), c.fd.get()) != 1) {
    return Fail(c, "TLS set-up: " + SslErrorText("SSL_new"));
  }
  SSL_set_connect_state(c.ssl.get());
  SSL_set_mode(c.ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  c.phase = Phase::kHandshake;
  Handshake(c);
}

void Engine::Handshake(Conn& c) {
  ERR_clear_error();
  const int r = SSL_do_handshake(c.ssl.get());
  if (r == 1) {
    if (o_.tls == TlsMode::kImplicit) {
      c.phase = Phase::kGreeting;
      c.pending.push_back(Conn::Pending{});
    } else {
      StartLogin(c);
    }
    Arm(c, EPOLLIN);
    ReadAll(c);
    return;
  }
  const int e = SSL_get_error(c.ssl.get(), r);
  if (e == SSL_ERROR_WANT_READ) return Arm(c, EPOLLIN);
  if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLIN | EPOLLOUT);
  Fail(c, "handshake: " + SslErrorText("closed"));
}

void Engine::StartLogin(Conn& c) {
  const std::string user = UserFor(o_.user, c.index, o_.users);
  if (o_.auth == AuthMode::kPlain) {
    c.phase = Phase::kAuth;
    Send(c, AuthPlainCommand(user, o_.password), false, false, 0);
  } else {
    c.phase = Phase::kUser;
    Send(c, "USER " + user, false, false, 0);
  }
}

void Engine::ReadAll(Conn& c) {
  const uint64_t gen = c.gen;
  for (;;) {
    ssize_t n;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      const int r = SSL_read(c.ssl.get(), buf_.data(), static_cast<int>(buf_.size()));
      if (r <= 0) {
        const int e = SSL_get_error(c.ssl.get(), r);
        if (e == SSL_ERROR_WANT_READ) return;
        if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLIN | EPOLLOUT);
        return Fail(c, e == SSL_ERROR_ZERO_RETURN ? "closed by server (TLS)"
                                                  : "TLS read: " + SslErrorText("error"));
      }
      n = r;
    } else {
      n = ::read(c.fd.get(), buf_.data(), buf_.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n < 0) return Fail(c, ErrnoText(errno, "read"));
      if (n == 0) return Fail(c, "closed by server");
    }
    Feed(c, buf_.data(), static_cast<size_t>(n));
    if (c.gen != gen || !c.fd.valid()) return;
  }
}

void Engine::Feed(Conn& c, const char* data, size_t len) {
  const uint64_t gen = c.gen;
  const bool from_in = !c.in.empty();
  std::string_view v(data, len);
  if (from_in) {
    c.in.append(data, len);
    v = c.in;
  }
  const size_t pos = Process(c, v);
  if (c.gen != gen) return;
  if (from_in) {
    c.in.erase(0, pos);
  } else {
    c.in.assign(v.data() + pos, v.size() - pos);
  }
  if (!c.in_body && c.in.size() > (1 << 20)) Fail(c, "status line over 1 MB");
}

// Parses complete responses out of v; returns the bytes consumed. Stops at once when a
// callback closed or reopened the connection.
size_t Engine::Process(Conn& c, std::string_view v) {
  const uint64_t gen = c.gen;
  size_t pos = 0;
  while (pos < v.size()) {
    if (c.pending.empty()) {
      Fail(c, "unexpected data from the server");
      return pos;
    }
    const Conn::Pending p = c.pending.front();
    Response r;
    r.tag = p.tag;
    if (!c.in_body) {
      const size_t e = v.find("\r\n", pos);
      if (e == std::string_view::npos) return pos;
      const std::string_view line = v.substr(pos, e - pos);
      pos = e + 2;
      const std::optional<Status> st = ParseStatus(line);
      if (!st) {
        Fail(c, "bad status line '" + std::string(line.substr(0, 60)) + "'");
        return pos;
      }
      if (p.multi && st->ok) {
        c.in_body = true;
        c.status_text.assign(st->text);
        c.decoder.Reset();
        c.body.clear();
        c.wire = 0;
        continue;
      }
      r.ok = st->ok;
      r.text = st->text;
    } else {
      const size_t used = c.decoder.Feed(v.substr(pos), p.keep ? &c.body : nullptr);
      pos += used;
      c.wire += used;
      if (!c.decoder.done()) continue;
      c.in_body = false;
      r.ok = true;
      r.text = c.status_text;
      r.body = p.keep ? &c.body : nullptr;
      r.body_bytes = c.decoder.decoded_bytes();
      r.wire_bytes = c.wire;
      r.lines = c.decoder.lines();
      r.malformed = c.decoder.malformed();
    }
    c.pending.pop_front();
    Deliver(c, r);
    if (c.gen != gen) return pos;
  }
  return pos;
}

// The login's state machine; after it, responses go to the mode.
void Engine::Deliver(Conn& c, const Response& r) {
  switch (c.phase) {
    case Phase::kGreeting:
      if (!r.ok) return Fail(c, "greeting -ERR " + std::string(r.text));
      c.t_greeting = Now();
      if (o_.no_login) {
        c.phase = Phase::kReady;
        c.t_ready = c.t_greeting;
        if (on_ready) on_ready(c);
        return;
      }
      if (o_.tls == TlsMode::kStls) {
        c.phase = Phase::kStls;
        Send(c, "STLS", false, false, 0);
      } else {
        StartLogin(c);
      }
      return;
    case Phase::kStls:
      if (!r.ok) return Fail(c, "-ERR " + std::string(r.text));
      if (!c.in.empty()) return Fail(c, "data after the STLS +OK");
      Flush(c);
      StartTls(c);
      return;
    case Phase::kUser:
      if (!r.ok) return Fail(c, "-ERR " + std::string(r.text));
      c.phase = Phase::kPass;
      Send(c, "PASS " + o_.password, false, false, 0);
      return;
    case Phase::kPass:
    case Phase::kAuth:
      if (!r.ok) return Fail(c, "-ERR " + std::string(r.text));
      c.phase = Phase::kReady;
      c.t_ready = Now();
      if (on_ready) on_ready(c);
      return;
    case Phase::kReady:
      if (on_response) on_response(c, r);
      return;
    case Phase::kClosed:
    case Phase::kConnecting:
    case Phase::kHandshake:
      return Fail(c, "response in an unexpected state");
  }
}

void Engine::Flush(Conn& c) {
  while (c.fd.valid() && c.out_off < c.out.size()) {
    const char* p = c.out.data() + c.out_off;
    const size_t len = c.out.size() - c.out_off;
    if (c.ssl != nullptr) {
      if (c.phase == Phase::kHandshake) return;
      ERR_clear_error();
      const int r = SSL_write(c.ssl.get(), p, static_cast<int>(std::min<size_t>(len, 1 << 30)));
      if (r <= 0) {
        const int e = SSL_get_error(c.ssl.get(), r);
        if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLIN | EPOLLOUT);
        if (e == SSL_ERROR_WANT_READ) return Arm(c, EPOLLIN);
        return Fail(c, "TLS write: " + SslErrorText("error"));
      }
      c.out_off += static_cast<size_t>(r);
    } else {
      const ssize_t n = ::send(c.fd.get(), p, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) return Arm(c, EPOLLIN | EPOLLOUT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Fail(c, ErrnoText(errno, "write"));
      c.out_off += static_cast<size_t>(n);
    }
  }
  if (!c.fd.valid()) return;
  c.out.clear();
  c.out_off = 0;
  if (c.phase != Phase::kHandshake && c.phase != Phase::kConnecting) Arm(c, EPOLLIN);
}

}  // namespace poplar::popload
