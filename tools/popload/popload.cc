// popload: Poplar's POP3 load generator. One thread, one epoll set, non-blocking sockets,
// OpenSSL for TLS (implicit or STLS), thousands of connections from one core. Every run prints
// one machine-readable "key=value ..." line on stdout (diagnostics go to stderr), including the
// client's own CPU, the CPU of the server process trees given with --server-pid (from /proc,
// the PIDs and all their descendants) and the whole machine's. Modes: see Usage() in
// popload_core.cc. The pure parts (options, response parsing, the multi-line decoder) live in
// popload_core and have unit tests (tests/unit/popload_core_test.cc).
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mbox/scanner.h"
#include "tools/popload/popload_core.h"

namespace poplar::popload {
namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string Fmt(const char* format, double v) {
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

// ------------------------------------------------------------------------------- /proc

std::string ReadText(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The roots and every descendant.
std::vector<int> ProcessTree(const std::vector<int>& roots) {
  std::multimap<int, int> children;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      int pid = std::atoi(e->d_name);
      if (auto st = ParseProcStat(ReadText("/proc/" + std::to_string(pid) + "/stat"))) {
        children.emplace(st->ppid, pid);
      }
    }
    closedir(d);
  }
  std::vector<int> out = roots;
  for (size_t i = 0; i < out.size(); ++i) {
    auto [b, e] = children.equal_range(out[i]);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
  }
  return out;
}

double TreeCpuSeconds(const std::vector<int>& roots) {
  uint64_t ticks = 0;
  for (int pid : ProcessTree(roots)) {
    if (auto st = ParseProcStat(ReadText("/proc/" + std::to_string(pid) + "/stat"))) {
      ticks += st->self_ticks + st->child_ticks;
    }
  }
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct TreeMemory {
  uint64_t rss_kb = 0;
  uint64_t pss_kb = 0;
  int processes = 0;
};

TreeMemory MeasureTree(const std::vector<int>& roots) {
  TreeMemory m;
  for (int pid : ProcessTree(roots)) {
    std::string base = "/proc/" + std::to_string(pid);
    if (auto rss = ParseKbField(ReadText(base + "/status"), "VmRSS")) {
      m.rss_kb += *rss;
      ++m.processes;
    }
    if (auto pss = ParseKbField(ReadText(base + "/smaps_rollup"), "Pss")) m.pss_kb += *pss;
  }
  return m;
}

double SelfCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Busy CPU seconds of the whole machine (all cores) from /proc/stat.
double MachineBusySeconds() {
  std::istringstream is(ReadText("/proc/stat"));
  std::string cpu;
  uint64_t v[8] = {};
  is >> cpu;
  for (uint64_t& x : v) is >> x;
  uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
  return static_cast<double>(busy) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU over a window, in % of one core.
class CpuWindow {
 public:
  explicit CpuWindow(std::vector<int> server) : server_(std::move(server)) {}
  void Start() {
    t0_ = Now();
    self0_ = SelfCpuSeconds();
    server0_ = server_.empty() ? 0 : TreeCpuSeconds(server_);
    machine0_ = MachineBusySeconds();
  }
  std::string Report() const {
    double dt = std::max(1e-9, Now() - t0_);
    std::string s = "client_cpu_pct=" + Fmt("%.1f", 100 * (SelfCpuSeconds() - self0_) / dt);
    s += " server_cpu_pct=" + (server_.empty()
                                   ? std::string("-")
                                   : Fmt("%.1f", 100 * (TreeCpuSeconds(server_) - server0_) / dt));
    s += " machine_busy_pct=" + Fmt("%.1f", 100 * (MachineBusySeconds() - machine0_) / dt);
    return s;
  }

 private:
  std::vector<int> server_;
  double t0_ = 0, self0_ = 0, server0_ = 0, machine0_ = 0;
};

// ------------------------------------------------------------------------------- the mbox

// The file mapped, and each message's bytes as Poplar's scanner splits them (the From_ line
// and the separating empty line excluded): what RETR must return after decoding.
class MappedMbox {
 public:
  ~MappedMbox() {
    if (base_ != nullptr) munmap(const_cast<char*>(base_), size_);
  }
  bool Map(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
      close(fd);
      return false;
    }
    size_ = static_cast<size_t>(st.st_size);
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return false;
    base_ = static_cast<const char*>(p);
    return true;
  }
  void Scan() {
    mbox::ScanOptions options;
    options.final = true;
    options.trust_content_length = false;
    for (const mbox::MessageInfo& m : mbox::ScanMbox(bytes(), 0, options).messages) {
      messages_.push_back(bytes().substr(m.data_offset, m.end_offset - m.data_offset));
    }
  }
  std::string_view bytes() const { return {base_, size_}; }
  const std::vector<std::string_view>& messages() const { return messages_; }

 private:
  const char* base_ = nullptr;
  size_t size_ = 0;
  std::vector<std::string_view> messages_;
};

// ------------------------------------------------------------------------------- the engine

struct Response {
  bool ok = false;
  std::string_view text;              // status text after +OK/-ERR
  const std::string* body = nullptr;  // decoded multi-line body when kept
  uint64_t body_bytes = 0;            // decoded bytes of a multi-line body
  uint64_t wire_bytes = 0;            // bytes on the wire of the body
  uint64_t lines = 0;
  bool malformed = false;
  long tag = 0;
};

struct Pending {
  bool multi = false;
  bool keep = false;
  long tag = 0;
};

enum class Phase {
  kClosed,
  kConnecting,
  kHandshake,
  kGreeting,
  kStls,
  kUser,
  kPass,
  kAuth,
  kReady
};

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

struct Conn {
  int index = 0;
  int fd = -1;
  SSL* ssl = nullptr;
  uint64_t gen = 0;
  Phase phase = Phase::kClosed;
  uint32_t events = 0;
  std::string in;
  std::string out;
  size_t out_off = 0;
  std::deque<Pending> pending;
  bool in_body = false;
  std::string status_text;
  MultilineDecoder decoder;
  uint64_t wire = 0;
  std::string body;
  // Timestamps of this connection's attempt.
  double t_start = 0, t_greeting = 0, t_ready = 0;
  // Mode state.
  int step = 0;
  uint64_t count = 0, next_send = 1, next_recv = 1;
};

class Engine {
 public:
  std::function<void(Conn&)> on_ready;
  std::function<void(Conn&, const Response&)> on_response;
  std::function<void(Conn&, const std::string&)> on_error;  // the conn is already closed

  Engine(const Options& o, SSL_CTX* ctx) : o_(o), ctx_(ctx), buf_(1 << 18) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.port));
    inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
    addr_ = a;
  }
  ~Engine() { close(ep_); }

  void Open(Conn& c) {
    Reset(c);
    c.t_start = Now();
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return Fail(c, std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.phase = Phase::kConnecting;
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 &&
        errno != EINPROGRESS) {
      return Fail(c, std::string("connect: ") + std::strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    c.events = EPOLLOUT;
  }

  // Queues a command; the response is delivered to on_response with `tag`.
  void Send(Conn& c, std::string_view command, bool multi, bool keep, long tag) {
    c.out.append(command);
    c.out.append("\r\n");
    c.pending.push_back(Pending{multi, keep, tag});
    if (!in_event_) Flush(c);
  }

  void Close(Conn& c) {
    if (c.fd >= 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
    }
    if (c.ssl != nullptr) SSL_free(c.ssl);
    Reset(c);
  }

  // Runs until `deadline` or until `done()` returns true (checked every iteration, at least
  // every 20 ms).
  void Loop(double deadline, const std::function<bool()>& done) {
    std::vector<epoll_event> events(1024);
    std::vector<uint64_t> gens;
    while (!done()) {
      double left = deadline - Now();
      if (left <= 0) return;
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                         static_cast<int>(std::min(20.0, left * 1000) + 1));
      // A callback may close a connection and reopen it on a new socket while later events
      // of this batch still name it: those belong to the old socket and are dropped.
      gens.resize(static_cast<size_t>(std::max(n, 0)));
      for (int i = 0; i < n; ++i)
        gens[static_cast<size_t>(i)] = static_cast<Conn*>(events[i].data.ptr)->gen;
      for (int i = 0; i < n; ++i) {
        Conn& c = *static_cast<Conn*>(events[i].data.ptr);
        if (c.fd < 0 || c.gen != gens[static_cast<size_t>(i)]) continue;
        Handle(c, events[i].events);
      }
    }
  }

 private:
  void Reset(Conn& c) {
    c.fd = -1;
    c.ssl = nullptr;
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

  void Fail(Conn& c, const std::string& why) {
    std::string what = std::string(PhaseName(c.phase)) + ": " + why;
    Close(c);
    if (on_error) on_error(c, what);
  }

  void Arm(Conn& c, uint32_t events) {
    if (events == c.events || c.fd < 0) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
    c.events = events;
  }

  void Handle(Conn& c, uint32_t events) {
    in_event_ = true;
    uint64_t gen = c.gen;
    if (c.phase == Phase::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        in_event_ = false;
        return Fail(c, std::strerror(err));
      }
      if (o_.tls == TlsMode::kImplicit) {
        StartTls(c);
      } else {
        c.phase = Phase::kGreeting;
        c.pending.push_back(Pending{});
        Arm(c, EPOLLIN);
      }
    } else if (c.phase == Phase::kHandshake) {
      Handshake(c);
    } else if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 || c.ssl != nullptr) {
      ReadAll(c);
    }
    if (c.gen == gen && c.fd >= 0) Flush(c);
    in_event_ = false;
  }

  void StartTls(Conn& c) {
    c.ssl = SSL_new(ctx_);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c.phase = Phase::kHandshake;
    Handshake(c);
  }

  void Handshake(Conn& c) {
    ERR_clear_error();
    int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      if (o_.tls == TlsMode::kImplicit) {
        c.phase = Phase::kGreeting;
        c.pending.push_back(Pending{});
      } else {
        StartLogin(c);
      }
      Arm(c, EPOLLIN);
      ReadAll(c);
      return;
    }
    int e = SSL_get_error(c.ssl, r);
    if (e == SSL_ERROR_WANT_READ) return Arm(c, EPOLLIN);
    if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLIN | EPOLLOUT);
    char msg[256] = "closed";
    if (unsigned long code = ERR_get_error()) ERR_error_string_n(code, msg, sizeof msg);
    Fail(c, std::string("handshake: ") + msg);
  }

  void StartLogin(Conn& c) {
    std::string user = UserFor(o_.user, c.index, o_.users);
    if (o_.auth == AuthMode::kPlain) {
      c.phase = Phase::kAuth;
      Send(c, AuthPlainCommand(user, o_.password), false, false, 0);
    } else {
      c.phase = Phase::kUser;
      Send(c, "USER " + user, false, false, 0);
    }
  }

  void ReadAll(Conn& c) {
    uint64_t gen = c.gen;
    for (;;) {
      ssize_t n;
      if (c.ssl != nullptr) {
        ERR_clear_error();
        int r = SSL_read(c.ssl, buf_.data(), static_cast<int>(buf_.size()));
        if (r <= 0) {
          int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ) return;
          if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLIN | EPOLLOUT);
          return Fail(c, e == SSL_ERROR_ZERO_RETURN ? "closed by server (TLS)" : "TLS read error");
        }
        n = r;
      } else {
        n = read(c.fd, buf_.data(), buf_.size());
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n < 0) return Fail(c, std::string("read: ") + std::strerror(errno));
        if (n == 0) return Fail(c, "closed by server");
      }
      Feed(c, buf_.data(), static_cast<size_t>(n));
      if (c.gen != gen || c.fd < 0) return;
    }
  }

  void Feed(Conn& c, const char* data, size_t len) {
    uint64_t gen = c.gen;
    bool from_in = !c.in.empty();
    std::string_view v(data, len);
    if (from_in) {
      c.in.append(data, len);
      v = c.in;
    }
    size_t pos = Process(c, v);
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
  size_t Process(Conn& c, std::string_view v) {
    uint64_t gen = c.gen;
    size_t pos = 0;
    while (pos < v.size()) {
      if (c.pending.empty()) {
        Fail(c, "unexpected data from the server");
        return pos;
      }
      if (!c.in_body) {
        size_t e = v.find("\r\n", pos);
        if (e == std::string_view::npos) return pos;
        std::string_view line = v.substr(pos, e - pos);
        pos = e + 2;
        auto st = ParseStatus(line);
        if (!st) {
          Fail(c, "bad status line '" + std::string(line.substr(0, 60)) + "'");
          return pos;
        }
        if (c.pending.front().multi && st->ok) {
          c.in_body = true;
          c.status_text.assign(st->text);
          c.decoder.Reset();
          c.body.clear();
          c.wire = 0;
          continue;
        }
        Pending p = c.pending.front();
        c.pending.pop_front();
        Response r;
        r.ok = st->ok;
        r.text = st->text;
        r.tag = p.tag;
        Deliver(c, r);
      } else {
        const Pending& p = c.pending.front();
        size_t used = c.decoder.Feed(v.substr(pos), p.keep ? &c.body : nullptr);
        pos += used;
        c.wire += used;
        if (!c.decoder.done()) continue;
        c.in_body = false;
        Response r;
        r.ok = true;
        r.text = c.status_text;
        r.body = p.keep ? &c.body : nullptr;
        r.body_bytes = c.decoder.decoded_bytes();
        r.wire_bytes = c.wire;
        r.lines = c.decoder.lines();
        r.malformed = c.decoder.malformed();
        r.tag = p.tag;
        c.pending.pop_front();
        Deliver(c, r);
      }
      if (c.gen != gen) return pos;
    }
    return pos;
  }

  void Deliver(Conn& c, const Response& r) {
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
      default:
        return Fail(c, "response in an unexpected state");
    }
  }

 public:
  void Flush(Conn& c) {
    while (c.fd >= 0 && c.out_off < c.out.size()) {
      const char* p = c.out.data() + c.out_off;
      size_t len = c.out.size() - c.out_off;
      if (c.ssl != nullptr) {
        if (c.phase == Phase::kHandshake) return;
        ERR_clear_error();
        int r = SSL_write(c.ssl, p, static_cast<int>(std::min<size_t>(len, 1 << 30)));
        if (r <= 0) {
          int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_WRITE) return Arm(c, EPOLLIN | EPOLLOUT);
          if (e == SSL_ERROR_WANT_READ) return Arm(c, EPOLLIN);
          return Fail(c, "TLS write error");
        }
        c.out_off += static_cast<size_t>(r);
      } else {
        ssize_t n = send(c.fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) return Arm(c, EPOLLIN | EPOLLOUT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Fail(c, std::string("write: ") + std::strerror(errno));
        c.out_off += static_cast<size_t>(n);
      }
    }
    if (c.fd < 0) return;
    c.out.clear();
    c.out_off = 0;
    if (c.phase != Phase::kHandshake && c.phase != Phase::kConnecting) Arm(c, EPOLLIN);
  }

 private:
  const Options& o_;
  SSL_CTX* ctx_;
  int ep_ = -1;
  sockaddr_in addr_{};
  std::vector<char> buf_;
  bool in_event_ = false;
};

// Counts failures by reason for stderr (the first few reasons verbatim).
class Errors {
 public:
  void Add(const std::string& why) {
    ++total_;
    if (by_reason_.size() < 20 || by_reason_.count(why) != 0) ++by_reason_[why];
  }
  long total() const { return total_; }
  void Print() const {
    for (const auto& [why, n] : by_reason_)
      std::fprintf(stderr, "popload: error x%ld: %s\n", n, why.c_str());
  }

 private:
  long total_ = 0;
  std::map<std::string, long> by_reason_;
};

std::string Prefix(const Options& o) {
  std::string s = std::string("mode=") + ModeName(o.mode);
  if (!o.label.empty()) s += " label=" + o.label;
  s += std::string(" tls=") + TlsName(o.tls);
  return s;
}

// ------------------------------------------------------------------------------- session

int RunSession(const Options& o, SSL_CTX* ctx) {
  Engine engine(o, ctx);
  std::vector<Conn> conns(static_cast<size_t>(o.conns));
  double t0 = Now();
  double measure_from = t0 + o.warmup_s;
  double end = measure_from + o.duration_s;
  bool measuring = o.warmup_s <= 0;
  CpuWindow cpu(o.server_pids);
  std::vector<double> latency;
  long sessions = 0;
  Errors errors;
  auto restart = [&](Conn& c) {
    if (Now() < end) engine.Open(c);
  };
  engine.on_ready = [&](Conn& c) { engine.Send(c, "STAT", false, false, 1); };
  engine.on_response = [&](Conn& c, const Response& r) {
    if (!r.ok) {
      if (measuring)
        errors.Add("-ERR " + std::string(r.text) + " (tag " + std::to_string(r.tag) + ")");
      engine.Close(c);
      return restart(c);
    }
    switch (r.tag) {
      case 1:
        return engine.Send(c, "UIDL", true, false, 2);
      case 2:
        return engine.Send(c, "LIST", true, false, 3);
      case 3:
        return engine.Send(c, "QUIT", false, false, 4);
      default: {
        double t = Now();
        if (measuring && c.t_start >= measure_from && t <= end) {
          ++sessions;
          latency.push_back(t - c.t_start);
        }
        engine.Close(c);
        return restart(c);
      }
    }
  };
  engine.on_error = [&](Conn& c, const std::string& why) {
    if (measuring) errors.Add(why);
    restart(c);
  };
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].index = static_cast<int>(i);
    engine.Open(conns[i]);
  }
  if (!measuring) {
    engine.Loop(measure_from, [] { return false; });
    measuring = true;
  }
  cpu.Start();
  engine.Loop(end, [] { return false; });
  double secs = Now() - measure_from;
  std::string cpu_text = cpu.Report();
  for (Conn& c : conns) engine.Close(c);
  double p50 = Percentile(latency, 0.50) * 1000, p99 = Percentile(latency, 0.99) * 1000;
  std::printf(
      "%s conns=%d secs=%.2f sessions=%ld rate=%.1f p50_ms=%.2f p99_ms=%.2f errors=%ld %s\n",
      Prefix(o).c_str(), o.conns, secs, sessions, static_cast<double>(sessions) / secs, p50, p99,
      errors.total(), cpu_text.c_str());
  errors.Print();
  return sessions > 0 && errors.total() == 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------- download

int RunDownload(const Options& o, SSL_CTX* ctx) {
  MappedMbox mbox;
  if (o.verify) {
    if (!mbox.Map(o.mbox)) {
      std::fprintf(stderr, "popload: cannot map %s\n", o.mbox.c_str());
      return 2;
    }
    mbox.Scan();
  }
  Engine engine(o, ctx);
  std::vector<Conn> conns(static_cast<size_t>(o.conns));
  CpuWindow cpu(o.server_pids);
  Errors errors;
  double first_retr = 0, last_byte = 0;
  uint64_t bytes = 0, wire = 0, messages = 0, exact = 0, mismatch = 0, count_total = 0;
  int finished = 0;
  auto send_more = [&](Conn& c) {
    while (c.next_send <= c.count && c.next_send - c.next_recv < static_cast<uint64_t>(o.window)) {
      engine.Send(c, "RETR " + std::to_string(c.next_send), true, o.verify,
                  static_cast<long>(c.next_send));
      ++c.next_send;
    }
    if (c.next_recv > c.count) engine.Send(c, "QUIT", false, false, -2);
  };
  engine.on_ready = [&](Conn& c) { engine.Send(c, "STAT", false, false, -1); };
  engine.on_response = [&](Conn& c, const Response& r) {
    if (!r.ok) {
      errors.Add("-ERR " + std::string(r.text) + " (tag " + std::to_string(r.tag) + ")");
      if (r.tag < 0) {
        engine.Close(c);
        ++finished;
        return;
      }
      ++c.next_recv;
      return send_more(c);
    }
    if (r.tag == -1) {
      auto stat = ParseStat(r.text);
      if (!stat) {
        errors.Add("bad STAT reply");
        engine.Close(c);
        ++finished;
        return;
      }
      c.count = stat->count;
      count_total += stat->count;
      if (o.verify && stat->count != mbox.messages().size()) {
        errors.Add("STAT says " + std::to_string(stat->count) + " messages, the mbox has " +
                   std::to_string(mbox.messages().size()));
      }
      if (first_retr == 0) first_retr = Now();
      c.next_send = c.next_recv = 1;
      return send_more(c);
    }
    if (r.tag == -2) {
      engine.Close(c);
      ++finished;
      return;
    }
    last_byte = Now();
    ++messages;
    bytes += r.body_bytes;
    wire += r.wire_bytes;
    if (r.malformed) errors.Add("malformed multi-line response");
    if (o.verify) {
      size_t i = static_cast<size_t>(r.tag) - 1;
      std::optional<size_t> diff = i < mbox.messages().size()
                                       ? FirstDifference(*r.body, mbox.messages()[i])
                                       : std::optional<size_t>(0);
      if (diff) {
        if (++mismatch <= 3) {
          std::fprintf(stderr,
                       "popload: RETR %ld differs from the mbox at byte %zu (got %zu bytes)\n",
                       r.tag, *diff, r.body->size());
        }
      } else {
        ++exact;
      }
    }
    ++c.next_recv;
    send_more(c);
  };
  engine.on_error = [&](Conn&, const std::string& why) {
    errors.Add(why);
    ++finished;
  };
  cpu.Start();
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].index = static_cast<int>(i);
    engine.Open(conns[i]);
  }
  double deadline = Now() + o.timeout_s;
  engine.Loop(deadline, [&] { return finished == o.conns; });
  std::string cpu_text = cpu.Report();
  if (finished != o.conns) errors.Add("timeout");
  for (Conn& c : conns) engine.Close(c);
  double secs = std::max(1e-9, last_byte - first_retr);
  std::printf(
      "%s conns=%d window=%d msgs=%llu bytes=%llu wire_bytes=%llu secs=%.3f MBps=%.1f "
      "wire_MBps=%.1f "
      "verify=%s exact=%llu mismatch=%llu errors=%ld %s\n",
      Prefix(o).c_str(), o.conns, o.window, static_cast<unsigned long long>(messages),
      static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(wire), secs,
      static_cast<double>(bytes) / 1e6 / secs, static_cast<double>(wire) / 1e6 / secs,
      o.verify ? "on" : "off", static_cast<unsigned long long>(exact),
      static_cast<unsigned long long>(mismatch), errors.total(), cpu_text.c_str());
  errors.Print();
  bool complete = messages == count_total && count_total > 0;
  return complete && errors.total() == 0 && mismatch == 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------- login

int RunLogin(const Options& o, SSL_CTX* ctx) {
  Engine engine(o, ctx);
  Conn c;
  CpuWindow cpu(o.server_pids);
  Errors errors;
  bool done = false;
  double t_stat = 0, t_uidl = 0, t_list = 0, t_quit = 0;
  uint64_t count = 0, uidl_lines = 0, list_lines = 0;
  engine.on_ready = [&](Conn& conn) { engine.Send(conn, "STAT", false, false, 1); };
  engine.on_response = [&](Conn& conn, const Response& r) {
    if (!r.ok) {
      errors.Add("-ERR " + std::string(r.text));
      engine.Close(conn);
      done = true;
      return;
    }
    switch (r.tag) {
      case 1:
        t_stat = Now();
        if (auto s = ParseStat(r.text)) count = s->count;
        return engine.Send(conn, "UIDL", true, false, 2);
      case 2:
        t_uidl = Now();
        uidl_lines = r.lines;
        return engine.Send(conn, "LIST", true, false, 3);
      case 3:
        t_list = Now();
        list_lines = r.lines;
        return engine.Send(conn, "QUIT", false, false, 4);
      default:
        t_quit = Now();
        engine.Close(conn);
        done = true;
    }
  };
  engine.on_error = [&](Conn&, const std::string& why) {
    errors.Add(why);
    done = true;
  };
  cpu.Start();
  engine.Open(c);
  double t0 = c.t_start;
  engine.Loop(Now() + o.timeout_s, [&] { return done; });
  if (!done) {
    errors.Add("timeout");
    engine.Close(c);
  }
  if (o.expect >= 0 && count != static_cast<uint64_t>(o.expect)) {
    errors.Add("STAT count " + std::to_string(count) + ", expected " + std::to_string(o.expect));
  }
  auto ms = [&](double t) { return t > 0 ? Fmt("%.2f", (t - t0) * 1000) : std::string("-"); };
  auto span = [&](double a, double b) {
    return a > 0 && b > 0 ? Fmt("%.2f", (b - a) * 1000) : std::string("-");
  };
  std::printf(
      "%s count=%llu uidl_lines=%llu list_lines=%llu greet_ms=%s login_ms=%s stat_ms=%s uidl_ms=%s "
      "list_ms=%s quit_ms=%s errors=%ld %s\n",
      Prefix(o).c_str(), static_cast<unsigned long long>(count),
      static_cast<unsigned long long>(uidl_lines), static_cast<unsigned long long>(list_lines),
      ms(c.t_greeting).c_str(), ms(c.t_ready).c_str(), ms(t_stat).c_str(),
      span(t_stat, t_uidl).c_str(), span(t_uidl, t_list).c_str(), span(t_list, t_quit).c_str(),
      errors.total(), cpu.Report().c_str());
  errors.Print();
  return errors.total() == 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------- idle

int RunIdle(const Options& o, SSL_CTX* ctx) {
  Engine engine(o, ctx);
  std::vector<Conn> conns(static_cast<size_t>(o.conns));
  Errors errors;
  TreeMemory before = MeasureTree(o.server_pids);
  CpuWindow cpu(o.server_pids);
  cpu.Start();
  int next = 0, in_flight = 0, opened = 0, settled = 0;
  long answered = 0, alive = 0, closed = 0;
  int stage = 0;  // 0 opening, 1 NOOP, 2 QUIT
  auto open_more = [&] {
    while (in_flight < o.concurrency && next < o.conns) {
      Conn& c = conns[static_cast<size_t>(next)];
      c.index = next++;
      ++in_flight;
      engine.Open(c);
    }
  };
  engine.on_ready = [&](Conn&) {
    ++opened;
    ++settled;
    --in_flight;
    open_more();
  };
  engine.on_response = [&](Conn& c, const Response& r) {
    if (r.tag == 1) {
      ++answered;
      if (r.ok) ++alive;
    } else {
      ++closed;
      engine.Close(c);
    }
  };
  engine.on_error = [&](Conn&, const std::string& why) {
    errors.Add(why);
    if (stage == 0) {
      ++settled;
      --in_flight;
      open_more();
    } else {
      ++answered;
      ++closed;
    }
  };
  double t0 = Now();
  open_more();
  engine.Loop(t0 + o.timeout_s, [&] { return settled == o.conns; });
  double open_secs = Now() - t0;
  engine.Loop(Now() + o.duration_s, [] { return false; });
  TreeMemory after = MeasureTree(o.server_pids);
  stage = 1;
  for (Conn& c : conns) {
    if (c.phase != Phase::kReady) continue;
    // NOOP is for sessions; before login CAPA is the harmless command (RFC 2449).
    if (o.no_login) {
      engine.Send(c, "CAPA", true, false, 1);
    } else {
      engine.Send(c, "NOOP", false, false, 1);
    }
  }
  engine.Loop(Now() + 60, [&] { return answered >= opened; });
  stage = 2;
  for (Conn& c : conns) {
    if (c.phase == Phase::kReady) engine.Send(c, "QUIT", false, false, 2);
  }
  engine.Loop(Now() + 60, [&] { return closed >= opened; });
  for (Conn& c : conns) engine.Close(c);
  double n = std::max(1, opened);
  std::printf(
      "%s login=%s conns=%d opened=%d alive=%ld open_secs=%.2f rss_before_kb=%llu "
      "rss_after_kb=%llu "
      "pss_before_kb=%llu pss_after_kb=%llu procs_before=%d procs_after=%d rss_per_conn_kb=%.1f "
      "pss_per_conn_kb=%.1f errors=%ld %s\n",
      Prefix(o).c_str(), o.no_login ? "no" : "yes", o.conns, opened, alive, open_secs,
      static_cast<unsigned long long>(before.rss_kb), static_cast<unsigned long long>(after.rss_kb),
      static_cast<unsigned long long>(before.pss_kb), static_cast<unsigned long long>(after.pss_kb),
      before.processes, after.processes,
      (static_cast<double>(after.rss_kb) - static_cast<double>(before.rss_kb)) / n,
      (static_cast<double>(after.pss_kb) - static_cast<double>(before.pss_kb)) / n, errors.total(),
      cpu.Report().c_str());
  errors.Print();
  return opened == o.conns && alive == opened && errors.total() == 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------- stream

// The loopback limit: a forked peer accepts one connection and writes the file's bytes over
// and over (plain, or TLS with the given certificate) until --bytes are sent; popload reads
// and discards them. Nothing POP3 about it: what the kernel (and OpenSSL) can move.
int RunStream(const Options& o) {
  MappedMbox mbox;
  if (!mbox.Map(o.mbox)) {
    std::fprintf(stderr, "popload: cannot map %s\n", o.mbox.c_str());
    return 2;
  }
  bool tls = o.tls == TlsMode::kImplicit;
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  socklen_t alen = sizeof a;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
    std::perror("popload: listen");
    return 2;
  }
  uint64_t total = static_cast<uint64_t>(o.stream_bytes);
  pid_t child = fork();
  if (child == 0) {
    int fd = accept(lfd, nullptr, nullptr);
    SSL* ssl = nullptr;
    if (tls) {
      SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
      if (SSL_CTX_use_certificate_chain_file(sctx, o.cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(sctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        _exit(3);
      }
      ssl = SSL_new(sctx);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) _exit(4);
    }
    std::string_view bytes = mbox.bytes();
    uint64_t sent = 0;
    size_t off = 0;
    while (sent < total) {
      size_t len = std::min<size_t>(
          {size_t{1} << 18, bytes.size() - off, static_cast<size_t>(total - sent)});
      ssize_t n = tls ? SSL_write(ssl, bytes.data() + off, static_cast<int>(len))
                      : write(fd, bytes.data() + off, len);
      if (n <= 0) _exit(5);
      sent += static_cast<uint64_t>(n);
      off = (off + static_cast<size_t>(n)) % bytes.size();
    }
    if (tls) SSL_shutdown(ssl);
    close(fd);
    _exit(0);
  }
  close(lfd);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("popload: connect");
    return 2;
  }
  SSL_CTX* cctx = nullptr;
  SSL* ssl = nullptr;
  if (tls) {
    cctx = SSL_CTX_new(TLS_client_method());
    ssl = SSL_new(cctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
      std::fprintf(stderr, "popload: TLS handshake with the stream peer failed\n");
      return 2;
    }
  }
  CpuWindow cpu({});
  std::vector<char> buf(1 << 18);
  uint64_t got = 0;
  double t0 = 0;
  for (;;) {
    ssize_t n = tls ? SSL_read(ssl, buf.data(), static_cast<int>(buf.size()))
                    : read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    if (got == 0) {
      t0 = Now();
      cpu.Start();
    }
    got += static_cast<uint64_t>(n);
  }
  double secs = std::max(1e-9, Now() - t0);
  std::string cpu_text = cpu.Report();
  int status = 0;
  waitpid(child, &status, 0);
  rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  double peer_cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  std::printf("%s bytes=%llu secs=%.3f MBps=%.1f peer_cpu_pct=%.1f %s\n", Prefix(o).c_str(),
              static_cast<unsigned long long>(got), secs, static_cast<double>(got) / 1e6 / secs,
              100 * peer_cpu / secs, cpu_text.c_str());
  if (ssl != nullptr) SSL_free(ssl);
  if (cctx != nullptr) SSL_CTX_free(cctx);
  close(fd);
  return got >= total && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

}  // namespace
}  // namespace poplar::popload

int main(int argc, char** argv) {
  using namespace poplar::popload;
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string error;
  std::optional<Options> o = ParseOptions(args, &error);
  if (!o) {
    std::fprintf(stderr, "popload: %s\n%s", error.c_str(), Usage().c_str());
    return 2;
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (o->mode == Mode::kStream) return RunStream(*o);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(nullptr, SSL_CTX_free);
  if (o->tls != TlsMode::kOff) {
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE,
                       nullptr);  // loopback benchmark peers, self-signed
    SSL_CTX_set_session_cache_mode(ctx.get(),
                                   SSL_SESS_CACHE_OFF);  // every session a full handshake
  }
  switch (o->mode) {
    case Mode::kSession:
      return RunSession(*o, ctx.get());
    case Mode::kDownload:
      return RunDownload(*o, ctx.get());
    case Mode::kLogin:
      return RunLogin(*o, ctx.get());
    case Mode::kIdle:
      return RunIdle(*o, ctx.get());
    case Mode::kStream:
      break;
  }
  return 2;
}
