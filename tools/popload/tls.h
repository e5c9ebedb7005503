// OpenSSL objects with an owner (style P9): SslCtxPtr and SslPtr free on destruction, and the
// one place that reads OpenSSL's error queue into a message.
#ifndef POPLAR_TOOLS_POPLOAD_TLS_H_
#define POPLAR_TOOLS_POPLOAD_TLS_H_

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace poplar::popload {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// The oldest error on this thread's OpenSSL queue as text, or `fallback` when it is empty.
inline std::string SslErrorText(const char* fallback) {
  char msg[256];
  if (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, msg, sizeof msg);
    return msg;
  }
  return fallback;
}

}  // namespace poplar::popload

#endif  // POPLAR_TOOLS_POPLOAD_TLS_H_
