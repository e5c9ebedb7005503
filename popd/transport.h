// The byte pipe under a connection: the socket itself, or TLS over it (OpenSSL, RFC 8314
// implicit TLS or after STLS). Both are non-blocking; a call that cannot progress says which
// readiness it waits for, so the event loop arms the right epoll events (TLS may need the
// socket readable to write, during a handshake or a key update, and writable to read).
#ifndef POPLAR_POPD_TRANSPORT_H_
#define POPLAR_POPD_TRANSPORT_H_

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"
#include "poplar/popd_config.pb.h"

namespace poplar::popd {

enum class Io {
  kDone,       // *n bytes moved (> 0)
  kWantRead,   // try again when the socket is readable
  kWantWrite,  // try again when the socket is writable
  kClosed,     // the peer closed (reads only)
  kError,      // broken: close the connection
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual Io Read(char* buf, size_t cap, size_t* n) = 0;
  // After kWantRead/kWantWrite the next Write must pass at least the same bytes again (TLS
  // records are built from them); passing more is fine.
  virtual Io Write(const char* buf, size_t len, size_t* n) = 0;
  // Decrypted bytes already held inside the transport: epoll will not announce them.
  virtual bool HasBufferedInput() const { return false; }
  virtual bool encrypted() const { return false; }
};

// The socket (not owned).
class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int fd) : fd_(fd) {}
  Io Read(char* buf, size_t cap, size_t* n) override;
  Io Write(const char* buf, size_t len, size_t* n) override;

 private:
  int fd_;
};

using TlsContext = std::shared_ptr<SSL_CTX>;

// A server context from the configuration: TLS 1.2 minimum (or 1.3), no renegotiation, the
// configured ciphers, chain and key checked to belong together. InvalidArgument with the file
// and OpenSSL's reason otherwise.
absl::StatusOr<TlsContext> MakeTlsContext(const config::PopdTls& tls);

// Server side of TLS on the socket `fd` (not owned). The handshake runs inside the first
// Read/Write calls. Keeps `context` alive for its life.
class TlsTransport final : public Transport {
 public:
  static absl::StatusOr<std::unique_ptr<TlsTransport>> Create(TlsContext context, int fd);
  ~TlsTransport() override;

  Io Read(char* buf, size_t cap, size_t* n) override;
  Io Write(const char* buf, size_t len, size_t* n) override;
  bool HasBufferedInput() const override { return SSL_pending(ssl_) > 0; }
  bool encrypted() const override { return true; }

 private:
  TlsTransport(TlsContext context, SSL* ssl) : context_(std::move(context)), ssl_(ssl) {}
  Io Classify(int ret);

  TlsContext context_;
  SSL* ssl_;
  size_t retry_len_ = 0;  // length of a Write that must be repeated
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_TRANSPORT_H_
