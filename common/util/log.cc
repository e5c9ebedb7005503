#include "common/util/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

namespace poplar::log {
namespace {

// Set once by Init before threads exist; read by every thread afterwards.
std::string* g_program = nullptr;
std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_journal{false};

// Without Init, the executable's own name: a program whose main() does not call Init yet still
// says who it is.
std::string_view Program() {
  if (g_program != nullptr) return *g_program;
  if (program_invocation_short_name != nullptr && *program_invocation_short_name != '\0') {
    return program_invocation_short_name;
  }
  return "poplar";
}

// syslog(3) priorities: LOG_DEBUG 7, LOG_INFO 6, LOG_WARNING 4, LOG_ERR 3.
char Priority(Level level) {
  switch (level) {
    case Level::kDebug:
      return '7';
    case Level::kInfo:
      return '6';
    case Level::kWarning:
      return '4';
    case Level::kError:
      return '3';
  }
  return '6';
}

}  // namespace

void Init(std::string_view program, Level min_level) {
  delete g_program;
  g_program = new std::string(program);
  g_min_level.store(static_cast<int>(min_level));
  g_journal.store(std::getenv("JOURNAL_STREAM") != nullptr);
}

bool Enabled(Level level) { return static_cast<int>(level) >= g_min_level.load(); }

std::string FormatLine(std::string_view program, Level level, std::string_view text) {
  std::string out(program);
  out.append(": ");
  switch (level) {
    case Level::kDebug:
      out.append("debug: ");
      break;
    case Level::kInfo:
      break;
    case Level::kWarning:
      out.append("warning: ");
      break;
    case Level::kError:
      out.append("error: ");
      break;
  }
  for (char c : text) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  out.push_back('\n');
  return out;
}

void Write(Level level, std::string_view line) {
  if (!Enabled(level)) return;
  std::string out;
  if (g_journal.load()) {
    out.push_back('<');
    out.push_back(Priority(level));
    out.push_back('>');
  }
  out.append(FormatLine(Program(), level, line));
  // One write: a line is never split among other threads' lines. A short write to a pipe of
  // less than PIPE_BUF cannot happen; a longer line may be cut by a full disk, and there is
  // nowhere to report that.
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace poplar::log
