// The one logger of the three programs: one line per event on stderr, each line written with a
// single write(2), so lines from different threads or event loops never interleave (std::cerr
// chains can). journald or the container runtime adds the time and the unit. Under systemd
// (JOURNAL_STREAM names stderr) each line carries its syslog priority as a "<N>" prefix, which
// journald turns into the entry's PRIORITY, so `journalctl -p warning` works. Callers never pass
// secrets (design §8).
//
//   log::Init("poplar-indexer");            // once, in main(), before any thread
//   log::Warning("watch: ", status);        // absl::StrCat arguments, plus absl::Status
#ifndef POPLAR_COMMON_UTIL_LOG_H_
#define POPLAR_COMMON_UTIL_LOG_H_

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace poplar::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Program name (the prefix of every line) and the least level written. Not thread-safe: call it
// before threads start. Without Init the prefix is the executable's name (glibc's
// program_invocation_short_name, e.g. "poplar-indexer") and the level kInfo.
void Init(std::string_view program, Level min_level = Level::kInfo);
bool Enabled(Level level);
// Writes one line (a trailing newline is added; embedded newlines are replaced by spaces so a
// line stays one journal entry).
void Write(Level level, std::string_view line);

// The line a Write(level, text) produces, without the journald prefix (pure, for tests).
std::string FormatLine(std::string_view program, Level level, std::string_view text);

namespace internal {
// absl::Status is not an absl::AlphaNum; everything else passes through to StrCat.
inline std::string Piece(const absl::Status& s) { return s.ToString(); }
template <typename T>
inline const T& Piece(const T& v) {
  return v;
}
inline absl::string_view Piece(std::string_view s) { return absl::string_view(s.data(), s.size()); }
template <typename... Args>
std::string Cat(const Args&... args) {
  return absl::StrCat(Piece(args)...);
}
}  // namespace internal

template <typename... Args>
void Debug(const Args&... args) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, internal::Cat(args...));
}
template <typename... Args>
void Info(const Args&... args) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, internal::Cat(args...));
}
template <typename... Args>
void Warning(const Args&... args) {
  if (Enabled(Level::kWarning)) Write(Level::kWarning, internal::Cat(args...));
}
template <typename... Args>
void Error(const Args&... args) {
  Write(Level::kError, internal::Cat(args...));
}

}  // namespace poplar::log

#endif  // POPLAR_COMMON_UTIL_LOG_H_
