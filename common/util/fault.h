// Fault injection for crash tests (reliability.md §6), after Postfix's fault_injection_code.
//
// Compiled into every build and inert unless the environment variable POPLAR_FAULT names a
// point: POPLAR_FAULT=expunge.mid_rewrite:2 makes the process SIGKILL itself the 2nd time it
// reaches FaultPoint("expunge.mid_rewrite") (":N" is optional, default 1). SIGKILL, not abort:
// no destructor, atexit handler or buffered write runs, exactly as after `kill -9` or a power
// cut of the process (the page cache survives, which tests accept: fsync order is checked by
// review, not by this hook).
#ifndef POPLAR_COMMON_UTIL_FAULT_H_
#define POPLAR_COMMON_UTIL_FAULT_H_

#include <functional>
#include <string_view>

namespace poplar {

// What POPLAR_FAULT asks for, parsed; pure, for tests.
struct FaultSpec {
  std::string_view point;
  int hit = 1;
};
bool ParseFaultSpec(std::string_view text, FaultSpec* out);

// Kills the process if POPLAR_FAULT names `point` and this is the requested hit.
void FaultPoint(std::string_view point);

// In-process tests only: `observer` is called with every point reached (before the POPLAR_FAULT
// check), from the thread that reaches it, so a test can pause a step and look at the rest of
// the program meanwhile. Null removes it.
void SetFaultObserverForTesting(std::function<void(std::string_view point)> observer);

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_FAULT_H_
