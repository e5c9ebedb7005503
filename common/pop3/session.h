// The POP3 session state machine (design §6, style P3/P4): lines in, reply bytes and actions
// out. No socket, thread, clock or log in here; popd's I/O layer drives it:
//
//   greeting:     the I/O layer sends session.Greeting() itself.
//   each line:    Step s = session.OnLine(line_without_crlf); send s.reply, then do s.action.
//   AuthRequest:  ask the indexer; feed the answer to OnAuthResult (it holds the maildrop lease
//                 from then on if the status is OK).
//   RetrRequest:  check that the message can be served (the file is still the snapshot's);
//                 if not, call OnRetrRefused(status), which answers -ERR instead. Otherwise send
//                 r.ok_line (RETR's "+OK <octets> octets" or TOP's "+OK"), stream the message
//                 through WireTransform with the ".\r\n" terminator, then call
//                 OnRetrDone(status). The +OK is held back in ok_line so that a file that
//                 changed under the session gets -ERR [SYS/TEMP], never a promise of bytes
//                 that cannot be kept (design invariant 5).
//   CommitRequest:send the deletions (possibly none: the indexer releases the lease either way)
//                 and feed the answer to OnCommitResult.
//   Close:        flush s.reply and close the connection; the session ignores all later input.
//   StartTls:     flush s.reply, drop all buffered input, do the TLS handshake, OnTlsStarted().
//
// PIPELINING (RFC 2449): while an answer is outstanding (kWaitAuth, kWaitCommit, kWaitRetr)
// OnLine queues lines instead of running them and returns an empty Step. Every On*Result /
// OnRetrDone runs the queue in order until it is empty or a command needs an action, so the
// replies come out in command order and nothing is dropped. The queue is bounded
// (Options::max_queued_lines, design §2.7): the I/O layer stops reading while
// !CanAcceptLine(); a line past the bound anyway closes the session.
//
// Errors are classified once, in ErrorLine() (RFC 2449 / RFC 3206 response codes). Replies
// never echo client text (no injection into the reply stream, no password in any output).
#ifndef POPLAR_COMMON_POP3_SESSION_H_
#define POPLAR_COMMON_POP3_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "common/pop3/command.h"
#include "common/pop3/uidl_list.h"

namespace poplar::pop3 {

enum class State : uint8_t {
  kAuthorization,  // RFC 1939 AUTHORIZATION
  kWaitAuth,       // USER+PASS sent to the indexer; waiting for OnAuthResult
  kTransaction,    // RFC 1939 TRANSACTION, maildrop lease held
  kWaitRetr,       // the I/O layer streams a RETR/TOP body; waiting for OnRetrDone
  kWaitCommit,     // QUIT's deletions sent to the indexer (UPDATE); waiting for OnCommitResult
  kWaitTls,        // STLS answered; the I/O layer runs the TLS handshake, then OnTlsStarted
  kSasl,           // AUTH (RFC 5034) sent a "+ " challenge; the next line is the client's answer
  kWaitScram,      // SCRAM client-first read; waiting for OnScramLookup (salt, iterations)
  kClosed,
};
std::string_view StateName(State s);

// What the indexer hands over at login: the snapshot the whole session sees (design §2.4).
struct Maildrop {
  uint32_t count = 0;
  std::vector<uint64_t> octets;  // per message, as RETR sends them (RFC 1939 §11); size count
  UidlList uidls;                // per message, 1..70 octets of 0x21..0x7E; size count
  uint64_t total_octets = 0;     // sum of octets
};

// SCRAM-SHA-256: what the indexer needs to check a client proof against the stored verifier.
struct ScramProof {
  std::string auth_message;
  std::string proof;  // raw bytes
};
// APOP (RFC 1939 §7) and SASL CRAM-MD5 (RFC 2195): a digest of the challenge and the
// account's plaintext-equivalent secret, which only the indexer holds.
struct ChallengeDigest {
  enum class Kind : uint8_t { kApop, kCramMd5 };
  Kind kind = Kind::kApop;
  std::string challenge;  // the greeting's timestamp, "<...>"
  std::string digest;     // 32 lowercase hex digits as the client sent them
};
struct AuthRequest {
  std::string user;
  std::string password;                      // secret: never log it (empty for SCRAM/APOP/CRAM-MD5)
  std::optional<ScramProof> scram;           // set instead of a password for AUTH SCRAM-SHA-256
  std::optional<ChallengeDigest> challenge;  // APOP, AUTH CRAM-MD5
};
// AUTH SCRAM-SHA-256: the I/O layer asks the indexer for the user's salt and iteration count
// (fake but stable ones for unknown users) and makes a random server nonce, then calls
// OnScramLookup.
struct ScramLookup {
  std::string user;
};
struct RetrRequest {
  uint32_t message_index = 0;         // 0-based
  std::optional<uint64_t> top_lines;  // set for TOP
  std::string ok_line;                // sent only once the stream is known to start
};
struct CommitRequest {
  std::vector<uint32_t> deleted;  // 0-based, ascending; empty = release only
};
struct Close {};
// STLS (RFC 2595): flush the reply in plaintext, discard every byte received after the STLS
// line (the session already dropped its own queue), run the TLS handshake, then OnTlsStarted.
struct StartTls {};
using Action = std::variant<std::monostate, AuthRequest, RetrRequest, CommitRequest, Close,
                            StartTls, ScramLookup>;

struct Step {
  std::string reply;  // CRLF-terminated lines to send before performing `action`
  Action action;
};

// The single mapping from a status to a POP3 error line (style P7), CRLF included:
//   Unauthenticated -> "-ERR [AUTH] ...", ResourceExhausted -> "-ERR [IN-USE] ...",
//   Unavailable/Aborted/DeadlineExceeded -> "-ERR [SYS/TEMP] ...", anything else ->
//   "-ERR [SYS/PERM] ...". The text is fixed per class; the status message (which may name
//   a user, a path or an internal detail) is never sent to the client.
std::string ErrorLine(const absl::Status& status);

class Session {
 public:
  struct Options {
    bool allow_plaintext = false;  // USER/PASS permitted (after TLS, or a trusted network)
    int max_bad_commands = 10;     // consecutive errors in AUTHORIZATION before closing
    int max_auth_failures = 3;     // failed logins per session (never reset) before closing
    size_t max_queued_lines = 64;  // pipelined lines held while an answer is outstanding
    bool tls_available = false;    // STLS offered (a certificate is configured)
    bool tls_active = false;       // the connection is already TLS (implicit TLS port)
    // "<unique@host>" for this connection's greeting: non-empty offers APOP (RFC 1939 §7) and
    // SASL CRAM-MD5 (RFC 2195), which need a per-account secret set with poplarctl.
    std::string apop_timestamp;
  };

  Session() : Session(Options{}) {}
  explicit Session(Options options) : options_(options) {}

  std::string Greeting() const;

  Step OnLine(std::string_view line);
  // For SCRAM, `server_signature` (raw bytes, from the indexer) goes back to the client as the
  // final challenge and "+OK" waits for its empty answer (RFC 5034: no success-with-data).
  Step OnAuthResult(const absl::Status& status, Maildrop maildrop,
                    std::string server_signature = "");
  Step OnScramLookup(const absl::Status& status, std::string salt, uint32_t iterations,
                     std::string server_nonce);
  Step OnRetrDone(const absl::Status& status);
  // The message could not be served at all (nothing of ok_line or the body was sent): the
  // client gets ErrorLine(status) and the session goes on.
  Step OnRetrRefused(const absl::Status& status);
  Step OnCommitResult(const absl::Status& status);
  // The STLS handshake succeeded: back to AUTHORIZATION with nothing remembered from before
  // (RFC 2595 §4), plaintext credentials now protected, STLS no longer offered. (A failed
  // handshake just closes the connection.)
  Step OnTlsStarted();

  State state() const { return state_; }
  bool CanAcceptLine() const {
    return state_ != State::kClosed && state_ != State::kWaitTls &&
           queue_.size() < options_.max_queued_lines;
  }
  size_t queued_lines() const { return queue_.size(); }
  // Longest line the session accepts now: 255 octets for commands (RFC 2449 §4), more for a
  // SASL response, which "may be as long as the mechanism needs" (RFC 5034 §4).
  size_t MaxLineLength() const;
  // The snapshot given at login (empty before): the I/O layer reads RETR's announced size here.
  const Maildrop& maildrop() const { return maildrop_; }

 private:
  using Handler = Step (Session::*)(const Args&);
  struct CommandSpec {
    std::string_view verb;
    uint32_t allowed;  // bit set of State values
    ArgShape shape;
    Handler run;
  };
  static const CommandSpec kCommands[];

  void EnterState(State next);  // the only writer of state_
  bool Waiting() const;
  Step Process(std::string_view line);  // a command, or a SASL response in kSasl
  Step Dispatch(std::string_view line);
  Step Drain(Step acc);
  Step CountBad(Step step);  // bad-command cap in AUTHORIZATION
  Step CloseWith(std::string reply);
  bool Deleted(uint32_t index) const { return deleted_[index]; }
  std::string Capabilities() const;

  Step User(const Args& args);
  Step Pass(const Args& args);
  Step Quit(const Args& args);
  Step Stat(const Args& args);
  Step List(const Args& args);
  Step Retr(const Args& args);
  Step Dele(const Args& args);
  Step Noop(const Args& args);
  Step Rset(const Args& args);
  Step Top(const Args& args);
  Step Uidl(const Args& args);
  Step Capa(const Args& args);
  Step Stls(const Args& args);
  Step Apop(const Args& args);
  Step CramMd5(std::string_view decoded);
  Step Auth(const Args& args);
  Step SaslStart(std::string_view mechanism, std::optional<std::string_view> initial);
  Step SaslResponse(std::string_view line);
  Step SaslPlain(std::string_view decoded);
  Step ScramFirst(std::string_view decoded);
  Step ScramFinal(std::string_view decoded);
  Step EnterTransaction(Maildrop maildrop, Step prefix);
  Step SaslAbort(std::string reply);
  Step StartLogin(std::string user, std::string password);

  Options options_;
  State state_ = State::kAuthorization;
  int bad_commands_ = 0;
  int auth_failures_ = 0;
  std::optional<std::string> user_;  // from USER, until PASS or a failed login
  enum class SaslStep : uint8_t {
    kNone,
    kPlain,
    kLoginUser,
    kLoginPassword,
    kScramFirst,
    kScramFinal,
    kScramAck,
    kCramMd5
  };
  SaslStep sasl_ = SaslStep::kNone;
  std::string sasl_user_;  // AUTH LOGIN / SCRAM: the name
  // SCRAM between client-first and client-final.
  std::string scram_gs2_;
  std::string scram_client_first_bare_;
  std::string scram_client_nonce_;
  std::string scram_nonce_;  // client + server nonce
  std::string scram_server_first_;
  Maildrop scram_maildrop_;  // login succeeded; waiting for the client's empty answer
  Maildrop maildrop_;
  std::vector<bool> deleted_;  // per message, DELE marks
  uint32_t live_count_ = 0;    // STAT: messages not marked deleted
  uint64_t live_octets_ = 0;
  std::deque<std::string> queue_;  // pipelined lines waiting for an answer
};

}  // namespace poplar::pop3

#endif  // POPLAR_COMMON_POP3_SESSION_H_
