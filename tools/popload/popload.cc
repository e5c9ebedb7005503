// popload: Poplar's POP3 load generator. One thread, one epoll set, non-blocking sockets,
// OpenSSL for TLS (implicit or STLS), thousands of connections from one core. Every run prints
// one machine-readable "key=value ..." line on stdout (diagnostics go to stderr), including the
// client's own CPU, the CPU of the server process trees given with --server-pid (from /proc,
// the PIDs and all their descendants) and the whole machine's. Modes: see Usage() in
// popload_core.cc.
//
// The parts: popload_core (pure: options, response parsing, the multi-line decoder; unit
// tests in tests/unit/popload_core_test.cc), engine (connections, TLS, login, pipelining),
// proc_stats (/proc and getrusage), mapped_mbox (the reference mbox), modes + mode_*.cc (one
// file per mode), and this main().
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tools/popload/modes.h"
#include "tools/popload/popload_core.h"
#include "tools/popload/tls.h"

namespace poplar::popload {
namespace {

// Thousands of connections: as many descriptors as the hard limit allows.
void RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) std::perror("popload: setrlimit RLIMIT_NOFILE");
}

// The client context of the TLS modes: loopback benchmark peers with self-signed
// certificates (no verification), and every session a full handshake (no session cache).
SslCtxPtr ClientContext() {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    std::fprintf(stderr, "popload: TLS client context: %s\n", SslErrorText("failed").c_str());
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

int Run(const Options& o) {
  if (o.mode == Mode::kStream) return RunStream(o);
  SslCtxPtr ctx;
  if (o.tls != TlsMode::kOff) {
    ctx = ClientContext();
    if (ctx == nullptr) return 2;
  }
  switch (o.mode) {
    case Mode::kSession:
      return RunSession(o, ctx.get());
    case Mode::kDownload:
      return RunDownload(o, ctx.get());
    case Mode::kLogin:
      return RunLogin(o, ctx.get());
    case Mode::kIdle:
      return RunIdle(o, ctx.get());
    case Mode::kStream:
      break;
  }
  return 2;
}

}  // namespace
}  // namespace poplar::popload

int main(int argc, char** argv) {
  using namespace poplar::popload;
  if (::signal(SIGPIPE, SIG_IGN) == SIG_ERR) std::perror("popload: signal SIGPIPE");
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::string error;
  const std::optional<Options> o = ParseOptions(args, &error);
  if (!o) {
    std::fprintf(stderr, "popload: %s\n%s", error.c_str(), Usage().c_str());
    return 2;
  }
  RaiseFdLimit();
  return Run(*o);
}
