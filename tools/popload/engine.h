// popload's engine: one thread, one epoll set, non-blocking sockets and OpenSSL (implicit TLS
// or STLS), thousands of POP3 connections from one core. It connects (IPv4 or IPv6: --host goes
// through getaddrinfo), logs in (USER/PASS or AUTH PLAIN, or stops after the greeting with
// --no-login), pipelines commands and parses their responses (multi-line bodies decoded on the
// fly by popload_core's MultilineDecoder). What to send after the login is the mode's business:
// it gets on_ready, then on_response per command, or on_error when the connection failed.
#ifndef POPLAR_TOOLS_POPLOAD_ENGINE_H_
#define POPLAR_TOOLS_POPLOAD_ENGINE_H_

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/util/unique_fd.h"
#include "tools/popload/popload_core.h"
#include "tools/popload/tls.h"

namespace poplar::popload {

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

// One connection slot. The engine reuses it across reconnects (`gen` tells the attempts apart);
// the mode's fields at the end are for the mode to use.
struct Conn {
  struct Pending {
    bool multi = false;
    bool keep = false;
    long tag = 0;
  };
  int index = 0;  // picks the user name (Options::user)
  UniqueFd fd;
  SslPtr ssl;
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
  uint64_t count = 0, next_send = 1, next_recv = 1;
};

class Engine {
 public:
  std::function<void(Conn&)> on_ready;
  std::function<void(Conn&, const Response&)> on_response;
  std::function<void(Conn&, const std::string&)> on_error;  // the conn is already closed

  // Resolves --host/--port (the first address getaddrinfo gives) and makes the epoll set.
  // `ctx` (TLS modes) must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const Options& o, SSL_CTX* ctx);

  // Starts connecting `c` (closing whatever it had). Failures arrive through on_error.
  void Open(Conn& c);
  // Queues a command; the response is delivered to on_response with `tag`. `multi`: a
  // multi-line response on +OK; `keep`: keep its decoded body (Response::body).
  void Send(Conn& c, std::string_view command, bool multi, bool keep, long tag);
  void Close(Conn& c);
  // Runs until `deadline` or until `done()` returns true (checked every iteration, at least
  // every 20 ms).
  void Loop(double deadline, const std::function<bool()>& done);

 private:
  Engine(const Options& o, SSL_CTX* ctx, UniqueFd epoll, const sockaddr_storage& addr,
         socklen_t addr_len);
  void Reset(Conn& c);
  void Fail(Conn& c, const std::string& why);
  void Arm(Conn& c, uint32_t events);
  void Handle(Conn& c, uint32_t events);
  void Connected(Conn& c);
  void StartTls(Conn& c);
  void Handshake(Conn& c);
  void StartLogin(Conn& c);
  void ReadAll(Conn& c);
  void Feed(Conn& c, const char* data, size_t len);
  size_t Process(Conn& c, std::string_view v);
  void Deliver(Conn& c, const Response& r);
  void Flush(Conn& c);

  const Options& o_;
  SSL_CTX* ctx_;
  UniqueFd ep_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  std::vector<char> buf_;
  bool in_event_ = false;
};

}  // namespace poplar::popload

#endif  // POPLAR_TOOLS_POPLOAD_ENGINE_H_
