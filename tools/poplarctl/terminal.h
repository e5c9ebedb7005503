// poplarctl's terminal glue: is a stream a terminal, how wide is it, and reading a new password
// from stdin, never from argv (a command line is visible to every user in ps).
#ifndef POPLAR_TOOLS_POPLARCTL_TERMINAL_H_
#define POPLAR_TOOLS_POPLARCTL_TERMINAL_H_

#include <cstddef>
#include <istream>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace poplar::poplarctl {

// Longest password line read (the indexer accepts 1024 octets; longer input is refused here
// without reading it all).
inline constexpr size_t kMaxPasswordLine = 4096;

bool IsTerminal(int fd);
// Columns of the terminal on `fd`; 0 if unknown.
size_t TerminalWidth(int fd);

// The first line of `in` without its "\n" (or "\r\n"). InvalidArgument if there is no input,
// the line is empty, or longer than kMaxPasswordLine.
absl::StatusOr<std::string> ReadPasswordLine(std::istream& in);

// The new password for `user`: if stdin is a terminal, asks twice on stderr with echo off
// (restored on return and on SIGINT/SIGTERM/SIGHUP) and insists that both agree; otherwise
// ReadPasswordLine(std::cin).
absl::StatusOr<std::string> ReadNewPassword(std::string_view user);

// Overwrites `secret`'s bytes (not optimised away) and empties it.
void Wipe(std::string& secret);

}  // namespace poplar::poplarctl

#endif  // POPLAR_TOOLS_POPLARCTL_TERMINAL_H_
