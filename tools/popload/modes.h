// popload's modes, one file each (mode_*.cc), and what they share: the error tally, the result
// line's prefix and the POP3 session script. Each Run* prints one "key=value ..." result line
// on stdout and returns the exit code (0 pass, 1 fail, 2 could not run). Usage() in
// popload_core.cc describes the modes.
#ifndef POPLAR_TOOLS_POPLOAD_MODES_H_
#define POPLAR_TOOLS_POPLOAD_MODES_H_

#include <openssl/ssl.h>

#include <map>
#include <string>
#include <string_view>

#include "tools/popload/engine.h"
#include "tools/popload/popload_core.h"

namespace poplar::popload {

// session: connections log in, run the session script, QUIT and start again; rate, latency.
int RunSession(const Options& o, SSL_CTX* ctx);
// download: every message by RETR (a window of them in flight), optionally compared with --mbox.
int RunDownload(const Options& o, SSL_CTX* ctx);
// login: one session script, each step timed.
int RunLogin(const Options& o, SSL_CTX* ctx);
// idle: many connections held open; the server's memory before and after.
int RunIdle(const Options& o, SSL_CTX* ctx);
// stream: the loopback limit, no POP3 (a forked peer writes the mbox over and over).
int RunStream(const Options& o);

// The commands a session and a login run after logging in, in order. Step i is sent with tag
// i + 1, so a response's tag says which step answered.
struct ScriptStep {
  std::string_view command;
  bool multi;  // a multi-line response on +OK
};
inline constexpr ScriptStep kSessionScript[] = {
    {"STAT", false}, {"UIDL", true}, {"LIST", true}, {"QUIT", false}};
inline constexpr long kScriptSteps = sizeof kSessionScript / sizeof kSessionScript[0];
inline constexpr long kStatTag = 1, kUidlTag = 2, kListTag = 3, kQuitTag = 4;
// Sends step `tag` (1-based) of the script.
void SendScriptStep(Engine& engine, Conn& c, long tag);

// Counts failures by reason for stderr (the first 20 reasons verbatim).
class Errors {
 public:
  void Add(const std::string& why);
  long total() const { return total_; }
  void Print() const;

 private:
  long total_ = 0;
  std::map<std::string, long> by_reason_;
};

// "mode=... [label=...] tls=...": the start of every result line.
std::string Prefix(const Options& o);

// The engine for a mode, or nullptr after printing why there is none (exit code 2).
std::unique_ptr<Engine> MakeEngine(const Options& o, SSL_CTX* ctx);

}  // namespace poplar::popload

#endif  // POPLAR_TOOLS_POPLOAD_MODES_H_
