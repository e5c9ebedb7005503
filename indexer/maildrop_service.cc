#include "indexer/maildrop_service.h"

#include <memory>
#include <mutex>
#include <string>

#include "indexer/grpc_status.h"

namespace poplar::indexer {
namespace {

// Lets an admin's EndSession cancel a stream that may be finishing on another thread: the
// reactor clears `ctx` in OnDone, before the context is destroyed.
struct CancelHandle {
  std::mutex mu;
  grpc::CallbackServerContext* ctx = nullptr;
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu);
    if (ctx) ctx->TryCancel();
  }
  void Clear() {
    std::lock_guard<std::mutex> lock(mu);
    ctx = nullptr;
  }
};

// One POP3 session: OpenSession -> Snapshot, [Commit -> CommitResult], half-close -> OK.
// The lease is held from a successful open until OnDone, whatever ends the stream.
class SessionReactor final : public grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionEvent> {
 public:
  SessionReactor(Indexer* indexer, grpc::CallbackServerContext* ctx)
      : indexer_(indexer), cancel_(std::make_shared<CancelHandle>()) {
    cancel_->ctx = ctx;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed or went away
      End(state_ == State::kStart ? grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                    "stream closed before OpenSession")
                                     : grpc::Status::OK);
      return;
    }
    switch (state_) {
      case State::kStart: {
        if (!request_.has_open()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, "OpenSession first");
        std::weak_ptr<CancelHandle> handle = cancel_;
        // A PAM login finishes on a PAM thread (no operation of this stream is pending
        // meanwhile, so the reactor stays alive); any other login finishes before this returns.
        indexer_->OpenSessionAsync(
            request_.open(),
            [handle] {
              if (auto h = handle.lock()) h->Cancel();
            },
            [this](absl::StatusOr<Indexer::Opened> opened) {
              if (!opened.ok()) return End(ToGrpcStatus(opened.status()));
              session_id_ = opened->lease.session_id;
              *event_.mutable_snapshot() = std::move(opened->snapshot);
              state_ = State::kOpen;
              StartWrite(&event_);
            });
        return;
      }
      case State::kOpen: {
        if (!request_.has_commit()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, "expected Commit");
        absl::StatusOr<v1::CommitResult> r = indexer_->Commit(session_id_, request_.commit());
        if (!r.ok()) return End(ToGrpcStatus(r.status()));
        event_.Clear();
        *event_.mutable_committed() = *r;
        state_ = State::kCommitted;
        // The session is over once committed: the lease ends before the front-end can answer
        // QUIT, so the client's next login never finds its own finished session [IN-USE].
        ReleaseLease();
        StartWrite(&event_);
        return;
      }
      case State::kCommitted:
        return Fail(grpc::StatusCode::INVALID_ARGUMENT, "nothing may follow Commit");
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return End(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    event_.Clear();
    request_.Clear();
    StartRead(&request_);
  }

  void OnDone() override {
    cancel_->Clear();
    ReleaseLease();  // if the stream ended without End() (cancelled while idle)
    delete this;
  }

 private:
  enum class State { kStart, kOpen, kCommitted };
  // The lease ends before the final status leaves, so a client that logs in again right after
  // QUIT never sees its own old session as [IN-USE].
  void End(const grpc::Status& status) {
    ReleaseLease();
    Finish(status);
  }
  void ReleaseLease() {
    if (!session_id_.empty()) indexer_->CloseSession(session_id_);
    session_id_.clear();
  }
  void Fail(grpc::StatusCode code, const char* why) { End(grpc::Status(code, why)); }

  Indexer* indexer_;
  std::shared_ptr<CancelHandle> cancel_;
  State state_ = State::kStart;
  std::string session_id_;
  v1::SessionRequest request_;
  v1::SessionEvent event_;
};

}  // namespace

grpc::ServerUnaryReactor* MaildropService::Authenticate(grpc::CallbackServerContext* ctx,
                                                        const v1::AuthenticateRequest* request,
                                                        v1::AuthenticateReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // A PAM check answers from a PAM thread; `reply` lives until Finish.
  indexer_->AuthenticateAsync(request->user(), request->password(), /*client_address=*/"",
                              [reactor, reply](absl::StatusOr<std::string> user) {
                                if (user.ok()) reply->set_user(*user);
                                reactor->Finish(ToGrpcStatus(user.status()));
                              });
  return reactor;
}

grpc::ServerUnaryReactor* MaildropService::ScramLookup(grpc::CallbackServerContext* ctx,
                                                       const v1::ScramLookupRequest* request,
                                                       v1::ScramLookupReply* reply) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<v1::ScramLookupReply> r = indexer_->ScramLookup(request->user());
  if (r.ok()) *reply = std::move(*r);
  reactor->Finish(ToGrpcStatus(r.status()));
  return reactor;
}

grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionEvent>* MaildropService::Session(
    grpc::CallbackServerContext* ctx) {
  return new SessionReactor(indexer_, ctx);
}

}  // namespace poplar::indexer
