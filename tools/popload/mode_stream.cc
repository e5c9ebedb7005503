// stream mode: the loopback limit. A forked peer accepts one connection and writes the file's
// bytes over and over (plain, or TLS with --cert/--key) until --bytes are sent; popload reads
// and discards them. Nothing POP3 about it: what the kernel (and OpenSSL) can move.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/util/errno_status.h"
#include "common/util/unique_fd.h"
#include "tools/popload/mapped_mbox.h"
#include "tools/popload/modes.h"
#include "tools/popload/proc_stats.h"
#include "tools/popload/tls.h"

namespace poplar::popload {
namespace {

// A listening socket on 127.0.0.1, port chosen by the kernel; *addr gets its address.
absl::StatusOr<UniqueFd> Listen(sockaddr_in* addr) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoToStatus(errno, "socket");
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(addr), sizeof *addr) != 0) {
    return ErrnoToStatus(errno, "bind 127.0.0.1:0");
  }
  if (::listen(fd.get(), 1) != 0) return ErrnoToStatus(errno, "listen");
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(addr), &len) != 0) {
    return ErrnoToStatus(errno, "getsockname");
  }
  return fd;
}

// The forked peer: never returns. Exit codes: 0 sent everything, 3 bad certificate or key,
// 4 TLS handshake, 5 write failed, 6 accept failed.
[[noreturn]] void Peer(const Options& o, UniqueFd listener, std::string_view bytes,
                       uint64_t total) {
  const bool tls = o.tls == TlsMode::kImplicit;
  UniqueFd fd(::accept(listener.get(), nullptr, nullptr));
  if (!fd.valid()) _exit(6);
  listener.Reset();
  SslCtxPtr ctx;
  SslPtr ssl;
  if (tls) {
    ctx.reset(SSL_CTX_new(TLS_server_method()));
    if (ctx == nullptr || SSL_CTX_use_certificate_chain_file(ctx.get(), o.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), o.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      _exit(3);
    }
    ssl.reset(SSL_new(ctx.get()));
    if (ssl == nullptr || SSL_set_fd(ssl.get(), fd.get()) != 1 || SSL_accept(ssl.get()) != 1) {
      _exit(4);
    }
  }
  uint64_t sent = 0;
  size_t off = 0;
  while (sent < total) {
    const size_t len =
        std::min<size_t>({size_t{1} << 18, bytes.size() - off, static_cast<size_t>(total - sent)});
    const ssize_t n = tls ? SSL_write(ssl.get(), bytes.data() + off, static_cast<int>(len))
                          : ::write(fd.get(), bytes.data() + off, len);
    if (n < 0 && !tls && errno == EINTR) continue;
    if (n <= 0) _exit(5);
    sent += static_cast<uint64_t>(n);
    off = (off + static_cast<size_t>(n)) % bytes.size();
  }
  if (tls) SSL_shutdown(ssl.get());
  _exit(0);
}

}  // namespace

int RunStream(const Options& o) {
  absl::StatusOr<std::unique_ptr<MappedMbox>> mbox = MappedMbox::Map(o.mbox);
  if (!mbox.ok()) {
    std::fprintf(stderr, "popload: cannot map %s: %s\n", o.mbox.c_str(),
                 mbox.status().ToString().c_str());
    return 2;
  }
  const bool tls = o.tls == TlsMode::kImplicit;
  sockaddr_in addr{};
  absl::StatusOr<UniqueFd> listener = Listen(&addr);
  if (!listener.ok()) {
    std::fprintf(stderr, "popload: %s\n", listener.status().ToString().c_str());
    return 2;
  }
  const uint64_t total = static_cast<uint64_t>(o.stream_bytes);
  const pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "popload: %s\n", ErrnoToStatus(errno, "fork").ToString().c_str());
    return 2;
  }
  if (child == 0) Peer(o, *std::move(listener), (*mbox)->bytes(), total);
  listener->Reset();
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "popload: %s\n", ErrnoToStatus(errno, "connect").ToString().c_str());
    return 2;
  }
  SslCtxPtr ctx;
  SslPtr ssl;
  if (tls) {
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (ctx != nullptr) ssl.reset(SSL_new(ctx.get()));
    if (ssl == nullptr || SSL_set_fd(ssl.get(), fd.get()) != 1 || SSL_connect(ssl.get()) != 1) {
      std::fprintf(stderr, "popload: TLS handshake with the stream peer failed: %s\n",
                   SslErrorText("closed").c_str());
      return 2;
    }
  }
  CpuWindow cpu({});
  std::vector<char> buf(1 << 18);
  uint64_t got = 0;
  double t0 = 0;
  for (;;) {
    const ssize_t n = tls ? SSL_read(ssl.get(), buf.data(), static_cast<int>(buf.size()))
                          : ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && !tls && errno == EINTR) continue;
    if (n <= 0) break;  // the peer is done (or failed: its exit status says which)
    if (got == 0) {
      t0 = Now();
      cpu.Start();
    }
    got += static_cast<uint64_t>(n);
  }
  const double secs = std::max(1e-9, Now() - t0);
  const std::string cpu_text = cpu.Report();
  int status = 0;
  if (::waitpid(child, &status, 0) != child) status = -1;
  const double peer_cpu = ChildrenCpuSeconds();
  std::printf("%s bytes=%llu secs=%.3f MBps=%.1f peer_cpu_pct=%.1f %s\n", Prefix(o).c_str(),
              static_cast<unsigned long long>(got), secs, static_cast<double>(got) / 1e6 / secs,
              100 * peer_cpu / secs, cpu_text.c_str());
  return got >= total && status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

}  // namespace poplar::popload
