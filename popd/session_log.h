// The one log line per POP3 session (issue 14), pure: what a session did, as a stable
// key=value line that log shippers parse without a grammar of their own.
//
//   session user=alice client=192.0.2.7 tls=TLSv1.3 mech=PLAIN retrieved=2 retrieved_bytes=5120
//   deleted=1 deleted_bytes=2048 sent_bytes=5301 duration_s=0.412 end=quit reason="quit, ..."
//
// The keys, their order and their meaning are a contract: new keys are only ever appended.
// A value is written bare when it is made of printable ASCII other than space, '"', '\' and
// '='; otherwise it is quoted with '"' and '\' escaped, and control bytes as \xHH. `user=-`: no
// login succeeded. `tls=none`: plaintext. `end` is one of the tokens of SessionResult below;
// `reason` the connection's own words. No secret is ever part of a record: the line holds no
// password, SASL response or challenge.
#ifndef POPLAR_POPD_SESSION_LOG_H_
#define POPLAR_POPD_SESSION_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace poplar::popd {

struct SessionRecord {
  std::string user;        // empty: no successful login
  std::string client;      // the client's address (after PROXY)
  std::string tls;         // "TLSv1.3", ...; empty: plaintext
  std::string mechanism;   // "USER", "PLAIN", "SCRAM-SHA-256", ...; empty: no login
  uint32_t retrieved = 0;  // RETR and TOP
  uint64_t retrieved_bytes = 0;
  uint32_t deleted = 0;  // expunged at QUIT
  uint64_t deleted_bytes = 0;
  uint64_t sent_bytes = 0;  // everything written to the client, before TLS
  double duration_s = 0;
  std::string end;     // SessionResult(...)
  std::string reason;  // free text
};

std::string FormatSessionLine(const SessionRecord& r);

// The end of a connection as a fixed token (also the `result` label of
// poplar_popd_sessions_total), from the connection's close reason: "quit" (QUIT committed),
// "commit_failed", "client_disconnected", "timeout" (no login in time), "autologout",
// "shutdown", "lease_lost" (the indexer ended the session), "no_login" (closed without ever
// logging in, for any other reason), "error".
std::string_view SessionResult(std::string_view reason, bool logged_in);

// The login mechanism a command line starts, or "" for any other line: "USER" for USER,
// "APOP", and the mechanism of AUTH (folded to the known set, else "other"). Only the first two
// words are looked at: an AUTH line's initial response (a credential) is never copied.
std::string_view MechanismOfCommand(std::string_view line);

// The verb of a command line (its first word), for the commands counter.
std::string_view VerbOf(std::string_view line);

}  // namespace poplar::popd

#endif  // POPLAR_POPD_SESSION_LOG_H_
