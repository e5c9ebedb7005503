// gRPC adapter for the Admin service (proto/poplar/admin.proto) over Indexer. Admin calls are
// rare and short, so the synchronous API is enough.
#ifndef POPLAR_INDEXER_ADMIN_SERVICE_H_
#define POPLAR_INDEXER_ADMIN_SERVICE_H_

#include "indexer/indexer.h"
#include "poplar/admin.grpc.pb.h"

namespace poplar::indexer {

class AdminService final : public v1::Admin::Service {
 public:
  explicit AdminService(Indexer* indexer) : indexer_(indexer) {}

  grpc::Status AddAccount(grpc::ServerContext*, const v1::AddAccountRequest*,
                          v1::Account*) override;
  grpc::Status SetPassword(grpc::ServerContext*, const v1::SetPasswordRequest*,
                           v1::Account*) override;
  grpc::Status SetApopSecret(grpc::ServerContext*, const v1::SetApopSecretRequest*,
                             v1::Account*) override;
  grpc::Status RemoveAccount(grpc::ServerContext*, const v1::AccountName*, v1::Empty*) override;
  grpc::Status ListAccounts(grpc::ServerContext*, const v1::Empty*, v1::AccountList*) override;
  grpc::Status ListMailboxes(grpc::ServerContext*, const v1::Empty*, v1::MailboxList*) override;
  grpc::Status ShowMailbox(grpc::ServerContext*, const v1::MailboxName*,
                           v1::MailboxDetail*) override;
  grpc::Status Reindex(grpc::ServerContext*, const v1::ReindexRequest*,
                       grpc::ServerWriter<v1::ReindexProgress>*) override;
  grpc::Status Verify(grpc::ServerContext*, const v1::VerifyRequest*, v1::VerifyReply*) override;
  grpc::Status ListSessions(grpc::ServerContext*, const v1::Empty*, v1::SessionList*) override;
  grpc::Status EndSession(grpc::ServerContext*, const v1::EndSessionRequest*, v1::Empty*) override;
  grpc::Status Status(grpc::ServerContext*, const v1::Empty*, v1::IndexerStatus*) override;

 private:
  Indexer* indexer_;
};

}  // namespace poplar::indexer

#endif  // POPLAR_INDEXER_ADMIN_SERVICE_H_
