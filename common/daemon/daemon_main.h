// What the main()s of poplar-indexer and poplar-popd share: the command line and the signal
// loop. Each daemon's main() reads its configuration, starts its server, then waits here.
//
// Command line (absl flags): --config FILE (or --config=FILE), --check-config (load and
// validate the file, print "<program>: FILE is valid", exit 0), --help and --version (absl's
// usage flags). A flag absl does not know exits 1 with absl's message; a positional argument
// is a usage error, exit 2.
//
// Signals: SIGTERM and SIGINT stop the daemon, SIGHUP asks it to reload. They are blocked in
// every thread and taken synchronously by the main thread with sigwait(2), so no handler runs
// inside another thread's code and the reload runs on the main thread like the rest of main().
//
// Unlike the rest of common/ (pure code: no sockets, threads or globals), this library touches
// process state: absl's global flags and the process signal mask. It sits here because both
// daemons need it and nothing else links it (its own library, poplar_daemon_main).
#ifndef POPLAR_COMMON_DAEMON_DAEMON_MAIN_H_
#define POPLAR_COMMON_DAEMON_DAEMON_MAIN_H_

#include <functional>
#include <string>
#include <string_view>

namespace poplar::daemon {

struct Program {
  std::string_view name;            // "poplar-popd": log prefix, usage and --version
  std::string_view default_config;  // --config when not given
};

struct CommandLine {
  std::string config_path;
  bool check_config = false;
};

// Calls log::Init(program.name), then parses argv. Exits the process for --help, --version,
// an unknown flag (absl: exit 1) and a positional argument (exit 2).
CommandLine Start(const Program& program, int argc, char** argv);

// The usage line for `program` (pure, for tests).
std::string UsageLine(std::string_view program);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and ignores SIGPIPE (a peer's reset is
// an EPIPE where it happens). Call before any thread starts: threads inherit the mask, so the
// signals reach WaitForStop only.
void BlockSignals();

// Waits for SIGTERM or SIGINT and returns it; each SIGHUP in between runs `on_reload` on this
// thread first. Needs BlockSignals().
int WaitForStop(const std::function<void()>& on_reload);

}  // namespace poplar::daemon

#endif  // POPLAR_COMMON_DAEMON_DAEMON_MAIN_H_
