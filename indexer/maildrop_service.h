// gRPC adapter for the Maildrop service (proto/poplar/maildrop.proto) over Indexer.
// Callback API: a POP3 session's stream costs no thread while it waits for QUIT, so thousands
// of open sessions are thousands of small objects, not thousands of threads.
#ifndef POPLAR_INDEXER_MAILDROP_SERVICE_H_
#define POPLAR_INDEXER_MAILDROP_SERVICE_H_

#include "indexer/indexer.h"
#include "poplar/maildrop.grpc.pb.h"

namespace poplar::indexer {

class MaildropService final : public v1::Maildrop::CallbackService {
 public:
  explicit MaildropService(Indexer* indexer) : indexer_(indexer) {}

  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* ctx,
                                         const v1::AuthenticateRequest* request,
                                         v1::AuthenticateReply* reply) override;
  grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionEvent>* Session(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ScramLookup(grpc::CallbackServerContext* ctx,
                                        const v1::ScramLookupRequest* request,
                                        v1::ScramLookupReply* reply) override;

 private:
  Indexer* indexer_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_MAILDROP_SERVICE_H_
