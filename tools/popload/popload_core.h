// The pure parts of popload, the POP3 load generator (tools/popload/popload.cc): option
// parsing, POP3 response parsing, the streaming decoder of multi-line responses (undoes
// dot-stuffing and CRLF while looking for the terminator), message comparison, percentiles and
// /proc text parsing. No sockets, clocks or globals, so tests/unit/popload_core_test.cc drives
// every piece from tables.
#ifndef POPLAR_TOOLS_POPLOAD_POPLOAD_CORE_H_
#define POPLAR_TOOLS_POPLOAD_POPLOAD_CORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poplar::popload {

enum class Mode { kSession, kDownload, kLogin, kIdle, kStream };
enum class TlsMode { kOff, kImplicit, kStls };
enum class AuthMode { kUserPass, kPlain };

struct Options {
  Mode mode = Mode::kSession;
  std::string host = "127.0.0.1";
  int port = 110;
  std::string user = "u%04d";  // may hold one %d / %0Nd: connection i logs in as user (i % users)
  int users = 1;
  std::string password = "benchpw";
  int conns = 1;
  double duration_s = 10;  // session: measuring time; idle: how long connections stay idle
  double warmup_s = 0;     // session: run this long first, not measured
  TlsMode tls = TlsMode::kOff;
  AuthMode auth = AuthMode::kUserPass;
  std::string mbox;              // download: verify against it; stream: the bytes to send
  bool verify = true;            // download: compare every message with --mbox
  long expect = -1;              // login: fail unless STAT reports this many messages
  std::vector<int> server_pids;  // CPU (session, download, login) and memory (idle) of these trees
  int window = 1;                // download: RETR commands in flight per connection
  int concurrency = 64;          // idle: logins in flight while opening
  bool no_login =
      false;  // idle: stop after the greeting (connections, not sessions); CAPA checks them
  double timeout_s = 600;
  std::string cert;  // stream --tls: the server certificate and key of the loopback peer
  std::string key;
  double stream_bytes = 2e9;  // stream: bytes to move
  std::string label;          // echoed in the result line
};

// Parses argv[1..] (argv[0] is not included): MODE then --flag value pairs. nullopt and a
// message in *error for anything unknown, missing or out of range.
std::optional<Options> ParseOptions(const std::vector<std::string>& args, std::string* error);
std::string Usage();
const char* ModeName(Mode mode);
const char* TlsName(TlsMode tls);

// The user name of connection `index`: the pattern's single %d or %0Nd replaced by
// index % users; a pattern without one is used as is ("%%" is a literal %).
std::string UserFor(std::string_view pattern, int index, int users);

// "AUTH PLAIN <base64(\0user\0password)>" (RFC 5034 initial response).
std::string AuthPlainCommand(std::string_view user, std::string_view password);

// A POP3 status line without its CRLF.
struct Status {
  bool ok = false;
  std::string_view text;  // after "+OK" / "-ERR" and one space
};
std::optional<Status> ParseStatus(std::string_view line);

// "+OK 12 3456" -> {12, 3456}.
struct StatReply {
  uint64_t count = 0;
  uint64_t octets = 0;
};
std::optional<StatReply> ParseStat(std::string_view text);

// Streaming decoder of a multi-line response body (the part after the status line): removes
// the stuffed '.' of lines that start with one, turns CRLF into LF, and stops at the ".\r\n"
// terminator. Chunks may split anywhere; the result does not depend on where.
class MultilineDecoder {
 public:
  // Consumes bytes of `in` up to and including the terminator; returns how many. Decoded bytes
  // are appended to *out when out is not null (null: only count and find the end).
  size_t Feed(std::string_view in, std::string* out);
  bool done() const { return state_ == State::kDone; }
  // A line of just "." not followed by CRLF, or a bare CR before the end: not RFC 1939.
  bool malformed() const { return malformed_; }
  uint64_t decoded_bytes() const { return decoded_; }
  uint64_t lines() const { return lines_; }
  void Reset() { *this = MultilineDecoder(); }

 private:
  enum class State { kLineStart, kInLine, kCr, kDot, kDotCr, kDone };
  State state_ = State::kLineStart;
  bool malformed_ = false;
  uint64_t decoded_ = 0;
  uint64_t lines_ = 0;
};

// Offset of the first byte where `got` and `want` differ (the shorter length if one is a
// prefix of the other); nullopt when equal.
std::optional<size_t> FirstDifference(std::string_view got, std::string_view want);

// The p-quantile (0..1) of `values` by the nearest-rank method; 0 for none. Sorts in place.
double Percentile(std::vector<double>& values, double p);

// From the text of /proc/PID/stat: the parent and the CPU ticks of the process itself
// (utime+stime) and of its waited-for children (cutime+cstime).
struct ProcStat {
  int ppid = 0;
  uint64_t self_ticks = 0;
  uint64_t child_ticks = 0;
};
std::optional<ProcStat> ParseProcStat(std::string_view text);

// The number after "KEY:" at the start of a line of /proc/PID/status or smaps_rollup (kB);
// nullopt when the key is absent.
std::optional<uint64_t> ParseKbField(std::string_view text, std::string_view key);

}  // namespace poplar::popload

#endif  // POPLAR_TOOLS_POPLOAD_POPLOAD_CORE_H_
