// popd's log: one line per event on stderr (journald or the container runtime adds the time
// and the unit). Each line goes out in a single write(2), so lines from different event loops
// never interleave. Callers never pass secrets (design §8).
#ifndef POPLAR_POPD_LOG_H_
#define POPLAR_POPD_LOG_H_

#include <unistd.h>

#include <string>
#include <string_view>

namespace poplar::popd {

inline void Log(std::string_view line) {
  std::string out = "poplar-popd: ";
  out.append(line);
  out.push_back('\n');
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace poplar::popd

#endif  // POPLAR_POPD_LOG_H_
