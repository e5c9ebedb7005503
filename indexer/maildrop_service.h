// gRPC adapter for the Maildrop service (proto/poplar/maildrop.proto) over Indexer.
// Callback API: a Sessions stream costs no thread while its sessions wait for QUIT, so
// thousands of open sessions are thousands of table entries, not thousands of threads. A
// stream carries many sessions (popd: one stream per event loop, or one per session with
// multiplex_sessions: false); their OpenSession and Commit run on a small pool of the
// service's own threads, so that the stream keeps reading while one session's work blocks.
#ifndef POPLAR_INDEXER_MAILDROP_SERVICE_H_
#define POPLAR_INDEXER_MAILDROP_SERVICE_H_

#include <memory>

#include "indexer/indexer.h"
#include "poplar/maildrop.grpc.pb.h"

namespace poplar::indexer {

class MaildropService final : public v1::Maildrop::CallbackService {
 public:
  // `max_sessions_per_stream`: live sessions one Sessions stream may hold.
  // `require_credentials`: refuse an OpenSession that carries no credentials (a password, a SCRAM
  // proof or a challenge digest) with UNAUTHENTICATED. On for every listener whose peers the
  // file permissions of the unix socket do not vouch for (TCP): "already authenticated by the
  // caller" is believed only from a caller the socket let in.
  MaildropService(Indexer* indexer, size_t max_sessions_per_stream, bool require_credentials);
  // Waits for the Sessions streams' running operations (call after the server has shut down).
  ~MaildropService() override;

  grpc::ServerBidiReactor<v1::SessionsRequest, v1::SessionsEvent>* Sessions(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ScramLookup(grpc::CallbackServerContext* ctx,
                                        const v1::ScramLookupRequest* request,
                                        v1::ScramLookupReply* reply) override;

 private:
  class WorkPool;
  Indexer* indexer_;
  size_t max_sessions_per_stream_;
  bool require_credentials_;
  std::unique_ptr<WorkPool> pool_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_MAILDROP_SERVICE_H_
