#include "popd/indexer_client.h"

#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/util/happens_before.h"
#include "common/util/log.h"
#include "popd/session_demux.h"

namespace poplar::popd {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

CallTracker::Token CallTracker::Enter() {
  std::lock_guard<std::mutex> lock(mu_);
  ++in_flight_;
  return Token(this, [](void* p) {
    auto* self = static_cast<CallTracker*>(p);
    std::lock_guard<std::mutex> released(self->mu_);
    if (--self->in_flight_ == 0) self->idle_.notify_all();
  });
}

bool CallTracker::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_for(lock, timeout, [this] { return in_flight_ == 0; });
}

IndexerClient::~IndexerClient() {
  // The longest a call can still run: a ScramLookup's deadline (the login timeout) or a
  // cancelled stream's last callback.
  if (calls_.WaitIdle(std::chrono::seconds(15))) return;
  log::Warning("indexer client: calls still in flight at shutdown; their channel is left open");
  new std::shared_ptr<grpc::Channel>(std::move(channel_));  // deliberately never freed
  stub_.release();                                          // uses the channel
}

IndexerClient::IndexerClient(const Options& options)
    : multiplex_sessions_(options.multiplex_sessions) {
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
    CallTracker::Token in_flight;  // first: released after ctx
    grpc::ClientContext ctx;
    v1::ScramLookupRequest request;
    v1::ScramLookupReply reply;
  };
  auto call = std::make_shared<Call>();
  call->in_flight = calls_.Enter();
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

// ---------------------------------------------------------------- SessionMux

namespace {

// A session whose stream ended as it was being opened: on_snapshot already reported it.
class FailedCall final : public SessionCall {
 public:
  explicit FailedCall(SessionCall::Handlers handlers) : handlers_(std::move(handlers)) {}
  void Commit(v1::Commit) override {
    handlers_.on_commit(absl::FailedPreconditionError("no open maildrop session to commit"));
  }
  void Cancel() override {}

 private:
  SessionCall::Handlers handlers_;
};

absl::Status EventError(const v1::SessionError& e) {
  absl::StatusCode code = static_cast<absl::StatusCode>(e.code());
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;  // an error is never OK
  return absl::Status(code, e.message());
}

}  // namespace

// One Sessions stream and the sessions on it, by tag (SessionDemux keeps their phases). Kept
// alive by itself until gRPC's OnDone, and by its calls while they exist.
class SessionMux::Stream final
    : public grpc::ClientBidiReactor<v1::SessionsRequest, v1::SessionsEvent>,
      public std::enable_shared_from_this<Stream> {
 public:
  // One session on the stream.
  class Call final : public SessionCall {
   public:
    Call(std::shared_ptr<Stream> stream, uint64_t tag, Handlers handlers)
        : stream_(std::move(stream)), tag_(tag), handlers_(std::move(handlers)) {}
    void Commit(v1::Commit commit) override { stream_->Commit(tag_, handlers_, std::move(commit)); }
    void Cancel() override { stream_->Cancel(tag_); }
    void Alive() override { stream_->Alive(tag_); }

   private:
    friend class Stream;
    std::shared_ptr<Stream> stream_;
    const uint64_t tag_;
    Handlers handlers_;
  };

  static std::shared_ptr<Stream> Start(IndexerClient& client) {
    auto stream = std::make_shared<Stream>();
    stream->in_flight_ = client.calls().Enter();
    stream->self_ = stream;
    client.stub().async()->Sessions(&stream->ctx_, stream.get());
    // Writes start from outside the reactions (the loops' Open/Commit/Cancel): the hold keeps
    // gRPC from finishing the call under such a StartWrite. Released when the read fails.
    stream->AddHold();
    HappensBefore(stream.get());
    stream->StartRead(&stream->event_);
    stream->StartCall();
    return stream;
  }

  // Ended, or ending (its read or a write failed): a new session needs a new stream.
  bool Dead() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_ || release_wanted_ || broken_;
  }

  std::shared_ptr<SessionCall> Open(v1::OpenSession open, SessionCall::Handlers handlers) {
    std::shared_ptr<Call> call;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!done_) {
        const uint64_t tag = demux_.Open();
        call = std::make_shared<Call>(shared_from_this(), tag, std::move(handlers));
        calls_.emplace(tag, call);
        v1::SessionsRequest request;
        request.set_tag(tag);
        *request.mutable_open() = std::move(open);
        request.mutable_open()->set_answers_probes(true);  // Handlers::on_probe, or Alive at once
        EnqueueLocked(std::move(request));
      }
    }
    if (!call) {  // died just now
      handlers.on_snapshot(absl::UnavailableError("the indexer ended the session stream"));
      return std::make_shared<FailedCall>(std::move(handlers));
    }
    WriteIfIdle();
    return call;
  }

  void Shutdown() { ctx_.TryCancel(); }

  void OnWriteDone(bool ok) override {
    Reaction reaction(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) {  // the stream is broken; OnDone reports why
        broken_ = true;
        out_.clear();
        return;
      }
      out_.pop_front();  // the OpenSession with the password goes with it
    }
    WriteIfIdle();
  }

  void OnReadDone(bool ok) override {
    Reaction reaction(this);
    if (!ok) {  // end of stream: OnDone follows with the status, once the hold is gone
      bool release = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        release_wanted_ = true;
        release = external_writes_ == 0 && !hold_released_;
        hold_released_ = hold_released_ || release;
      }
      if (release) RemoveHold();
      return;
    }
    std::function<void()> deliver;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t tag = event_.tag();
      SessionDemux::Outcome outcome;
      switch (event_.kind_case()) {
        case v1::SessionsEvent::kSnapshot:
          outcome = demux_.OnSnapshot(tag);
          break;
        case v1::SessionsEvent::kCommitted:
          outcome = demux_.OnCommitted(tag);
          break;
        case v1::SessionsEvent::kError:
          outcome = demux_.OnError(tag, EventError(event_.error()));
          break;
        case v1::SessionsEvent::kProbe:
          outcome = demux_.OnProbe(tag);
          break;
        case v1::SessionsEvent::KIND_NOT_SET:
          outcome = demux_.OnUnknownEvent(tag);
          break;
      }
      deliver = TakeLocked(tag, std::move(outcome));
      event_.Clear();
    }
    HappensBefore(this);
    StartRead(&event_);
    WriteIfIdle();
    if (deliver) deliver();
  }

  void OnDone(const grpc::Status& status) override {
    HappensAfter(this);  // every reaction and Start* came before (gRPC's promise)
    std::vector<std::function<void()>> deliver;
    absl::Status why = FromGrpc(status);
    if (why.ok()) why = absl::UnavailableError("the indexer ended the session stream");
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      for (auto& [tag, outcome] : demux_.EndAll(why))
        deliver.push_back(TakeLocked(tag, std::move(outcome)));
      calls_.clear();
    }
    for (auto& d : deliver) d();
    // Last touch by gRPC: drop the self-reference (the mux and the calls may still hold one).
    std::shared_ptr<Stream> self = std::move(self_);
  }

 private:
  // Carries out an outcome for `tag`: the Close it needs, and the handler call to make once
  // mu_ is released (event_ must still hold the event).
  std::function<void()> TakeLocked(uint64_t tag, SessionDemux::Outcome outcome) {
    using Report = SessionDemux::Report;
    auto it = calls_.find(tag);
    if (outcome.report == Report::kNone || it == calls_.end()) return nullptr;
    std::shared_ptr<Call> call = it->second;
    if (outcome.ends()) calls_.erase(it);
    if (outcome.send_close) {
      v1::SessionsRequest close;
      close.set_tag(tag);
      close.mutable_close();
      EnqueueLocked(std::move(close));
    }
    const absl::Status why = outcome.status;
    switch (outcome.report) {
      case Report::kSnapshot: {
        auto snapshot = std::make_shared<v1::Snapshot>(std::move(*event_.mutable_snapshot()));
        return [call, snapshot] { call->handlers_.on_snapshot(std::move(*snapshot)); };
      }
      case Report::kCommitted: {
        v1::CommitResult result = event_.committed();
        return [call, result] { call->handlers_.on_commit(result); };
      }
      case Report::kSnapshotFailed:
        return [call, why] { call->handlers_.on_snapshot(why); };
      case Report::kCommitFailed:
        return [call, why] { call->handlers_.on_commit(why); };
      case Report::kLost:
        return [call, why] { call->handlers_.on_lost(why); };
      case Report::kProbe:
        if (!call->handlers_.on_probe) return [call] { call->Alive(); };
        return [call] { call->handlers_.on_probe(); };
      case Report::kNone:
        break;
    }
    return nullptr;
  }

  void Commit(uint64_t tag, const SessionCall::Handlers& handlers, v1::Commit commit) {
    bool refused = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_ || !demux_.Commit(tag)) {
        refused = true;
      } else {
        v1::SessionsRequest request;
        request.set_tag(tag);
        *request.mutable_commit() = std::move(commit);
        EnqueueLocked(std::move(request));
      }
    }
    if (refused) {
      handlers.on_commit(absl::FailedPreconditionError("no open maildrop session to commit"));
      return;
    }
    WriteIfIdle();
  }

  void Cancel(uint64_t tag) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.erase(tag);
      if (!demux_.Cancel(tag) || done_) return;
      v1::SessionsRequest request;
      request.set_tag(tag);
      request.mutable_close();
      EnqueueLocked(std::move(request));
    }
    WriteIfIdle();
  }

  void Alive(uint64_t tag) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_ || !demux_.Alive(tag)) return;
      v1::SessionsRequest request;
      request.set_tag(tag);
      request.mutable_alive();
      EnqueueLocked(std::move(request));
    }
    WriteIfIdle();
  }

  void EnqueueLocked(v1::SessionsRequest request) {
    if (!broken_) out_.push_back(std::move(request));
  }

  // Starts the next write unless one is outstanding. StartWrite runs outside mu_ (gRPC may
  // run OnWriteDone inline) but inside the hold: the read's failure releases the hold only
  // when no StartWrite is under way.
  void WriteIfIdle() {
    const v1::SessionsRequest* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || out_.empty() || done_ || broken_ || hold_released_) return;
      writing_ = true;
      next = &out_.front();  // a deque: stays put while others are queued behind it
      ++external_writes_;
    }
    HappensBefore(this);
    StartWrite(next);
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      release = --external_writes_ == 0 && release_wanted_ && !hold_released_;
      hold_released_ = hold_released_ || release;
    }
    if (release) RemoveHold();
  }

  CallTracker::Token in_flight_;  // first: released after ctx_ is gone
  grpc::ClientContext ctx_;
  std::mutex mu_;
  v1::SessionsEvent event_;
  std::deque<v1::SessionsRequest> out_;  // front: being written while writing_
  bool writing_ = false;
  bool broken_ = false;
  bool done_ = false;
  int external_writes_ = 0;      // WriteIfIdle calls inside StartWrite now
  bool release_wanted_ = false;  // the read failed: the hold may go
  bool hold_released_ = false;
  SessionDemux demux_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Call>> calls_;  // the live tags' handlers
  std::shared_ptr<Stream> self_;                                // until OnDone
};

SessionMux::~SessionMux() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_) stream_->Shutdown();
}

std::shared_ptr<SessionCall> SessionMux::OpenSession(v1::OpenSession open,
                                                     SessionCall::Handlers handlers) {
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_ && stream_->Dead()) stream_.reset();
    if (!stream_) stream_ = Stream::Start(*client_);
    stream = stream_;
  }
  return stream->Open(std::move(open), std::move(handlers));
}

// ---------------------------------------------------------------- a stream per session

namespace {

// A session alone on its Sessions stream (multiplex_sessions: false). The stream ends with the
// session: a Cancel, or the owner letting the call go (the stream would otherwise stay open,
// idle, until the indexer restarts).
class SoloCall final : public SessionCall {
 public:
  SoloCall(std::shared_ptr<SessionMux::Stream> stream, std::shared_ptr<SessionCall> call)
      : stream_(std::move(stream)), call_(std::move(call)) {}
  ~SoloCall() override { Cancel(); }
  void Commit(v1::Commit commit) override { call_->Commit(std::move(commit)); }
  // The close first (no handler runs after it), then the stream, which ends the lease even if
  // the close is never written.
  void Cancel() override {
    call_->Cancel();
    stream_->Shutdown();
  }
  void Alive() override { call_->Alive(); }

 private:
  std::shared_ptr<SessionMux::Stream> stream_;
  std::shared_ptr<SessionCall> call_;
};

}  // namespace

std::shared_ptr<SessionCall> IndexerClient::OpenSession(v1::OpenSession open,
                                                        SessionCall::Handlers handlers) {
  std::shared_ptr<SessionMux::Stream> stream = SessionMux::Stream::Start(*this);
  std::shared_ptr<SessionCall> call = stream->Open(std::move(open), std::move(handlers));
  return std::make_shared<SoloCall>(std::move(stream), std::move(call));
}

}  // namespace poplar::popd
