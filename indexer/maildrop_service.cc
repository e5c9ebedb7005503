#include "indexer/maildrop_service.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/util/happens_before.h"
#include "indexer/grpc_status.h"
#include "indexer/session_table.h"

namespace poplar::indexer {
namespace {

absl::Status CredentialsRequired() {
  return absl::UnauthenticatedError(
      "this listener opens a session only with the user's credentials (password, SCRAM proof or "
      "challenge digest)");
}

}  // namespace

// Runs the Sessions streams' OpenSession and Commit calls, which block (SQLite, the spool, the
// MDA locks, an expunge). A fixed handful of threads: the Indexer serialises its file and
// SQLite work under one mutex anyway, and what needs no file (a wrong password, [IN-USE]) is
// quick.
class MaildropService::WorkPool {
 public:
  explicit WorkPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
  }
  // Runs everything queued, then joins.
  ~WorkPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  void Run(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

namespace {

// Events waiting to be written beyond which the stream stops reading requests (the client is
// not reading); it resumes as they drain. Each live session adds at most two more.
constexpr size_t kMaxQueuedEvents = 256;

// Many POP3 sessions on one stream (maildrop.proto, rpc Sessions). Requests are read one after
// another without waiting for the sessions' work: OpenSession and Commit run on the service's
// pool, and their events go out through a write queue (the callback API allows one write at a
// time). SessionTable holds the protocol; this class carries out its steps. The leases of the
// stream's sessions end when the stream does.
//
// Liveness probes (maildrop.proto): a login elsewhere that finds a maildrop leased by one of
// this stream's sessions asks it, through the lease's `check` hook, whether it is ending. The
// table answers from what it knows (closed while busy, committing, the stream over: ending);
// else, for a client that answers probes, a probe event goes out and the client's `alive`
// request (or its close) settles the question.
//
// Lifetime: gRPC's OnDone and the last running operation, whichever comes later, delete the
// reactor. An admin's revoke and a liveness check reach it through Handle, cleared before
// the delete.
class SessionsReactor final
    : public grpc::ServerBidiReactor<v1::SessionsRequest, v1::SessionsEvent> {
 public:
  SessionsReactor(Indexer* indexer, std::function<void(std::function<void()>)> run,
                  size_t max_sessions, bool require_credentials)
      : indexer_(indexer),
        require_credentials_(require_credentials),
        run_(std::move(run)),
        table_(max_sessions),
        handle_(std::make_shared<Handle>()) {
    handle_->reactor = this;
    reading_ = true;
    HappensBefore(this);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    Reaction reaction(this);
    if (!ok) {  // the client half-closed, cancelled or went away: every session ends
      std::vector<std::string> release;
      {
        std::lock_guard<std::mutex> lock(mu_);
        reading_ = false;
        read_closed_ = true;
        release = table_.EndAll();
      }
      for (const std::string& id : release) indexer_->CloseSession(id);
      MaybeFinish();
      return;
    }
    const uint64_t tag = request_.tag();
    SessionTable::Step step;
    std::string alive;  // a lease whose holder answered a probe
    {
      std::lock_guard<std::mutex> lock(mu_);
      switch (request_.kind_case()) {
        case v1::SessionsRequest::kAlive:
          alive = table_.Alive(tag);
          break;
        case v1::SessionsRequest::kOpen:
          step = table_.Open(tag);
          break;
        case v1::SessionsRequest::kCommit:
          step = table_.Commit(tag);
          break;
        case v1::SessionsRequest::kClose:
          step = table_.Close(tag);
          break;
        case v1::SessionsRequest::KIND_NOT_SET:
          step = table_.Malformed(tag);
          break;
      }
      if (step.start != SessionTable::Step::Start::kNone) ++ops_;  // before any OnDone can count
    }
    if (!alive.empty()) indexer_->LeaseAlive(alive);
    Carry(tag, step);
    if (step.start == SessionTable::Step::Start::kOpen) {
      run_([this, tag, open = std::move(*request_.mutable_open())] { RunOpen(tag, open); });
    } else if (step.start == SessionTable::Step::Start::kCommit) {
      run_([this, tag, id = std::move(step.commit_session),
            commit = std::move(*request_.mutable_commit())] { RunCommit(tag, id, commit); });
    }
    request_.Clear();
    bool read = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read = !read_closed_ && !cancelled_ && !broken_ && queue_.size() < kMaxQueuedEvents;
      reading_ = read;
    }
    if (read) {
      HappensBefore(this);
      StartRead(&request_);
    } else {
      MaybeFinish();  // a cancel may have come while this read was being handled
    }
  }

  void OnWriteDone(bool ok) override {
    Reaction reaction(this);
    const v1::SessionsEvent* next = nullptr;
    bool read = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok) {
        broken_ = true;  // the stream is gone: nothing more will be written
        queue_.clear();
      } else {
        queue_.pop_front();
        if (!queue_.empty()) next = &queue_.front();
      }
      writing_ = next != nullptr;
      if (!reading_ && !read_closed_ && !cancelled_ && !broken_ &&
          queue_.size() < kMaxQueuedEvents) {
        reading_ = read = true;
      }
    }
    HappensBefore(this);
    if (next) StartWrite(next);
    if (read) StartRead(&request_);
    MaybeFinish();
  }

  void OnCancel() override {
    Reaction reaction(this);
    std::vector<std::string> release;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
      release = table_.EndAll();
    }
    for (const std::string& id : release) indexer_->CloseSession(id);
    MaybeFinish();
  }

  void OnDone() override {
    HappensAfter(this);  // every reaction and Start* came before (gRPC's promise)
    std::vector<std::string> release;
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      release = table_.EndAll();  // normally empty by now
      last = ops_ == 0;
    }
    for (const std::string& id : release) indexer_->CloseSession(id);
    if (last) Destroy();
  }

 private:
  struct Handle {
    std::mutex mu;
    SessionsReactor* reactor = nullptr;
  };

  // Finishes on this pool thread, or later on the PAM or LeaseManager thread (a wait for an
  // ending holder): no pool thread waits. The operation count keeps the reactor alive.
  void RunOpen(uint64_t tag, const v1::OpenSession& open) {
    auto done = [this, tag](absl::StatusOr<Indexer::Opened> opened) {
      const SessionTable::Step step = Apply([&](SessionTable& t) {
        return t.OpenDone(tag, opened.status(),
                          opened.ok() ? opened->lease.session_id : std::string());
      });
      v1::SessionsEvent outcome;
      if (step.send_outcome) *outcome.mutable_snapshot() = std::move(opened->snapshot);
      Carry(tag, step, std::move(outcome));
      OpDone();
    };
    if (require_credentials_ && !CarriesCredentials(open)) return done(CredentialsRequired());
    std::weak_ptr<Handle> weak = handle_;
    LeaseHooks hooks;
    hooks.on_revoke = [weak, tag] {
      if (auto h = weak.lock()) {
        std::lock_guard<std::mutex> lock(h->mu);  // held: the reactor cannot go meanwhile
        if (h->reactor) h->reactor->Revoke(tag);
      }
    };
    hooks.check = [weak, tag, answers = open.answers_probes()](const std::string& session_id) {
      if (auto h = weak.lock()) {
        std::lock_guard<std::mutex> lock(h->mu);
        if (h->reactor) return h->reactor->Check(tag, session_id, answers);
      }
      return Liveness::kEnding;  // the stream is gone: OnDone released or releases the lease
    };
    indexer_->OpenSessionAsync(open, std::move(hooks), std::move(done));
  }

  // Another login wants the maildrop this tag's session leases (LeaseHooks::check).
  Liveness Check(uint64_t tag, const std::string& session_id, bool answers_probes) {
    SessionTable::ProbeAnswer answer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A stream that is over or can no longer write ends every lease on it shortly.
      if (done_ || finished_ || broken_ || cancelled_) return Liveness::kEnding;
      answer = table_.Probe(tag, session_id, answers_probes);
    }
    switch (answer) {
      case SessionTable::ProbeAnswer::kAlive:
        return Liveness::kAlive;
      case SessionTable::ProbeAnswer::kEnding:
        return Liveness::kEnding;
      case SessionTable::ProbeAnswer::kAsk:
        break;
    }
    v1::SessionsEvent probe;
    probe.mutable_probe();
    Send(tag, std::move(probe));
    return Liveness::kAsked;
  }

  void RunCommit(uint64_t tag, const std::string& session_id, const v1::Commit& commit) {
    absl::StatusOr<v1::CommitResult> result = indexer_->Commit(session_id, commit);
    const SessionTable::Step step =
        Apply([&](SessionTable& t) { return t.CommitDone(tag, result.status()); });
    v1::SessionsEvent outcome;
    if (step.send_outcome) *outcome.mutable_committed() = *result;
    Carry(tag, step, std::move(outcome));
    OpDone();
  }

  void Revoke(uint64_t tag) {
    Carry(tag, Apply([&](SessionTable& t) { return t.Revoke(tag); }));
  }

  template <typename F>
  SessionTable::Step Apply(F&& f) {
    std::lock_guard<std::mutex> lock(mu_);
    return f(table_);
  }

  // The lease first, then the event: a client that logs in again as soon as it reads the
  // event never finds its own old session [IN-USE].
  void Carry(uint64_t tag, const SessionTable::Step& step, v1::SessionsEvent outcome = {}) {
    if (!step.release.empty()) indexer_->CloseSession(step.release);
    if (step.error) {
      v1::SessionsEvent event;
      event.mutable_error()->set_code(static_cast<int32_t>(step.error->code()));
      event.mutable_error()->set_message(std::string(step.error->message()));
      Send(tag, std::move(event));
    } else if (step.send_outcome) {
      Send(tag, std::move(outcome));
    }
  }

  void Send(uint64_t tag, v1::SessionsEvent event) {
    event.set_tag(tag);
    const v1::SessionsEvent* write = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_ || finished_ || broken_ || cancelled_) return;
      queue_.push_back(std::move(event));  // deque: the element being written stays put
      if (!writing_) {
        writing_ = true;
        write = &queue_.front();
      }
    }
    if (write) {
      HappensBefore(this);
      StartWrite(write);
    }
  }

  // Once the client will send nothing more and every queued event is out.
  void MaybeFinish() {
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || done_ || writing_ || reading_ || !(read_closed_ || cancelled_ || broken_))
        return;
      finished_ = true;
      if (cancelled_) status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    HappensBefore(this);
    Finish(status);
  }

  void OpDone() {
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last = --ops_ == 0 && done_;
    }
    if (last) Destroy();
  }

  void Destroy() {
    {
      std::lock_guard<std::mutex> lock(handle_->mu);  // waits for a revoke in progress
      handle_->reactor = nullptr;
    }
    delete this;
  }

  Indexer* indexer_;
  const bool require_credentials_;
  std::function<void(std::function<void()>)> run_;
  std::mutex mu_;
  SessionTable table_;
  std::shared_ptr<Handle> handle_;
  v1::SessionsRequest request_;
  std::deque<v1::SessionsEvent> queue_;  // front: being written while writing_
  int ops_ = 0;                          // OpenSession/Commit calls queued or running on the pool
  bool reading_ = false;                 // a read is outstanding
  bool writing_ = false;                 // a write is outstanding
  bool read_closed_ = false;
  bool cancelled_ = false;
  bool broken_ = false;    // a write failed
  bool finished_ = false;  // Finish called
  bool done_ = false;      // OnDone ran
};

}  // namespace

MaildropService::MaildropService(Indexer* indexer, size_t max_sessions_per_stream,
                                 bool require_credentials)
    : indexer_(indexer),
      max_sessions_per_stream_(max_sessions_per_stream),
      require_credentials_(require_credentials),
      pool_(std::make_unique<WorkPool>(8)) {}

MaildropService::~MaildropService() = default;

grpc::ServerBidiReactor<v1::SessionsRequest, v1::SessionsEvent>* MaildropService::Sessions(
    grpc::CallbackServerContext*) {
  WorkPool* pool = pool_.get();
  return new SessionsReactor(
      indexer_, [pool](std::function<void()> fn) { pool->Run(std::move(fn)); },
      max_sessions_per_stream_, require_credentials_);
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

}  // namespace poplar::indexer
