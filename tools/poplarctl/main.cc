// poplarctl: the administrator's command line for poplar-indexer (accounts, mailboxes,
// reindex, verify, sessions, status), over the indexer's Admin gRPC API only. See cli.h for
// the command line and `poplarctl help` for the commands and exit codes.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/poplarctl/admin_client.h"
#include "tools/poplarctl/cli.h"
#include "tools/poplarctl/migrate_check.h"
#include "tools/poplarctl/migrate_config.h"
#include "tools/poplarctl/run.h"
#include "tools/poplarctl/terminal.h"

int main(int argc, char** argv) {
  using namespace poplar::poplarctl;
  // `migrate` reads spool and Qpopper files directly, before any indexer runs: no gRPC.
  if (argc >= 2 && std::string_view(argv[1]) == "migrate") {
    const std::string_view sub = argc >= 3 ? argv[2] : "";
    std::vector<std::string> rest(argv + std::min(argc, 3), argv + argc);
    if (sub == "check") return RunMigrateCheck(rest, std::cout, std::cerr);
    if (sub == "config") return RunMigrateConfig(rest, std::cout, std::cerr);
    std::cerr << "usage: poplarctl migrate check|config ...\n";
    return kExitUsage;
  }
  absl::StatusOr<Command> command =
      ParseCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!command.ok()) {
    std::cerr << "poplarctl: " << command.status().message()
              << "\nRun 'poplarctl help' for usage.\n";
    return kExitUsage;
  }
  if (command->verb == Verb::kHelp) {
    std::cout << UsageText();
    return kExitOk;
  }
  std::string password;
  if (command->credential == CredentialSource::kPassword) {
    absl::StatusOr<std::string> read = ReadNewPassword(command->operand);
    if (!read.ok()) {
      std::cerr << "poplarctl " << VerbName(command->verb) << ": " << read.status().message()
                << "\n";
      return kExitUsage;
    }
    password = std::move(*read);
  }
  AdminClient client(AdminClient::MakeChannel(command->target), command->target);
  Output output{std::cout, std::cerr, IsTerminal(STDERR_FILENO), TerminalWidth(STDERR_FILENO)};
  int code = RunCommand(*command, password, client, output);
  Wipe(password);
  std::cout.flush();
  return code;
}
