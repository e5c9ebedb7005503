#include "common/pop3/session.h"

#include <cctype>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mbox/uidl.h"
#include "common/sasl/base64.h"
#include "common/sasl/plain.h"
#include "common/sasl/scram_messages.h"
#include "common/util/check.h"
#include "common/util/strings.h"

namespace poplar::pop3 {
namespace {

constexpr uint32_t Bit(State s) { return uint32_t{1} << static_cast<uint32_t>(s); }
constexpr uint32_t kAuth = Bit(State::kAuthorization);
constexpr uint32_t kTrans = Bit(State::kTransaction);

constexpr std::string_view kSignOff = "+OK Poplar signing off\r\n";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Num(uint64_t n) { return std::to_string(n); }

Step Reply(std::string reply) { return Step{std::move(reply), std::monostate{}}; }

// The indexer's snapshot is trusted but crosses a process boundary: check the shape the
// handlers index by before using it.
bool ValidMaildrop(const Maildrop& m) {
  if (m.octets.size() != m.count || m.uidls.size() != m.count) return false;
  uint64_t sum = 0;
  for (uint64_t o : m.octets) {
    if (o > std::numeric_limits<uint64_t>::max() - sum) return false;
    sum += o;
  }
  if (sum != m.total_octets) return false;
  for (size_t i = 0; i < m.uidls.size(); ++i) {
    if (!mbox::IsValidUidl(m.uidls[i])) return false;
  }
  return true;
}

}  // namespace

std::string_view StateName(State s) {
  switch (s) {
    case State::kAuthorization:
      return "AUTHORIZATION";
    case State::kWaitAuth:
      return "WAIT-AUTH";
    case State::kTransaction:
      return "TRANSACTION";
    case State::kWaitRetr:
      return "WAIT-RETR";
    case State::kWaitCommit:
      return "WAIT-COMMIT";
    case State::kWaitTls:
      return "WAIT-TLS";
    case State::kSasl:
      return "SASL";
    case State::kWaitScram:
      return "WAIT-SCRAM";
    case State::kClosed:
      return "CLOSED";
  }
  return "?";
}

std::string ErrorLine(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      // The same text whether the user is unknown or the password wrong (RFC 1939 §13).
      return "-ERR [AUTH] Authentication failed\r\n";
    case absl::StatusCode::kResourceExhausted:
      return "-ERR [IN-USE] Maildrop is in use by another session\r\n";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
      return "-ERR [SYS/TEMP] Temporary server failure, try again later\r\n";
    default:
      return "-ERR [SYS/PERM] Server failure, contact the administrator\r\n";
  }
}

// Allowed states and argument shapes live here, so Dispatch rejects wrong-state, bad-arity and
// bad-number commands in one place and the handlers only see valid, live message numbers.
const Session::CommandSpec Session::kCommands[] = {
    {"USER", kAuth, ArgShape::kString, &Session::User},
    {"PASS", kAuth, ArgShape::kRest, &Session::Pass},
    {"APOP", kAuth, ArgShape::kRest, &Session::Apop},
    {"AUTH", kAuth, ArgShape::kOptRest, &Session::Auth},
    {"STLS", kAuth, ArgShape::kNone, &Session::Stls},
    {"CAPA", kAuth | kTrans, ArgShape::kNone, &Session::Capa},
    {"QUIT", kAuth | kTrans, ArgShape::kNone, &Session::Quit},
    {"STAT", kTrans, ArgShape::kNone, &Session::Stat},
    {"LIST", kTrans, ArgShape::kOptMsgNum, &Session::List},
    {"RETR", kTrans, ArgShape::kMsgNum, &Session::Retr},
    {"DELE", kTrans, ArgShape::kMsgNum, &Session::Dele},
    {"NOOP", kTrans, ArgShape::kNone, &Session::Noop},
    {"RSET", kTrans, ArgShape::kNone, &Session::Rset},
    {"TOP", kTrans, ArgShape::kMsgNumAndLines, &Session::Top},
    {"UIDL", kTrans, ArgShape::kOptMsgNum, &Session::Uidl},
};

std::string Session::Greeting() const {
  if (options_.apop_timestamp.empty()) return "+OK Poplar ready\r\n";
  return "+OK Poplar ready " + options_.apop_timestamp + "\r\n";
}

namespace {
// 32 lowercase hex digits (the form RFC 1939 and RFC 2195 show; uppercase is accepted too).
std::optional<std::string> HexDigest(std::string_view d) {
  if (d.size() != 32) return std::nullopt;
  std::string out;
  for (char c : d) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}
}  // namespace

void Session::EnterState(State next) {
  bool ok = next == State::kClosed;
  switch (state_) {
    case State::kAuthorization:
      ok = ok || next == State::kWaitAuth || next == State::kWaitTls || next == State::kSasl ||
           next == State::kWaitScram;
      break;
    case State::kSasl:
      ok = ok || next == State::kAuthorization || next == State::kWaitAuth ||
           next == State::kWaitScram || next == State::kTransaction;
      break;
    case State::kWaitScram:
      ok = ok || next == State::kSasl || next == State::kAuthorization;
      break;
    case State::kWaitTls:
      ok = ok || next == State::kAuthorization;
      break;
    case State::kWaitAuth:
      ok = ok || next == State::kTransaction || next == State::kAuthorization ||
           next == State::kSasl;
      break;
    case State::kTransaction:
      ok = ok || next == State::kWaitRetr || next == State::kWaitCommit;
      break;
    case State::kWaitRetr:
      ok = ok || next == State::kTransaction;
      break;
    case State::kWaitCommit:
      break;
    case State::kClosed:
      ok = false;
      break;
  }
  POPLAR_CHECK(ok, "a state transition the protocol does not have");
  state_ = next;
}

bool Session::Waiting() const {
  return state_ == State::kWaitAuth || state_ == State::kWaitRetr || state_ == State::kWaitCommit ||
         state_ == State::kWaitScram;
}

Step Session::CloseWith(std::string reply) {
  EnterState(State::kClosed);
  queue_.clear();
  return Step{std::move(reply), Close{}};
}

Step Session::CountBad(Step step) {
  if (StartsWith(step.reply, "-ERR")) {
    if (++bad_commands_ >= options_.max_bad_commands) {
      return CloseWith("-ERR Too many bad commands\r\n");
    }
  } else if (StartsWith(step.reply, "+OK")) {
    bad_commands_ = 0;
  }
  return step;
}

Step Session::OnLine(std::string_view line) {
  if (state_ == State::kClosed) return {};
  // Plaintext that followed STLS: possibly injected by a man in the middle (RFC 2595 §3,
  // CVE-2011-0411 and kin). Never executed, never queued.
  if (state_ == State::kWaitTls) return {};
  if (Waiting() || !queue_.empty()) {
    // The I/O layer stops reading while !CanAcceptLine(); past the bound it broke that
    // contract, and the only bounded answer is to hang up (no reply: it would be out of order).
    if (queue_.size() >= options_.max_queued_lines) return CloseWith("");
    // One octet more than the limit keeps "line too long" detectable and the queue bounded.
    queue_.emplace_back(line.substr(0, kMaxCommandLine + 1));
    return {};
  }
  return Process(line);
}

Step Session::Process(std::string_view line) {
  if (state_ == State::kSasl) return CountBad(SaslResponse(line));
  const bool in_authorization = state_ == State::kAuthorization;
  Step step = Dispatch(line);
  return in_authorization ? CountBad(std::move(step)) : step;
}

Step Session::Dispatch(std::string_view line) {
  const ParsedCommand parsed = ParseCommand(line);
  switch (parsed.error) {
    case ParseError::kNone:
      break;
    case ParseError::kTooLong:
      return Reply("-ERR Command line too long\r\n");
    case ParseError::kNul:
      return Reply("-ERR NUL byte in command\r\n");
    case ParseError::kBadVerb:
      return Reply("-ERR Unknown command\r\n");
  }
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& c : kCommands) {
    if (c.verb == parsed.command.verb) spec = &c;
  }
  if (spec == nullptr) return Reply("-ERR Unknown command\r\n");
  if ((spec->allowed & Bit(state_)) == 0) return Reply("-ERR Command not valid in this state\r\n");
  const ParsedArgs parsed_args = SplitArgs(spec->shape, parsed.command.args);
  switch (parsed_args.error) {
    case ArgError::kNone:
      break;
    case ArgError::kSyntax:
      return Reply("-ERR Syntax error\r\n");
    case ArgError::kBadNumber:
      return Reply("-ERR Invalid number\r\n");
  }
  const Args& args = parsed_args.args;
  if (args.msg) {
    const uint32_t n = *args.msg;
    if (n == 0 || n > maildrop_.count) return Reply("-ERR No such message\r\n");
    if (Deleted(n - 1)) return Reply("-ERR message " + Num(n) + " already deleted\r\n");
  }
  return (this->*(spec->run))(args);
}

Step Session::Drain(Step acc) {
  while (!queue_.empty() && state_ != State::kClosed && !Waiting()) {
    const std::string line = std::move(queue_.front());
    queue_.pop_front();
    Step step = Process(line);
    acc.reply += step.reply;
    if (!std::holds_alternative<std::monostate>(step.action)) {
      acc.action = std::move(step.action);
      break;
    }
  }
  return acc;
}

Step Session::OnAuthResult(const absl::Status& status, Maildrop maildrop,
                           std::string server_signature) {
  if (state_ == State::kClosed) return {};
  POPLAR_CHECK(state_ == State::kWaitAuth, "an authentication answer nobody asked for");
  const bool scram = sasl_ == SaslStep::kScramFinal;
  sasl_ = SaslStep::kNone;
  if (status.ok()) {
    if (!ValidMaildrop(maildrop) || scram != !server_signature.empty()) {
      // Lease granted but the snapshot is unusable: hang up so the indexer releases it.
      return CloseWith(ErrorLine(absl::InternalError("malformed maildrop")));
    }
    if (scram) {
      // RFC 5034 §4: the server's final data goes out as a challenge; +OK follows the client's
      // empty answer, which also proves the client accepted the server's signature.
      scram_maildrop_ = std::move(maildrop);
      sasl_ = SaslStep::kScramAck;
      EnterState(State::kSasl);
      return Drain(
          Reply("+ " + sasl::Base64Encode(sasl::ScramServerFinal(server_signature)) + "\r\n"));
    }
    EnterState(State::kTransaction);
    return EnterTransaction(std::move(maildrop), {});
  }
  EnterState(State::kAuthorization);
  // An unknown user must look exactly like a wrong password.
  const bool credentials = absl::IsUnauthenticated(status) || absl::IsNotFound(status) ||
                           absl::IsPermissionDenied(status);
  const std::string error = ErrorLine(credentials ? absl::UnauthenticatedError("") : status);
  // USER's "+OK" resets the consecutive-error count, so logins get their own cap.
  if (credentials && ++auth_failures_ >= options_.max_auth_failures) return CloseWith(error);
  Step step = CountBad(Reply(error));
  if (state_ == State::kClosed) return step;
  return Drain(std::move(step));
}

Step Session::EnterTransaction(Maildrop maildrop, Step prefix) {
  maildrop_ = std::move(maildrop);
  deleted_.assign(maildrop_.count, false);
  live_count_ = maildrop_.count;
  live_octets_ = maildrop_.total_octets;
  prefix.reply +=
      "+OK maildrop has " + Num(live_count_) + " messages (" + Num(live_octets_) + " octets)\r\n";
  return Drain(std::move(prefix));
}

Step Session::OnScramLookup(const absl::Status& status, std::string salt, uint32_t iterations,
                            std::string server_nonce) {
  if (state_ == State::kClosed) return {};
  POPLAR_CHECK(state_ == State::kWaitScram, "a SCRAM answer nobody asked for");
  if (!status.ok()) {
    sasl_ = SaslStep::kNone;
    EnterState(State::kAuthorization);
    return Drain(CountBad(Reply(ErrorLine(status))));
  }
  scram_nonce_ = scram_client_nonce_ + server_nonce;
  scram_server_first_ = sasl::ScramServerFirst(scram_nonce_, salt, iterations);
  sasl_ = SaslStep::kScramFinal;
  EnterState(State::kSasl);
  return Drain(Reply("+ " + sasl::Base64Encode(scram_server_first_) + "\r\n"));
}

Step Session::OnRetrDone(const absl::Status& status) {
  if (state_ == State::kClosed) return {};
  POPLAR_CHECK(state_ == State::kWaitRetr, "a RETR/TOP answer nobody asked for");
  // The "+OK" is already out: a body cut short can only be signalled by hanging up.
  if (!status.ok()) return CloseWith("");
  EnterState(State::kTransaction);
  return Drain({});
}

Step Session::OnRetrRefused(const absl::Status& status) {
  if (state_ == State::kClosed) return {};
  POPLAR_CHECK(state_ == State::kWaitRetr, "a RETR/TOP answer nobody asked for");
  EnterState(State::kTransaction);
  return Drain(Reply(ErrorLine(status)));
}

Step Session::OnTlsStarted() {
  if (state_ == State::kClosed) return {};
  POPLAR_CHECK(state_ == State::kWaitTls, "a TLS answer nobody asked for");
  options_.tls_active = true;
  options_.allow_plaintext = true;  // credentials now travel encrypted
  user_.reset();
  queue_.clear();
  EnterState(State::kAuthorization);
  return {};
}

Step Session::OnCommitResult(const absl::Status& status) {
  if (state_ == State::kClosed) return {};
  POPLAR_CHECK(state_ == State::kWaitCommit, "a commit answer nobody asked for");
  return CloseWith(status.ok() ? std::string(kSignOff) : ErrorLine(status));
}

std::string Session::Capabilities() const {
  std::string caps = "TOP\r\nUIDL\r\n";
  // STLS only where it can still be used (RFC 2595 §4: not once TLS is active).
  if (options_.tls_available && !options_.tls_active && state_ == State::kAuthorization) {
    caps += "STLS\r\n";
  }
  if (options_.allow_plaintext) caps += "USER\r\n";
  if (state_ == State::kAuthorization) {
    caps += "SASL SCRAM-SHA-256";
    if (!options_.apop_timestamp.empty()) caps += " CRAM-MD5";
    if (options_.allow_plaintext) caps += " PLAIN LOGIN";
    caps += "\r\n";
  }
  caps += "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n";
  // Not before login: the implementation name is an information leak (RFC 2449 §6.9).
  if (state_ == State::kTransaction) caps += "IMPLEMENTATION Poplar\r\n";
  return caps;
}

Step Session::User(const Args& args) {
  if (!options_.allow_plaintext) {
    return Reply("-ERR [AUTH] Plaintext authentication disallowed on this connection\r\n");
  }
  user_ = std::string(args.text);
  return Reply("+OK\r\n");  // for every name: USER must not reveal which exist (RFC 1939 §13)
}

Step Session::Pass(const Args& args) {
  if (!options_.allow_plaintext) {
    return Reply("-ERR [AUTH] Plaintext authentication disallowed on this connection\r\n");
  }
  if (!user_) return Reply("-ERR USER first\r\n");
  std::string user = std::move(*user_);
  user_.reset();
  return StartLogin(std::move(user), std::string(args.text));
}

Step Session::StartLogin(std::string user, std::string password) {
  EnterState(State::kWaitAuth);
  return Step{"", AuthRequest{std::move(user), std::move(password), std::nullopt, std::nullopt}};
}

// ---- AUTH (RFC 5034). PLAIN and LOGIN carry the password itself, so they follow the same
// plaintext policy as USER/PASS and are offered only where it allows them.

namespace {
constexpr size_t kMaxSaslLine = 8192;  // as Dovecot; base64 of any sane PLAIN message fits
constexpr std::string_view kPlaintextRefused =
    "-ERR [AUTH] Plaintext authentication disallowed on this connection\r\n";
}  // namespace

size_t Session::MaxLineLength() const {
  return state_ == State::kSasl ? kMaxSaslLine : kMaxCommandLine;
}

Step Session::Auth(const Args& args) {
  std::string_view rest = args.text;
  if (rest.empty()) {
    // A bare AUTH lists the mechanisms (RFC 1734 style; old Outlook sends it).
    std::string list = "+OK\r\n";
    list += "SCRAM-SHA-256\r\n";
    if (!options_.apop_timestamp.empty()) list += "CRAM-MD5\r\n";
    if (options_.allow_plaintext) list += "PLAIN\r\nLOGIN\r\n";
    return Reply(list + ".\r\n");
  }
  const size_t space = rest.find(' ');
  const std::string_view mechanism = rest.substr(0, space);
  std::optional<std::string_view> initial;
  if (space != std::string_view::npos) initial = rest.substr(space + 1);
  return SaslStart(mechanism, initial);
}

Step Session::SaslStart(std::string_view mechanism, std::optional<std::string_view> initial) {
  auto is = [&](std::string_view name) {
    if (mechanism.size() != name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
      if (std::toupper(static_cast<unsigned char>(mechanism[i])) != name[i]) return false;
    }
    return true;
  };
  const bool plain = is("PLAIN");
  const bool login = is("LOGIN");
  if (is("CRAM-MD5") && !options_.apop_timestamp.empty()) {
    // Like APOP, never shows the password; the challenge is the greeting's timestamp.
    user_.reset();
    EnterState(State::kSasl);
    sasl_ = SaslStep::kCramMd5;
    if (initial) return SaslAbort("-ERR CRAM-MD5 takes no initial response\r\n");
    return Reply("+ " + sasl::Base64Encode(options_.apop_timestamp) + "\r\n");
  }
  if (is("SCRAM-SHA-256")) {
    // Never reveals the password, so it is offered in the clear too.
    user_.reset();
    EnterState(State::kSasl);
    sasl_ = SaslStep::kScramFirst;
    if (initial) return SaslResponse(*initial);
    return Reply("+ \r\n");
  }
  if (!plain && !login) return Reply("-ERR Unrecognized authentication mechanism\r\n");
  if (!options_.allow_plaintext) return Reply(std::string(kPlaintextRefused));
  user_.reset();
  EnterState(State::kSasl);
  if (plain) {
    sasl_ = SaslStep::kPlain;
    if (initial) return SaslResponse(*initial == "=" ? std::string_view() : *initial);
    return Reply("+ \r\n");
  }
  sasl_ = SaslStep::kLoginUser;
  if (initial) return SaslResponse(*initial);
  return Reply("+ VXNlcm5hbWU6\r\n");  // "Username:"
}

Step Session::SaslAbort(std::string reply) {
  if (sasl_ == SaslStep::kScramAck) {
    // The lease is held: the only clean way out is to hang up (the I/O layer then ends it).
    sasl_ = SaslStep::kNone;
    scram_maildrop_ = {};
    return CloseWith(std::move(reply));
  }
  sasl_ = SaslStep::kNone;
  sasl_user_.clear();
  EnterState(State::kAuthorization);
  return Reply(std::move(reply));
}

Step Session::SaslResponse(std::string_view line) {
  if (line == "*") return SaslAbort("-ERR Authentication cancelled\r\n");
  if (line.size() > kMaxSaslLine) return SaslAbort("-ERR SASL response too long\r\n");
  if (sasl_ == SaslStep::kScramAck) {
    if (!line.empty()) return SaslAbort("-ERR Expected an empty response\r\n");
    sasl_ = SaslStep::kNone;
    EnterState(State::kTransaction);
    Maildrop m = std::move(scram_maildrop_);
    scram_maildrop_ = {};
    return EnterTransaction(std::move(m), {});
  }
  std::optional<std::string> decoded = sasl::Base64Decode(line);
  if (!decoded) return SaslAbort("-ERR Invalid base64 in SASL response\r\n");
  switch (sasl_) {
    case SaslStep::kPlain:
      return SaslPlain(*decoded);
    case SaslStep::kLoginUser:
      if (decoded->empty() || decoded->size() > 255)
        return SaslAbort("-ERR [AUTH] Authentication failed\r\n");
      sasl_user_ = std::move(*decoded);
      sasl_ = SaslStep::kLoginPassword;
      return Reply("+ UGFzc3dvcmQ6\r\n");  // "Password:"
    case SaslStep::kLoginPassword: {
      std::string user = std::move(sasl_user_);
      sasl_user_.clear();
      sasl_ = SaslStep::kNone;
      return StartLogin(std::move(user), std::move(*decoded));
    }
    case SaslStep::kScramFirst:
      return ScramFirst(*decoded);
    case SaslStep::kCramMd5:
      return CramMd5(*decoded);
    case SaslStep::kScramFinal:
      return ScramFinal(*decoded);
    case SaslStep::kScramAck:
    case SaslStep::kNone:
      break;
  }
  POPLAR_UNREACHABLE("kSasl state without a SASL step");
}

Step Session::ScramFirst(std::string_view decoded) {
  std::optional<sasl::ScramClientFirst> first = sasl::ParseScramClientFirst(decoded);
  if (!first || first->user.size() > 255)
    return SaslAbort("-ERR Invalid SCRAM client-first message\r\n");
  scram_gs2_ = std::move(first->gs2_header);
  scram_client_first_bare_ = std::move(first->bare);
  scram_client_nonce_ = std::move(first->nonce);
  sasl_user_ = first->user;
  EnterState(State::kWaitScram);
  return Step{"", ScramLookup{std::move(first->user)}};
}

Step Session::ScramFinal(std::string_view decoded) {
  std::optional<sasl::ScramClientFinal> final_msg = sasl::ParseScramClientFinal(decoded);
  // The nonce must be ours and the channel-binding field must repeat the gs2 header (no
  // channel binding is offered).
  if (!final_msg || final_msg->nonce != scram_nonce_ || final_msg->channel_binding != scram_gs2_) {
    return SaslAbort("-ERR [AUTH] Authentication failed\r\n");
  }
  AuthRequest request;
  request.user = std::move(sasl_user_);
  sasl_user_.clear();
  request.scram = ScramProof{
      scram_client_first_bare_ + "," + scram_server_first_ + "," + final_msg->without_proof,
      std::move(final_msg->proof)};
  EnterState(State::kWaitAuth);  // sasl_ stays kScramFinal: OnAuthResult expects a signature
  return Step{"", std::move(request)};
}

Step Session::SaslPlain(std::string_view decoded) {
  std::optional<sasl::PlainCredentials> c = sasl::ParsePlain(decoded);
  // Acting as another user (a non-empty authzid that differs) is not offered.
  if (!c || (!c->authzid.empty() && c->authzid != c->authcid)) {
    return SaslAbort("-ERR [AUTH] Authentication failed\r\n");
  }
  sasl_ = SaslStep::kNone;
  return StartLogin(std::move(c->authcid), std::move(c->password));
}

Step Session::Quit(const Args&) {
  if (state_ == State::kAuthorization) return CloseWith(std::string(kSignOff));
  CommitRequest request;
  for (uint32_t i = 0; i < maildrop_.count; ++i) {
    if (Deleted(i)) request.deleted.push_back(i);
  }
  EnterState(State::kWaitCommit);
  return Step{"", std::move(request)};
}

Step Session::Stat(const Args&) {
  return Reply("+OK " + Num(live_count_) + " " + Num(live_octets_) + "\r\n");
}

Step Session::List(const Args& args) {
  if (args.msg) {
    return Reply("+OK " + Num(*args.msg) + " " + Num(maildrop_.octets[*args.msg - 1]) + "\r\n");
  }
  std::string reply =
      "+OK " + Num(live_count_) + " messages (" + Num(live_octets_) + " octets)\r\n";
  reply.reserve(reply.size() + maildrop_.count * 16);
  for (uint32_t i = 0; i < maildrop_.count; ++i) {
    if (!Deleted(i)) absl::StrAppend(&reply, i + 1, " ", maildrop_.octets[i], "\r\n");
  }
  reply += ".\r\n";
  return Reply(std::move(reply));
}

Step Session::Retr(const Args& args) {
  const uint32_t index = *args.msg - 1;
  EnterState(State::kWaitRetr);
  return Step{
      "", RetrRequest{index, std::nullopt, "+OK " + Num(maildrop_.octets[index]) + " octets\r\n"}};
}

Step Session::Top(const Args& args) {
  EnterState(State::kWaitRetr);
  return Step{"", RetrRequest{*args.msg - 1, args.lines, "+OK\r\n"}};
}

Step Session::Dele(const Args& args) {
  const uint32_t index = *args.msg - 1;
  deleted_[index] = true;
  --live_count_;
  live_octets_ -= maildrop_.octets[index];
  return Reply("+OK message " + Num(*args.msg) + " deleted\r\n");
}

Step Session::Noop(const Args&) { return Reply("+OK\r\n"); }

Step Session::Rset(const Args&) {
  deleted_.assign(maildrop_.count, false);
  live_count_ = maildrop_.count;
  live_octets_ = maildrop_.total_octets;
  return Reply("+OK maildrop has " + Num(live_count_) + " messages (" + Num(live_octets_) +
               " octets)\r\n");
}

Step Session::Uidl(const Args& args) {
  if (args.msg) {
    return Reply(
        absl::StrCat("+OK ", *args.msg, " ", Absl(maildrop_.uidls[*args.msg - 1]), "\r\n"));
  }
  // StrAppend formats numbers in place: a 100,000-line listing makes no temporary strings.
  std::string reply = "+OK\r\n";
  reply.reserve(maildrop_.count * 32);
  for (uint32_t i = 0; i < maildrop_.count; ++i) {
    if (!Deleted(i)) absl::StrAppend(&reply, i + 1, " ", Absl(maildrop_.uidls[i]), "\r\n");
  }
  reply += ".\r\n";
  return Reply(std::move(reply));
}

Step Session::Capa(const Args&) {
  return Reply("+OK Capability list follows\r\n" + Capabilities() + ".\r\n");
}

Step Session::Apop(const Args& args) {
  if (options_.apop_timestamp.empty()) return Reply("-ERR APOP not available on this server\r\n");
  const std::string_view rest = args.text;
  const size_t space = rest.rfind(' ');
  std::optional<std::string> digest;
  if (space != std::string_view::npos && space > 0) digest = HexDigest(rest.substr(space + 1));
  if (!digest || rest.substr(0, space).find(' ') != std::string_view::npos) {
    return Reply("-ERR Usage: APOP name digest\r\n");
  }
  user_.reset();
  EnterState(State::kWaitAuth);
  AuthRequest request{
      std::string(rest.substr(0, space)), "", std::nullopt,
      ChallengeDigest{ChallengeDigest::Kind::kApop, options_.apop_timestamp, *digest}};
  return Step{"", std::move(request)};
}

Step Session::CramMd5(std::string_view decoded) {
  // RFC 2195: "user SP digest", the digest being the last space-separated word.
  const size_t space = decoded.rfind(' ');
  std::optional<std::string> digest;
  if (space != std::string_view::npos && space > 0 && space <= 255)
    digest = HexDigest(decoded.substr(space + 1));
  if (!digest) return SaslAbort("-ERR [AUTH] Authentication failed\r\n");
  sasl_ = SaslStep::kNone;
  EnterState(State::kWaitAuth);
  AuthRequest request{
      std::string(decoded.substr(0, space)), "", std::nullopt,
      ChallengeDigest{ChallengeDigest::Kind::kCramMd5, options_.apop_timestamp, *digest}};
  return Step{"", std::move(request)};
}

Step Session::Stls(const Args&) {
  if (options_.tls_active) return Reply("-ERR Command not permitted when TLS active\r\n");
  if (!options_.tls_available) return Reply("-ERR STLS not available on this server\r\n");
  // Whatever came before is forgotten, and whatever was pipelined after STLS is dropped.
  user_.reset();
  queue_.clear();
  EnterState(State::kWaitTls);
  return Step{"+OK Begin TLS negotiation\r\n", StartTls{}};
}

}  // namespace poplar::pop3
