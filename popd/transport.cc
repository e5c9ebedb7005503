#include "popd/transport.h"

#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace poplar::popd {
namespace {

std::string OpensslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace

Io PlainTransport::Read(char* buf, size_t cap, size_t* n) {
  const ssize_t r = ::recv(fd_, buf, cap, 0);
  if (r > 0) {
    *n = static_cast<size_t>(r);
    return Io::kDone;
  }
  if (r == 0) return Io::kClosed;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Io::kWantRead;
  return Io::kClosed;  // ECONNRESET and friends: the client is gone
}

Io PlainTransport::Write(const char* buf, size_t len, size_t* n) {
  const ssize_t r = ::send(fd_, buf, len, MSG_NOSIGNAL);
  if (r > 0) {
    *n = static_cast<size_t>(r);
    return Io::kDone;
  }
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return Io::kWantWrite;
  return Io::kError;
}

absl::StatusOr<TlsContext> MakeTlsContext(const config::PopdTls& tls) {
  ERR_clear_error();
  TlsContext ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpensslErrors()));
  const int min = tls.min_version() == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX_set_min_proto_version(ctx.get(), min);
  // No renegotiation (a DoS lever and a source of bugs), the server's cipher order, no
  // compression (CRIME).
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Partial writes and a moving buffer fit the connection's output string; released buffers
  // keep an idle TLS connection small (design §9: 64 KB per idle TLS connection).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx.get(), tls.ciphers().c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("tls.ciphers: ", OpensslErrors()));
  }
  if (SSL_CTX_set_ciphersuites(ctx.get(), tls.ciphersuites().c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("tls.ciphersuites: ", OpensslErrors()));
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.certificate_chain_file().c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls.certificate_chain_file ", tls.certificate_chain_file(), ": ", OpensslErrors()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.private_key_file().c_str(), SSL_FILETYPE_PEM) !=
      1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.private_key_file ", tls.private_key_file(), ": ", OpensslErrors()));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls.private_key_file does not match the certificate: ", OpensslErrors()));
  }
  static constexpr unsigned char kSessionContext[] = "poplar-popd";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof kSessionContext - 1);
  return ctx;
}

absl::StatusOr<std::unique_ptr<TlsTransport>> TlsTransport::Create(TlsContext context, int fd) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context.get());
  if (ssl == nullptr) return absl::InternalError(absl::StrCat("SSL_new: ", OpensslErrors()));
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return absl::InternalError(absl::StrCat("SSL_set_fd: ", OpensslErrors()));
  }
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsTransport>(new TlsTransport(std::move(context), ssl));
}

TlsTransport::~TlsTransport() {
  // A best-effort close_notify; a full bidirectional shutdown would need more event-loop turns
  // for no gain (POP3 framing already tells the client where the data ends).
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  SSL_free(ssl_);
  ERR_clear_error();
}

Io TlsTransport::Classify(int ret) {
  const int err = SSL_get_error(ssl_, ret);
  // The thread's error queue is shared by every connection of this loop: leave it empty.
  ERR_clear_error();
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      return Io::kClosed;  // EOF or reset without close_notify
    default:
      return Io::kError;  // handshake failure, bad record, ...
  }
}

Io TlsTransport::Read(char* buf, size_t cap, size_t* n) {
  ERR_clear_error();
  size_t got = 0;
  const int r = SSL_read_ex(ssl_, buf, cap, &got);
  if (r == 1) {
    *n = got;
    return Io::kDone;
  }
  const Io io = Classify(r);
  return io == Io::kError ? Io::kClosed : io;  // a broken TLS stream ends the input
}

Io TlsTransport::Write(const char* buf, size_t len, size_t* n) {
  ERR_clear_error();
  if (retry_len_ > 0 && retry_len_ <= len) len = retry_len_;
  size_t wrote = 0;
  const int r = SSL_write_ex(ssl_, buf, len, &wrote);
  if (r == 1) {
    retry_len_ = 0;
    *n = wrote;
    return Io::kDone;
  }
  const Io io = Classify(r);
  if (io == Io::kWantRead || io == Io::kWantWrite) {
    retry_len_ = len;
    return io;
  }
  return Io::kError;
}

}  // namespace poplar::popd
