// libFuzzer target for the POP3 Session (common/pop3/session.h) driven by a fake I/O layer and
// a fake indexer with a three-message maildrop.
//
// The input's first bytes are control bytes (session options and how each answer comes back);
// the rest is split at '\n' into client lines (a trailing '\r' stripped, as popd will). Lines
// are fed while the session takes them; outstanding actions are answered after a number of
// further lines chosen by the control bytes, so pipelined input piles up in every wait state.
// Checks:
//  * nothing crashes or aborts (the Session aborts on an impossible state transition);
//  * every non-empty reply starts with "+OK" or "-ERR", ends with CRLF, has no bare CR or LF,
//    and its first line fits 512 octets (RFC 1939 §3);
//  * the password never appears in any reply (PASS arguments carry a marker byte);
//  * RetrRequest and CommitRequest name messages of the maildrop; commits are ascending;
//  * after Close nothing is replied or requested any more.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "common/pop3/session.h"
#include "tests/fuzz/fuzz_common.h"

namespace poplar::fuzz {
namespace {

using pop3::Maildrop;
using pop3::Session;
using pop3::State;
using pop3::Step;

Maildrop FakeMaildrop() {
  Maildrop m;
  m.count = 3;
  m.octets = {100, 0, 7};
  m.uidls = {"uid-one", "u2", "~"};
  m.total_octets = 107;
  return m;
}

constexpr char kSecretMarker = '\x01';

absl::Status PickStatus(uint8_t b) {
  switch (b % 6) {
    case 0:
    case 1:
      return absl::OkStatus();
    case 2:
      return absl::UnauthenticatedError("x");
    case 3:
      return absl::UnavailableError("x");
    case 4:
      return absl::ResourceExhaustedError("x");
    default:
      return absl::InternalError("x");
  }
}

void CheckReply(std::string_view reply) {
  if (reply.empty()) return;
  // +OK, -ERR, or a SASL challenge "+ base64" (RFC 5034).
  POPLAR_FUZZ_CHECK(reply.substr(0, 3) == "+OK" || reply.substr(0, 4) == "-ERR" ||
                    reply.substr(0, 2) == "+ ");
  POPLAR_FUZZ_CHECK(reply.size() >= 2 && reply.substr(reply.size() - 2) == "\r\n");
  for (size_t i = 0; i < reply.size(); ++i) {
    if (reply[i] == '\r') POPLAR_FUZZ_CHECK(i + 1 < reply.size() && reply[i + 1] == '\n');
    if (reply[i] == '\n') POPLAR_FUZZ_CHECK(i > 0 && reply[i - 1] == '\r');
  }
  POPLAR_FUZZ_CHECK(reply.find("\r\n") + 2 <= 512);
  POPLAR_FUZZ_CHECK(reply.find(kSecretMarker) == std::string_view::npos);
}

class Driver {
 public:
  Driver(Reader* control, Session::Options options) : control_(control), session_(options) {}

  void Line(std::string_view line) {
    if (closed_) {
      POPLAR_FUZZ_CHECK(session_.state() == State::kClosed);
      const Step s = session_.OnLine(line);
      POPLAR_FUZZ_CHECK(s.reply.empty() && std::holds_alternative<std::monostate>(s.action));
      return;
    }
    // Passwords get a marker byte that no reply may contain (replies never echo client text),
    // so a leak shows without false hits on a password that is a substring of some reply.
    std::string marked(line);
    if (marked.size() >= 5 &&
        (marked.compare(0, 5, "PASS ") == 0 || marked.compare(0, 5, "pass ") == 0)) {
      marked.insert(5, 1, kSecretMarker);
    }
    if (!session_.CanAcceptLine() && (control_->Byte() & 1)) Answer();
    Handle(session_.OnLine(marked));
    if (pending_ && delay_-- == 0) Answer();
  }

  void Finish() {
    while (pending_ && !closed_) Answer();
  }

 private:
  void Handle(Step step) {
    POPLAR_FUZZ_CHECK(!closed_ ||
                      (step.reply.empty() && std::holds_alternative<std::monostate>(step.action)));
    CheckReply(step.reply);
    const Maildrop m = FakeMaildrop();
    if (std::holds_alternative<std::monostate>(step.action)) return;
    if (std::holds_alternative<pop3::Close>(step.action)) {
      // Also while an answer is outstanding: pipelined input past the queue bound hangs up.
      POPLAR_FUZZ_CHECK(session_.state() == State::kClosed);
      closed_ = true;
      pending_.reset();
      return;
    }
    POPLAR_FUZZ_CHECK(!pending_);
    if (const auto* r = std::get_if<pop3::RetrRequest>(&step.action)) {
      POPLAR_FUZZ_CHECK(r->message_index < m.count);
      CheckReply(r->ok_line);
      POPLAR_FUZZ_CHECK(r->ok_line.rfind("+OK", 0) == 0);
      POPLAR_FUZZ_CHECK(session_.state() == State::kWaitRetr);
    } else if (const auto* c = std::get_if<pop3::CommitRequest>(&step.action)) {
      for (size_t i = 0; i < c->deleted.size(); ++i) {
        POPLAR_FUZZ_CHECK(c->deleted[i] < m.count);
        if (i > 0) POPLAR_FUZZ_CHECK(c->deleted[i - 1] < c->deleted[i]);
      }
      POPLAR_FUZZ_CHECK(session_.state() == State::kWaitCommit);
    } else if (std::holds_alternative<pop3::ScramLookup>(step.action)) {
      POPLAR_FUZZ_CHECK(session_.state() == State::kWaitScram);
    } else if (std::holds_alternative<pop3::StartTls>(step.action)) {
      // Nothing pipelined may survive STLS (RFC 2595 §3).
      POPLAR_FUZZ_CHECK(session_.state() == State::kWaitTls);
      POPLAR_FUZZ_CHECK(session_.queued_lines() == 0);
    } else {
      POPLAR_FUZZ_CHECK(session_.state() == State::kWaitAuth);
    }
    pending_ = std::move(step.action);
    delay_ = control_->Byte() % 4;
  }

  void Answer() {
    if (!pending_) return;
    const pop3::Action action = std::move(*pending_);
    pending_.reset();
    const absl::Status status = PickStatus(control_->Byte());
    if (const auto* auth = std::get_if<pop3::AuthRequest>(&action)) {
      // A SCRAM login that succeeds comes with the server signature; others without.
      Handle(
          session_.OnAuthResult(status, FakeMaildrop(),
                                auth->scram && status.ok() ? std::string(32, 's') : std::string()));
    } else if (std::holds_alternative<pop3::ScramLookup>(action)) {
      Handle(session_.OnScramLookup(status, "salt", 4096, "servernonce"));
    } else if (std::holds_alternative<pop3::RetrRequest>(action)) {
      // The I/O layer either refuses the message before its +OK (file changed) or streams it.
      if (control_->Byte() % 2 == 0) {
        Handle(session_.OnRetrRefused(status));
      } else {
        Handle(session_.OnRetrDone(status));
      }
    } else if (std::holds_alternative<pop3::CommitRequest>(action)) {
      Handle(session_.OnCommitResult(status));
    } else if (std::holds_alternative<pop3::StartTls>(action)) {
      Handle(session_.OnTlsStarted());
      POPLAR_FUZZ_CHECK(session_.state() == State::kAuthorization);
    }
  }

  Reader* control_;
  Session session_;
  std::optional<pop3::Action> pending_;
  unsigned delay_ = 0;
  bool closed_ = false;
};

}  // namespace
}  // namespace poplar::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  poplar::fuzz::Reader head(data, size);
  const uint8_t flags = head.Byte();
  poplar::pop3::Session::Options options;
  options.allow_plaintext = (flags & 1) == 0;
  options.max_bad_commands = 1 + (flags >> 1) % 12;
  options.max_queued_lines = 1 + (flags >> 4) % 8;
  options.tls_available = (flags & 0x80) != 0;
  if (flags & 0x40) options.apop_timestamp = "<1.2@fuzz>";
  const size_t control_size = head.Byte() % 32;
  const size_t skip = std::min(size, size_t{2} + control_size);
  poplar::fuzz::Reader control(data + std::min(size, size_t{2}), skip - std::min(size, size_t{2}));

  poplar::fuzz::ExactCopy copy(data + skip, size - skip);
  std::string_view rest = copy.view();
  poplar::fuzz::Driver driver(&control, options);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    driver.Line(line);
  }
  driver.Finish();
  return 0;
}
