#include "indexer/admin_service.h"

#include "indexer/grpc_status.h"

namespace poplar::indexer {
namespace {

template <typename T>
grpc::Status Reply(absl::StatusOr<T> r, T* out) {
  if (r.ok()) *out = std::move(*r);
  return ToGrpcStatus(r.status());
}

}  // namespace

grpc::Status AdminService::AddAccount(grpc::ServerContext*, const v1::AddAccountRequest* req,
                                      v1::Account* out) {
  return Reply(indexer_->AddAccount(*req), out);
}

grpc::Status AdminService::SetApopSecret(grpc::ServerContext*, const v1::SetApopSecretRequest* req,
                                         v1::Account* out) {
  return Reply(indexer_->SetApopSecret(*req), out);
}

grpc::Status AdminService::SetPassword(grpc::ServerContext*, const v1::SetPasswordRequest* req,
                                       v1::Account* out) {
  return Reply(indexer_->SetPassword(*req), out);
}

grpc::Status AdminService::RemoveAccount(grpc::ServerContext*, const v1::AccountName* req,
                                         v1::Empty*) {
  return ToGrpcStatus(indexer_->RemoveAccount(req->user()));
}

grpc::Status AdminService::ListAccounts(grpc::ServerContext*, const v1::Empty*,
                                        v1::AccountList* out) {
  return Reply(indexer_->ListAccounts(), out);
}

grpc::Status AdminService::ListMailboxes(grpc::ServerContext*, const v1::Empty*,
                                         v1::MailboxList* out) {
  return Reply(indexer_->ListMailboxes(), out);
}

grpc::Status AdminService::ShowMailbox(grpc::ServerContext*, const v1::MailboxName* req,
                                       v1::MailboxDetail* out) {
  return Reply(indexer_->ShowMailbox(req->path(), req->first(), req->limit()), out);
}

grpc::Status AdminService::Reindex(grpc::ServerContext* ctx, const v1::ReindexRequest* req,
                                   grpc::ServerWriter<v1::ReindexProgress>* writer) {
  absl::Status s = indexer_->Reindex(req->path(), [&](const v1::ReindexProgress& p) {
    if (!ctx->IsCancelled()) writer->Write(p);
  });
  return ToGrpcStatus(s);
}

grpc::Status AdminService::Verify(grpc::ServerContext*, const v1::VerifyRequest* req,
                                  v1::VerifyReply* out) {
  return Reply(indexer_->Verify(req->path()), out);
}

grpc::Status AdminService::ListSessions(grpc::ServerContext*, const v1::Empty*,
                                        v1::SessionList* out) {
  *out = indexer_->ListSessions();
  return grpc::Status::OK;
}

grpc::Status AdminService::EndSession(grpc::ServerContext*, const v1::EndSessionRequest* req,
                                      v1::Empty*) {
  return ToGrpcStatus(indexer_->EndSession(req->session_id()));
}

grpc::Status AdminService::Status(grpc::ServerContext*, const v1::Empty*, v1::IndexerStatus* out) {
  return Reply(indexer_->Status(), out);
}

}  // namespace poplar::indexer
