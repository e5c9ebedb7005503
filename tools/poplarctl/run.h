// Runs one parsed poplarctl command against the indexer: builds the request, makes the call
// through AdminClient, renders the reply (render.h) and classifies the outcome into an exit
// code (cli.h). Output goes to the streams given, so tests can drive it against an in-process
// server.
#ifndef POPLAR_TOOLS_POPLARCTL_RUN_H_
#define POPLAR_TOOLS_POPLARCTL_RUN_H_

#include <cstddef>
#include <ostream>
#include <string_view>

#include "tools/poplarctl/admin_client.h"
#include "tools/poplarctl/cli.h"

namespace poplar::poplarctl {

struct Output {
  std::ostream& out;  // the command's result: a table, a line, or the JSON document
  std::ostream& err;  // error lines and reindex progress
  // err is a terminal: reindex redraws one progress line there, cut to `width` columns
  // (0: unknown). Otherwise it gets a plain line whenever the mailbox being indexed changes.
  bool err_is_terminal = false;
  size_t width = 0;
};

// `password` is the new password for accounts add/passwd with CredentialSource::kPassword
// (ignored otherwise). Returns the process exit code. Help is handled by the caller.
int RunCommand(const Command& command, std::string_view password, AdminClient& client,
               Output& output);

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_RUN_H_
