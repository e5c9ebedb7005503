#include "tools/poplarctl/terminal.h"

#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/util/strings.h"

namespace poplar::poplarctl {
namespace {

// The terminal state to restore if a signal arrives while echo is off. Written before the
// handlers are installed, read only by them.
struct termios saved_termios;
volatile sig_atomic_t echo_off = 0;
constexpr int kRestoreSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void RestoreTerminalAndDie(int sig) {
  if (echo_off) tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);  // async-signal-safe
  signal(sig, SIG_DFL);
  raise(sig);
}

// Echo off on stdin for its lifetime; the previous state and signal dispositions come back in
// the destructor.
class NoEcho {
 public:
  NoEcho() {
    if (tcgetattr(STDIN_FILENO, &saved_termios) != 0) return;
    struct sigaction sa = {};
    sa.sa_handler = RestoreTerminalAndDie;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      sigaction(kRestoreSignals[i], &sa, &old_actions_[i]);
    }
    struct termios quiet = saved_termios;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    echo_off = 1;
    active_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    if (!active_) Restore();
  }
  ~NoEcho() {
    if (active_) Restore();
  }
  NoEcho(const NoEcho&) = delete;
  NoEcho& operator=(const NoEcho&) = delete;

 private:
  void Restore() {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
    echo_off = 0;
    for (size_t i = 0; i < std::size(kRestoreSignals); ++i) {
      sigaction(kRestoreSignals[i], &old_actions_[i], nullptr);
    }
  }

  bool active_ = false;
  struct sigaction old_actions_[std::size(kRestoreSignals)] = {};
};

absl::StatusOr<std::string> Prompt(std::string_view prompt) {
  NoEcho no_echo;  // before the prompt: whatever is typed after it must not be echoed
  std::cerr << prompt << std::flush;
  std::string line;
  char c;
  for (;;) {
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    if (line.size() > kMaxPasswordLine) continue;  // keep reading to the end of the line
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > kMaxPasswordLine) {
    Wipe(line);
    return absl::InvalidArgumentError("password too long");
  }
  if (line.empty()) return absl::InvalidArgumentError("empty password");
  return line;
}

}  // namespace

bool IsTerminal(int fd) { return isatty(fd) == 1; }

size_t TerminalWidth(int fd) {
  struct winsize ws = {};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

absl::StatusOr<std::string> ReadPasswordLine(std::istream& in) {
  std::string line;
  char c;
  bool got_any = false;
  while (in.get(c)) {
    got_any = true;
    if (c == '\n') break;
    if (line.size() >= kMaxPasswordLine) {
      Wipe(line);
      return absl::InvalidArgumentError(
          absl::StrCat("password on stdin longer than ", kMaxPasswordLine, " bytes"));
    }
    line.push_back(c);
  }
  if (!got_any) return absl::InvalidArgumentError("no password on stdin");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return absl::InvalidArgumentError("empty password on stdin");
  return line;
}

absl::StatusOr<std::string> ReadNewPassword(std::string_view user) {
  if (!IsTerminal(STDIN_FILENO)) return ReadPasswordLine(std::cin);
  absl::StatusOr<std::string> first = Prompt(absl::StrCat("New password for ", Absl(user), ": "));
  if (!first.ok()) return first.status();
  absl::StatusOr<std::string> second = Prompt("Retype the password: ");
  if (!second.ok()) {
    Wipe(*first);
    return second.status();
  }
  bool same = *first == *second;
  Wipe(*second);
  if (!same) {
    Wipe(*first);
    return absl::InvalidArgumentError("the passwords do not match");
  }
  return first;
}

void Wipe(std::string& secret) {
  explicit_bzero(secret.data(), secret.size());
  secret.clear();
}

}  // namespace poplar::poplarctl
