#include "common/daemon/daemon_main.h"

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/util/check.h"
#include "common/util/errno_status.h"
#include "common/util/log.h"
#include "common/util/strings.h"

ABSL_FLAG(std::string, config, "", "configuration file (textproto); default: the program's own");
ABSL_FLAG(bool, check_config, false, "load and validate the configuration, then exit");

namespace poplar::daemon {
namespace {

sigset_t DaemonSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// absl flag names cannot hold '-', and --check-config is the spelling in deploy/ and the
// tests: the hyphenated form of this file's flags is rewritten to the flag's own name. The
// strings live as long as the process (absl may keep pointers into argv).
std::vector<char*> SpellFlags(int argc, char** argv) {
  static std::deque<std::string>* storage = new std::deque<std::string>();  // stable elements
  std::vector<char*> out;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--check-config" || arg.rfind("--check-config=", 0) == 0) {
      storage->push_back(std::string("--check_config").append(arg.substr(14)));
      out.push_back(storage->back().data());
    } else {
      out.push_back(argv[i]);
    }
  }
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string UsageLine(std::string_view program) {
  return absl::StrCat("usage: ", Absl(program), " [--config FILE] [--check-config]");
}

CommandLine Start(const Program& program, int argc, char** argv) {
  log::Init(program.name);
  // --help lists the flags defined here only (absl's own are under --helpfull).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "common/daemon/");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  usage.version_string = [name = std::string(program.name)] {
    return absl::StrCat(name, " ", POPLAR_VERSION, "\n");
  };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(UsageLine(program.name));
  std::vector<char*> args = SpellFlags(argc, argv);
  std::vector<char*> rest = absl::ParseCommandLine(argc, args.data());
  if (rest.size() > 1) {  // rest[0] is the program
    std::cerr << UsageLine(program.name) << "\n";
    std::exit(2);
  }
  CommandLine line;
  line.config_path = absl::GetFlag(FLAGS_config);
  if (line.config_path.empty()) line.config_path = std::string(program.default_config);
  line.check_config = absl::GetFlag(FLAGS_check_config);
  return line;
}

void BlockSignals() {
  const sigset_t set = DaemonSignals();
  const int err = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  POPLAR_CHECK(err == 0, "pthread_sigmask with a valid set cannot fail");
  POPLAR_CHECK(::signal(SIGPIPE, SIG_IGN) != SIG_ERR, "SIGPIPE can be ignored");
}

int WaitForStop(const std::function<void()>& on_reload) {
  const sigset_t set = DaemonSignals();
  while (true) {
    int sig = 0;
    // sigwait returns its error (EINVAL only: a bad set) rather than setting errno.
    if (const int err = sigwait(&set, &sig); err != 0) {
      log::Error(ErrnoToStatus(err, "sigwait"));
      POPLAR_UNREACHABLE("sigwait with a valid set cannot fail");
    }
    if (sig != SIGHUP) return sig;
    if (on_reload) on_reload();
  }
}

}  // namespace poplar::daemon
