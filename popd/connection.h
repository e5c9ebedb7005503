// One POP3 client connection: the I/O around the pure pop3::Session (design §6).
//
// The connection reads lines, feeds them to the session, writes the replies, and performs the
// session's actions asynchronously: login through the indexer (one SessionCall: its first
// message carries USER/PASS, its answer is the snapshot, its life is the lease), RETR/TOP
// streamed from the mbox through MessageStream, and the QUIT commit. It lives on one event loop
// and is touched only by that loop's thread; gRPC completions reach it through
// ConnectionHost::WithConnection, which finds it by id, so a completion for a connection that
// is already gone is dropped.
//
// Bounded everything (design §2.7): input is read only while the session can take more lines
// and the output is below the high-water mark; a RETR produces output only while the client
// keeps reading; a line longer than 255 octets is answered once with -ERR and the rest of it is
// skipped, never executed; idle and pre-login time is limited by the tick.
//
// A connection that ends in any way other than QUIT's commit (client gone, timeout, error,
// drain) cancels its SessionCall, which releases the lease and deletes nothing.
#ifndef POPLAR_POPD_CONNECTION_H_
#define POPLAR_POPD_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pop3/session.h"
#include "common/util/unique_fd.h"
#include "popd/event_loop.h"
#include "popd/indexer_client.h"
#include "popd/maildrop_view.h"
#include "popd/message_stream.h"
#include "popd/net.h"
#include "popd/popd_config.h"
#include "popd/transport.h"

namespace poplar::popd {

class Connection;

// What a connection needs from the worker that owns it.
class ConnectionHost {
 public:
  virtual ~ConnectionHost() = default;
  virtual EventLoop& loop() = 0;
  virtual IndexerClient& indexer() = 0;
  // Where the connection's maildrop session is opened (the loop's shared stream by default).
  virtual SessionOpener& sessions() = 0;
  virtual AbuseGuard& guard() = 0;  // the connection was counted by guard().Connected
  // Loop thread only: runs fn with connection `id` if it still exists. Completions from gRPC
  // threads reach it through the loop's Inbox (see Connection::Deliverer).
  virtual void WithConnection(uint64_t id, const std::function<void(Connection&)>& fn) = 0;
  // The connection has closed its socket; the host deletes it after the current event.
  virtual void Closed(uint64_t id) = 0;
};

class Connection final : public EventLoop::Handler {
 public:
  // `implicit_tls`: accepted on the pop3s port; TLS starts before the greeting.
  Connection(ConnectionHost* host, uint64_t id, UniqueFd fd, IpAddress peer,
             std::shared_ptr<const Settings> settings, bool implicit_tls);
  ~Connection() override;

  // Sends the greeting and starts reading. Closes the connection if epoll refuses it.
  void Start();
  void OnEvents(uint32_t events) override;
  // Timeouts: login and commit deadlines, pre-login deadline, autologout.
  void OnTick(EventLoop::Clock::time_point now);
  // Server shutdown at the end of the drain: hangs up; nothing is committed.
  void Abort();

  uint64_t id() const { return id_; }
  bool closed() const { return closed_; }

 private:
  void ReadInput();
  void ProcessInput();
  void Handle(pop3::Step step);
  void Pump();  // process input, stream, flush, re-arm epoll, close if finished

  void StartLogin(pop3::AuthRequest request);
  void StartScramLookup(const pop3::ScramLookup& request);
  void OnSnapshot(absl::StatusOr<v1::Snapshot> snapshot);
  void FinishLogin(const absl::Status& status);
  void FailLoginLater();  // failed or refused: answer after the delay
  void StartRetr(const pop3::RetrRequest& request);
  void StreamSome();
  void StartCommit(const pop3::CommitRequest& request);
  void OnCommitted(absl::StatusOr<v1::CommitResult> result);
  void OnLeaseLost(const absl::Status& why);
  // A liveness probe for this session's lease: ends the session if the client is gone, else
  // answers that it is alive.
  void OnProbe();

  // A thread-safe way back to this connection for gRPC completions.
  std::function<void(std::function<void(Connection&)>)> Deliverer() const;

  void Flush();
  void StartTlsNow();  // after STLS's +OK has been written in the clear
  void UpdateInterest();
  size_t pending_output() const { return out_.size() - out_sent_; }
  void CloseNow(std::string_view why);

  ConnectionHost* host_;
  uint64_t id_;
  UniqueFd fd_;
  IpAddress peer_;
  std::shared_ptr<const Settings> settings_;
  bool implicit_tls_;
  pop3::Session session_;
  std::unique_ptr<Transport> transport_;
  bool read_wants_write_ = false;  // TLS: the last read needs the socket writable
  bool write_wants_read_ = false;  // TLS: the last write needs the socket readable
  bool tls_pending_ = false;       // STLS answered; switch once the +OK is out

  std::string in_;              // received bytes not yet turned into lines
  bool skipping_line_ = false;  // inside an over-long line, after its -ERR
  bool eof_ = false;            // the client shut down its side
  std::string out_;             // reply bytes not yet written (from out_sent_)
  size_t out_sent_ = 0;
  bool close_after_flush_ = false;
  bool closed_ = false;
  uint32_t interest_ = 0;  // current epoll events

  EventLoop::Clock::time_point connected_at_;
  EventLoop::Clock::time_point last_activity_;
  std::optional<EventLoop::Clock::time_point> login_deadline_;
  std::optional<EventLoop::Clock::time_point> commit_deadline_;

  std::string user_;  // as the client typed it (valid, or the login failed), for logs
  std::shared_ptr<SessionCall> session_call_;
  std::optional<MaildropView> view_;
  std::optional<MailboxFile> file_;
  std::optional<MessageStream> stream_;

  // For the one log line per session.
  uint64_t bytes_out_ = 0;
  uint32_t retrieved_ = 0;
  std::string outcome_;
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_CONNECTION_H_
