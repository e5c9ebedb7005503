#include "popd/connection.h"

#include <openssl/rand.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "common/pop3/command.h"
#include "common/sasl/base64.h"
#include "common/util/hex.h"
#include "common/util/log.h"
#include "common/util/strings.h"

namespace poplar::popd {
namespace {

// Received bytes held before reading pauses: a full pipeline of 255-octet commands.
constexpr size_t kMaxInput = 16 * 1024;
// Stored bytes read per MessageStream::Next call, at most (output is up to twice that).
constexpr size_t kMaxStreamChunk = 128 * 1024;
// Rounds of produce-and-write per wake-up for one connection, so one fast reader of a huge
// message cannot starve the loop's other connections.
constexpr int kMaxRoundsPerEvent = 16;

// RFC 1939 §7: a timestamp unique to this greeting, "<random.time@host>".
std::string ApopTimestamp(const Settings& s) {
  unsigned char r[8];
  if (RAND_bytes(r, sizeof r) != 1) return "";  // no APOP rather than a guessable challenge
  return absl::StrCat("<", HexEncode(std::string_view(reinterpret_cast<const char*>(r), sizeof r)),
                      ".", std::time(nullptr), "@", s.hostname, ">");
}

pop3::Session::Options SessionOptions(const Settings& s, const IpAddress& peer, bool implicit_tls) {
  pop3::Session::Options o = s.session;
  if (s.apop) o.apop_timestamp = ApopTimestamp(s);
  o.tls_active = implicit_tls;
  o.tls_available = s.tls != nullptr;
  // Credentials in clear only over TLS or from a network the site trusts (design §6).
  o.allow_plaintext = implicit_tls || s.PlaintextAllowedFrom(peer);
  return o;
}

}  // namespace

Connection::Connection(ConnectionHost* host, uint64_t id, UniqueFd fd, IpAddress peer,
                       std::shared_ptr<const Settings> settings, bool implicit_tls)
    : host_(host),
      id_(id),
      fd_(std::move(fd)),
      peer_(peer),
      settings_(std::move(settings)),
      implicit_tls_(implicit_tls),
      session_(SessionOptions(*settings_, peer_, implicit_tls)) {
  connected_at_ = last_activity_ = EventLoop::Clock::now();
}

Connection::~Connection() {
  host_->guard().Disconnected(peer_);
  // Whatever ended the connection, an open session must end now: that releases the lease and,
  // without a Commit, deletes nothing.
  if (session_call_) session_call_->Cancel();
}

std::function<void(std::function<void(Connection&)>)> Connection::Deliverer() const {
  std::shared_ptr<EventLoop::Inbox> inbox = host_->loop().inbox();
  ConnectionHost* host = host_;
  const uint64_t id = id_;
  return [inbox, host, id](std::function<void(Connection&)> fn) {
    // The closure runs on the loop, so `host` (which owns the loop) is alive when it runs.
    inbox->Post([host, id, fn = std::move(fn)] { host->WithConnection(id, fn); });
  };
}

void Connection::Start() {
  if (implicit_tls_) {
    // The handshake runs inside the first reads and writes; the greeting waits behind it.
    absl::StatusOr<std::unique_ptr<TlsTransport>> tls =
        TlsTransport::Create(settings_->tls, fd_.get());
    if (!tls.ok()) {
      log::Warning("TLS setup failed: ", tls.status().message());
      closed_ = true;
      host_->Closed(id_);
      return;
    }
    transport_ = std::move(*tls);
  } else {
    transport_ = std::make_unique<PlainTransport>(fd_.get());
  }
  out_ = session_.Greeting();
  interest_ = EPOLLIN;
  if (absl::Status s = host_->loop().Add(fd_.get(), interest_, this); !s.ok()) {
    closed_ = true;
    host_->Closed(id_);
    return;
  }
  Pump();
}

void Connection::OnEvents(uint32_t events) {
  if (closed_) return;
  // EPOLLHUP: both directions are down (a reset, or our side shut too); nobody can read an
  // answer, and epoll would report it again at once, level-triggered, until the fd goes.
  if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
    CloseNow("client disconnected");
    return;
  }
  read_wants_write_ = false;
  write_wants_read_ = false;
  if ((events & (EPOLLIN | EPOLLOUT)) != 0) ReadInput();
  Pump();
}

void Connection::ReadInput() {
  // Only while input is wanted (see UpdateInterest); TLS may also need a read to finish a
  // handshake a write started.
  const bool want_lines = !eof_ && !tls_pending_ && !close_after_flush_ &&
                          session_.CanAcceptLine() && in_.size() < kMaxInput;
  if (!want_lines && !write_wants_read_) return;
  static thread_local char buffer[16 * 1024];
  do {
    size_t n = 0;
    switch (transport_->Read(buffer, sizeof buffer, &n)) {
      case Io::kDone:
        in_.append(buffer, n);
        last_activity_ = EventLoop::Clock::now();
        break;
      case Io::kWantRead:
        return;
      case Io::kWantWrite:
        read_wants_write_ = true;
        return;
      case Io::kClosed:
      case Io::kError:
        eof_ = true;
        return;
    }
  } while (transport_->HasBufferedInput() && in_.size() < kMaxInput);
}

void Connection::ProcessInput() {
  size_t pos = 0;
  while (!closed_ && !close_after_flush_ && session_.CanAcceptLine() &&
         pending_output() < settings_->output_high_water) {
    const size_t lf = in_.find('\n', pos);
    if (skipping_line_) {
      if (lf == std::string::npos) {
        pos = in_.size();
        break;
      }
      pos = lf + 1;
      skipping_line_ = false;
      continue;
    }
    if (lf == std::string::npos) {
      // No end of line yet. Past the limit it cannot become a valid command: answer it now
      // (the session sees more than 255 octets and says so) and skip the rest when it comes.
      const size_t max = session_.MaxLineLength();
      if (in_.size() - pos > max + 1) {
        Handle(session_.OnLine(std::string_view(in_).substr(pos, max + 2)));
        skipping_line_ = true;
        pos = in_.size();
      }
      break;
    }
    std::string_view line(in_.data() + pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = lf + 1;
    Handle(session_.OnLine(line));
    if (tls_pending_) {
      // RFC 2595 §3: whatever the client sent after STLS, in the clear, is discarded unread.
      pos = in_.size();
      break;
    }
  }
  in_.erase(0, pos);
  if (in_.empty() && in_.capacity() > 1024) std::string().swap(in_);
}

void Connection::Handle(pop3::Step step) {
  out_ += step.reply;
  if (auto* auth = std::get_if<pop3::AuthRequest>(&step.action)) {
    StartLogin(std::move(*auth));
  } else if (auto* retr = std::get_if<pop3::RetrRequest>(&step.action)) {
    StartRetr(*retr);
  } else if (auto* commit = std::get_if<pop3::CommitRequest>(&step.action)) {
    StartCommit(*commit);
  } else if (std::holds_alternative<pop3::Close>(step.action)) {
    close_after_flush_ = true;
  } else if (std::holds_alternative<pop3::StartTls>(step.action)) {
    tls_pending_ = true;
  } else if (auto* scram = std::get_if<pop3::ScramLookup>(&step.action)) {
    StartScramLookup(*scram);
  }
}

void Connection::StartTlsNow() {
  tls_pending_ = false;
  in_.clear();
  skipping_line_ = false;
  absl::StatusOr<std::unique_ptr<TlsTransport>> tls =
      TlsTransport::Create(settings_->tls, fd_.get());
  if (!tls.ok()) {
    log::Warning("STLS: TLS setup failed: ", tls.status().message());
    CloseNow("TLS setup failed");
    return;
  }
  transport_ = std::move(*tls);
  Handle(session_.OnTlsStarted());
}

void Connection::Pump() {
  for (int round = 0; round < kMaxRoundsPerEvent && !closed_; ++round) {
    ProcessInput();
    StreamSome();
    Flush();
    if (tls_pending_ && !closed_ && pending_output() == 0) {
      StartTlsNow();
      continue;
    }
    // Decrypted input TLS already holds gets no epoll wake-up: take it now.
    if (!closed_ && transport_->HasBufferedInput() && in_.size() < kMaxInput &&
        session_.CanAcceptLine()) {
      ReadInput();
      continue;
    }
    if (closed_ || !stream_ || pending_output() > 0) break;
  }
  if (closed_) return;
  if (close_after_flush_ && pending_output() == 0) {
    CloseNow(outcome_.empty() ? "closed" : outcome_);
    return;
  }
  if (eof_) {
    // The client shut down its side. Lines it sent before still run (a client may pipeline
    // "...QUIT" and half-close); once nothing is outstanding there is no one to answer.
    const pop3::State st = session_.state();
    const bool idle = (st == pop3::State::kAuthorization || st == pop3::State::kTransaction ||
                       st == pop3::State::kSasl) &&
                      !stream_ && in_.find('\n') == std::string::npos;
    if (idle || st == pop3::State::kClosed) {
      CloseNow("client disconnected");
      return;
    }
  }
  UpdateInterest();
}

void Connection::UpdateInterest() {
  uint32_t want = 0;
  if ((!eof_ && !tls_pending_ && !close_after_flush_ && session_.CanAcceptLine() &&
       in_.size() < kMaxInput && pending_output() < settings_->output_high_water) ||
      write_wants_read_) {
    want |= EPOLLIN;
  }
  if (read_wants_write_) want |= EPOLLOUT;
  // A stream still in progress with its output flushed (Pump stopped after kMaxRoundsPerEvent
  // to let other connections run) must be woken again: the socket is writable, so EPOLLOUT
  // fires at once. Without it nothing ever resumes the stream and the client waits forever.
  if (pending_output() > 0 || stream_) want |= EPOLLOUT;
  // The same for complete lines already read but not yet run: ProcessInput stopped at the
  // output high-water mark, Flush then drained everything, and with kMaxInput buffered no
  // EPOLLIN is wanted either, so nothing would ever run them (a pipelining client that reads
  // its answers slowly hung for good with its commands unanswered).
  if (!close_after_flush_ && !tls_pending_ && session_.CanAcceptLine() &&
      in_.find('\n') != std::string::npos) {
    want |= EPOLLOUT;
  }
  if (want == interest_) return;
  interest_ = want;
  if (!host_->loop().Modify(fd_.get(), want, this).ok()) CloseNow("epoll error");
}

void Connection::Flush() {
  while (pending_output() > 0) {
    size_t n = 0;
    switch (transport_->Write(out_.data() + out_sent_, pending_output(), &n)) {
      case Io::kDone:
        out_sent_ += n;
        bytes_out_ += n;
        last_activity_ = EventLoop::Clock::now();
        continue;
      case Io::kWantWrite:
        return;
      case Io::kWantRead:
        write_wants_read_ = true;
        return;
      case Io::kClosed:
      case Io::kError:
        CloseNow("client disconnected");
        return;
    }
  }
  out_.clear();
  out_sent_ = 0;
  // An idle connection keeps no large buffer (design §9: memory per idle connection).
  if (out_.capacity() > 4096) std::string().swap(out_);
}

// ---- login ----

void Connection::StartLogin(pop3::AuthRequest request) {
  // One round trip: the indexer checks the password and, if it is right, grants the lease and
  // answers with the snapshot (OpenSession with a password).
  login_deadline_ = EventLoop::Clock::now() + settings_->login_timeout;
  user_ = request.user;
  if (!host_->guard().LoginAllowed(peer_, request.user, EventLoop::Clock::now())) {
    // Too many failures from this address or for this name: not even asked, and answered
    // exactly like a wrong password (same text, same delay).
    log::Warning("login refused without checking (failure limit): user=", user_,
                 " peer=", peer_.ToString());
    std::fill(request.password.begin(), request.password.end(), '\0');
    FailLoginLater();
    return;
  }
  auto deliver = Deliverer();
  SessionCall::Handlers handlers;
  handlers.on_snapshot = [deliver](absl::StatusOr<v1::Snapshot> snapshot) {
    auto shared = std::make_shared<absl::StatusOr<v1::Snapshot>>(std::move(snapshot));
    deliver([shared](Connection& c) { c.OnSnapshot(std::move(*shared)); });
  };
  handlers.on_commit = [deliver](absl::StatusOr<v1::CommitResult> result) {
    deliver([result](Connection& c) { c.OnCommitted(result); });
  };
  handlers.on_lost = [deliver](absl::Status why) {
    deliver([why](Connection& c) { c.OnLeaseLost(why); });
  };
  // A connection already gone when the probe reaches the loop has cancelled its session: the
  // Close on its way releases the lease, so nothing needs answering.
  handlers.on_probe = [deliver] { deliver([](Connection& c) { c.OnProbe(); }); };
  v1::OpenSession open;
  open.set_user(request.user);
  open.set_password(request.password);
  open.set_client_address(peer_.ToString());
  open.set_front_end(settings_->front_end_name);
  if (request.scram) {
    open.mutable_scram()->set_auth_message(request.scram->auth_message);
    open.mutable_scram()->set_client_proof(request.scram->proof);
  }
  if (request.challenge) {
    open.mutable_challenge()->set_kind(request.challenge->kind ==
                                               pop3::ChallengeDigest::Kind::kCramMd5
                                           ? v1::ChallengeDigest::CRAM_MD5
                                           : v1::ChallengeDigest::APOP);
    open.mutable_challenge()->set_challenge(request.challenge->challenge);
    open.mutable_challenge()->set_digest(request.challenge->digest);
  }
  session_call_ = host_->sessions().OpenSession(std::move(open), std::move(handlers));
  std::fill(request.password.begin(), request.password.end(), '\0');
}

void Connection::StartScramLookup(const pop3::ScramLookup& request) {
  // The server nonce: 18 random bytes, base64 (printable, no comma, as RFC 5802 wants).
  unsigned char nonce[18];
  if (RAND_bytes(nonce, sizeof nonce) != 1) {
    Handle(session_.OnScramLookup(absl::InternalError("no randomness"), "", 0, ""));
    return;
  }
  std::string server_nonce =
      sasl::Base64Encode(std::string_view(reinterpret_cast<char*>(nonce), sizeof nonce));
  auto deliver = Deliverer();
  host_->indexer().ScramLookup(
      request.user, peer_.ToString(), std::chrono::system_clock::now() + settings_->login_timeout,
      [deliver, server_nonce](absl::StatusOr<v1::ScramLookupReply> reply) {
        auto shared = std::make_shared<absl::StatusOr<v1::ScramLookupReply>>(std::move(reply));
        deliver([shared, server_nonce](Connection& c) {
          if (c.session_.state() != pop3::State::kWaitScram) return;
          if (shared->ok()) {
            c.Handle(c.session_.OnScramLookup(absl::OkStatus(), (*shared)->salt(),
                                              (*shared)->iterations(), server_nonce));
          } else {
            c.Handle(c.session_.OnScramLookup(shared->status(), "", 0, ""));
          }
          c.Pump();
        });
      });
}

void Connection::OnSnapshot(absl::StatusOr<v1::Snapshot> snapshot) {
  if (!session_call_ || !login_deadline_) return;  // timed out meanwhile
  if (absl::IsUnauthenticated(snapshot.status())) {
    host_->guard().LoginFailed(peer_, user_, EventLoop::Clock::now());
    log::Info("login failed: user=", user_, " peer=", peer_.ToString());
    session_call_.reset();
    FailLoginLater();
    return;
  }
  if (!snapshot.ok()) {
    FinishLogin(snapshot.status());
    Pump();
    return;
  }
  if (!snapshot->credentials_checked()) {
    // popd always sends credentials; an indexer that does not confirm it checked them is too
    // old to know the field and must not be trusted with the login.
    log::Error("refusing login for ", user_,
               ": the indexer did not confirm it checked the credentials (older "
               "poplar-indexer?)");
    FinishLogin(absl::FailedPreconditionError("credentials not checked by the indexer"));
    Pump();
    return;
  }
  absl::StatusOr<MaildropView> view = MakeMaildropView(*snapshot);
  if (!view.ok()) {
    log::Error("refusing a malformed snapshot for ", user_, ": ", view.status().message());
    FinishLogin(view.status());
    Pump();
    return;
  }
  // The file is opened and checked against the snapshot before the session says +OK: from
  // here on RETR reads exactly the bytes the snapshot describes (design invariant 5). An empty
  // maildrop reads nothing, so it needs no file: a user with no mail yet has no spool file
  // (Debian creates /var/mail/USER at the first delivery) and must get "+OK 0 messages".
  std::optional<MailboxFile> opened;
  if (view->maildrop.count > 0) {
    absl::StatusOr<MailboxFile> file = MailboxFile::Open(*view);
    if (!file.ok()) {
      log::Warning("mailbox of ", user_, " unusable at login: ", file.status().message());
      FinishLogin(file.status());
      Pump();
      return;
    }
    opened = std::move(*file);
  }
  view_ = std::move(*view);
  file_ = std::move(opened);
  login_deadline_.reset();
  pop3::Maildrop maildrop = std::move(view_->maildrop);
  Handle(session_.OnAuthResult(absl::OkStatus(), std::move(maildrop),
                               snapshot->scram_server_signature()));
  Pump();
}

void Connection::FailLoginLater() {
  login_deadline_.reset();  // the delay replaces the indexer deadline
  ConnectionHost* host = host_;
  const uint64_t id = id_;
  host_->loop().RunAfter(
      std::chrono::duration_cast<std::chrono::milliseconds>(settings_->auth_failure_delay),
      [host, id] {
        host->WithConnection(id, [](Connection& c) {
          c.FinishLogin(absl::UnauthenticatedError("authentication failed"));
          c.Pump();
        });
      });
}

void Connection::FinishLogin(const absl::Status& status) {
  login_deadline_.reset();
  if (session_call_) session_call_->Cancel();
  session_call_.reset();
  view_.reset();
  file_.reset();
  if (!status.ok()) user_.clear();
  Handle(session_.OnAuthResult(status, {}));
}

// ---- RETR / TOP ----

void Connection::StartRetr(const pop3::RetrRequest& request) {
  const MessageLocation& where = view_->messages[request.message_index];
  // Before promising the bytes: the file still holds the whole message (the identity was
  // checked at login; the fd keeps us on that inode whatever renames happen).
  struct stat st {};
  if (::fstat(file_->fd(), &st) != 0 ||
      static_cast<uint64_t>(st.st_size) < where.data_offset + where.length) {
    log::Warning("mailbox of ", user_, " shrank during the session; refusing RETR");
    Handle(session_.OnRetrRefused(absl::UnavailableError("mailbox changed since login")));
    return;
  }
  out_ += request.ok_line;
  stream_.emplace(*file_, where, request.top_lines,
                  session_.maildrop().octets[request.message_index]);
  ++retrieved_;
}

void Connection::StreamSome() {
  while (stream_ && pending_output() < settings_->output_high_water) {
    const size_t room = settings_->output_high_water - pending_output();
    const absl::Status status =
        stream_->Next(&out_, std::max<size_t>(4096, std::min(room / 2, kMaxStreamChunk)));
    if (!status.ok()) {
      // The body is cut short with no terminator: the client cannot mistake it for the
      // message. Hanging up is the only signal left once +OK went out.
      log::Warning("RETR for ", user_, " failed mid-stream: ", status.message());
      stream_.reset();
      outcome_ = "mailbox changed during RETR";
      Handle(session_.OnRetrDone(status));
      return;
    }
    if (stream_->done()) {
      stream_.reset();
      Handle(session_.OnRetrDone(absl::OkStatus()));
      return;
    }
  }
}

// ---- QUIT ----

void Connection::StartCommit(const pop3::CommitRequest& request) {
  absl::StatusOr<v1::Commit> commit = MakeCommit(*view_, request.deleted);
  if (!commit.ok() || !session_call_) {
    Handle(session_.OnCommitResult(commit.ok() ? absl::UnavailableError("maildrop session lost")
                                               : commit.status()));
    return;
  }
  commit_deadline_ = EventLoop::Clock::now() + settings_->commit_timeout;
  session_call_->Commit(*std::move(commit));
}

void Connection::OnCommitted(absl::StatusOr<v1::CommitResult> result) {
  if (!commit_deadline_) return;  // timed out meanwhile
  commit_deadline_.reset();
  if (result.ok()) {
    outcome_ =
        absl::StrCat("quit, deleted ", result->deleted(), " (", result->bytes_removed(), " bytes)");
  } else {
    outcome_ = absl::StrCat("quit, commit failed: ", result.status().message());
  }
  Handle(session_.OnCommitResult(result.status()));
  Pump();
}

void Connection::OnLeaseLost(const absl::Status& why) {
  session_call_.reset();
  // Nothing can be committed any more; the client learns at its next command that the
  // connection is gone, which is what RFC 1939 allows for an unusable maildrop.
  CloseNow(absl::StrCat("maildrop session ended by the indexer: ", why.message()));
}

void Connection::OnProbe() {
  if (closed_ || !session_call_) return;  // ending: its Close releases the lease
  // Another login waits for this maildrop (maildrop.proto, liveness probes): typically this
  // very client, whose connection dropped and which reconnected before this loop handled the
  // EOF or RST (the loop may be busy, or the wake-up still queued). Look at the socket now,
  // exactly as an epoll wake-up would: a reset closes the connection; an EOF is read, after
  // any lines sent before it have run, and an idle session then closes. Closing cancels the
  // session, and its Close hands the lease to the waiting login. Anything else is a live
  // session, including one whose client half-closed but still waits for answers: the other
  // login gets [IN-USE] at once.
  pollfd p{fd_.get(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) > 0) {
    uint32_t events = 0;
    if ((p.revents & (POLLIN | POLLRDHUP)) != 0) events |= EPOLLIN;
    if ((p.revents & POLLERR) != 0) events |= EPOLLERR;
    if ((p.revents & POLLHUP) != 0) events |= EPOLLHUP;
    OnEvents(events);
  }
  if (!closed_ && session_call_) session_call_->Alive();
}

// ---- timeouts and the end ----

void Connection::OnTick(EventLoop::Clock::time_point now) {
  if (closed_) return;
  const pop3::State st = session_.state();
  if (login_deadline_ && now >= *login_deadline_) {
    log::Warning("login for a client at ", peer_.ToString(), " timed out waiting for the indexer");
    FinishLogin(absl::DeadlineExceededError("login timed out"));
  } else if (commit_deadline_ && now >= *commit_deadline_) {
    commit_deadline_.reset();
    if (session_call_) session_call_->Cancel();
    session_call_.reset();
    outcome_ = "quit, commit timed out";
    Handle(session_.OnCommitResult(absl::DeadlineExceededError("commit timed out")));
  } else if ((st == pop3::State::kAuthorization || st == pop3::State::kWaitAuth ||
              st == pop3::State::kSasl || st == pop3::State::kWaitTls) &&
             now - connected_at_ >= settings_->preauth_timeout && !close_after_flush_) {
    out_ += "-ERR Autologout: no login in time\r\n";
    outcome_ = "pre-login timeout";
    close_after_flush_ = true;
  } else if ((st == pop3::State::kTransaction || st == pop3::State::kWaitRetr) &&
             now - last_activity_ >= settings_->autologout && !close_after_flush_) {
    // RFC 1939 §3: the autologout timer; the session ends without UPDATE, deleting nothing.
    if (st == pop3::State::kTransaction) out_ += "-ERR Autologout: idle for too long\r\n";
    outcome_ = "autologout";
    if (st == pop3::State::kWaitRetr) {
      CloseNow(outcome_);
      return;
    }
    close_after_flush_ = true;
  } else {
    return;
  }
  Pump();
}

void Connection::Abort() {
  if (closed_) return;
  if (!stream_ && pending_output() == 0) {
    // Best effort; a RETR in flight gets no text appended into its body.
    static constexpr std::string_view kBye = "-ERR [SYS/TEMP] Server shutting down\r\n";
    size_t n = 0;
    if (transport_ && !tls_pending_) transport_->Write(kBye.data(), kBye.size(), &n);
  }
  CloseNow("server shutdown");
}

void Connection::CloseNow(std::string_view why) {
  if (closed_) return;
  closed_ = true;
  host_->loop().Remove(fd_.get());
  if (session_call_) session_call_->Cancel();
  stream_.reset();
  if (!user_.empty()) {
    log::Info("session user=", user_, " peer=", peer_.ToString(), " retrieved=", retrieved_,
              " bytes_out=", bytes_out_, " end=", why);
  }
  transport_.reset();  // TLS says close_notify on the socket before it goes
  fd_.Reset();
  host_->Closed(id_);
}

}  // namespace poplar::popd
