#include "popd/indexer_client.h"

#include <utility>

namespace poplar::popd {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

IndexerClient::IndexerClient(const Options& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_snapshot_bytes));
  // Keepalive lets both sides notice a vanished peer: the indexer ends the leases of a dead
  // popd, and popd fails a session whose indexer disappeared instead of waiting forever.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A down indexer must fail logins quickly ([SYS/TEMP]) rather than after a long backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  channel_ = grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::Maildrop::NewStub(channel_);
}

void IndexerClient::ScramLookup(const std::string& user, const std::string& client_address,
                                std::chrono::system_clock::time_point deadline, ScramDone done) {
  struct Call {
    grpc::ClientContext ctx;
    v1::ScramLookupRequest request;
    v1::ScramLookupReply reply;
  };
  auto call = std::make_shared<Call>();
  call->request.set_user(user);
  call->request.set_client_address(client_address);
  call->ctx.set_deadline(deadline);
  // The lambda's copy of `call` keeps context, request and reply alive until gRPC is done. A
  // closed connection does not cancel it: the call is short and bounded by its deadline.
  stub_->async()->ScramLookup(&call->ctx, &call->request, &call->reply,
                              [call, done = std::move(done)](grpc::Status status) {
                                if (!status.ok()) {
                                  done(FromGrpc(status));
                                } else {
                                  done(std::move(call->reply));
                                }
                              });
}

std::shared_ptr<SessionCall> IndexerClient::OpenSession(v1::OpenSession open,
                                                        SessionCall::Handlers handlers) {
  auto call = std::make_shared<SessionCall>();
  call->self_ = call;
  call->handlers_ = std::move(handlers);
  *call->open_.mutable_open() = std::move(open);
  stub_->async()->Session(&call->ctx_, call.get());
  std::lock_guard<std::recursive_mutex> lock(call->mu_);
  call->write_in_flight_ = true;
  call->open_write_pending_ = true;
  call->StartWrite(&call->open_);
  call->StartRead(&call->event_);
  call->StartCall();
  return call;
}

void SessionCall::StartNextWriteLocked() {
  if (write_in_flight_) return;
  if (commit_queued_) {
    commit_queued_ = false;
    write_in_flight_ = true;
    StartWrite(&commit_);
  } else if (writes_done_queued_) {
    writes_done_queued_ = false;
    write_in_flight_ = true;
    StartWritesDone();
  }
}

void SessionCall::Commit(v1::Commit commit) {
  std::function<void(absl::StatusOr<v1::CommitResult>)> fail;
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (phase_ != Phase::kOpen || cancelled_) {
      fail = handlers_.on_commit;
    } else {
      phase_ = Phase::kCommitting;
      *commit_.mutable_commit() = std::move(commit);
      commit_queued_ = true;
      StartNextWriteLocked();
    }
  }
  if (fail) fail(absl::FailedPreconditionError("no open maildrop session to commit"));
}

void SessionCall::Cancel() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  if (cancelled_ || phase_ == Phase::kDone) return;
  cancelled_ = true;
  ctx_.TryCancel();
}

void SessionCall::OnWriteDone(bool ok) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  write_in_flight_ = false;
  if (open_write_pending_) {
    open_write_pending_ = false;
    open_.mutable_open()->clear_password();  // sent: no need to keep the secret around
  }
  // A failed write means the stream is broken; OnDone reports why.
  if (ok) StartNextWriteLocked();
}

void SessionCall::OnReadDone(bool ok) {
  if (!ok) return;  // end of stream: OnDone follows with the status
  std::function<void()> deliver;
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (phase_ == Phase::kOpening && event_.has_snapshot()) {
      phase_ = Phase::kOpen;
      if (!cancelled_) {
        auto snapshot = std::make_shared<v1::Snapshot>(std::move(*event_.mutable_snapshot()));
        deliver = [this, snapshot] { handlers_.on_snapshot(std::move(*snapshot)); };
      }
    } else if (phase_ == Phase::kCommitting && event_.has_committed()) {
      phase_ = Phase::kClosing;
      writes_done_queued_ = true;
      StartNextWriteLocked();
      if (!cancelled_) {
        v1::CommitResult result = event_.committed();
        deliver = [this, result] { handlers_.on_commit(result); };
      }
    } else {
      // An event out of protocol: give up on the stream; OnDone reports it.
      ctx_.TryCancel();
      return;
    }
    event_.Clear();
    StartRead(&event_);
  }
  if (deliver) deliver();
}

void SessionCall::OnDone(const grpc::Status& status) {
  Phase phase;
  bool cancelled;
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    phase = phase_;
    cancelled = cancelled_;
    phase_ = Phase::kDone;
  }
  absl::Status why = FromGrpc(status);
  if (why.ok()) why = absl::UnavailableError("the indexer ended the session stream");
  if (!cancelled) {
    switch (phase) {
      case Phase::kOpening: handlers_.on_snapshot(why); break;
      case Phase::kCommitting: handlers_.on_commit(why); break;
      case Phase::kOpen: handlers_.on_lost(why); break;
      case Phase::kClosing:
      case Phase::kDone: break;
    }
  }
  // Last touch of this object by gRPC: drop the self-reference (the owner may still hold one).
  std::shared_ptr<SessionCall> self = std::move(self_);
}

}  // namespace poplar::popd
