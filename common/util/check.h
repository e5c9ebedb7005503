// POPLAR_CHECK(cond, why): an invariant whose failure is a bug in Poplar, not an input or
// environment problem (those are absl::Status). It logs where and why through the one logger and
// aborts, so the core dump and the journal say the same thing. Never for anything a client, a
// spool or a configuration can cause.
#ifndef POPLAR_COMMON_UTIL_CHECK_H_
#define POPLAR_COMMON_UTIL_CHECK_H_

namespace poplar::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition, const char* why);
}  // namespace poplar::internal

#define POPLAR_CHECK(cond, why)                                        \
  do {                                                                 \
    if (__builtin_expect(!(cond), 0)) {                                \
      ::poplar::internal::CheckFailed(__FILE__, __LINE__, #cond, why); \
    }                                                                  \
  } while (0)

// For a branch that must not be reached (a state the machine does not have).
#define POPLAR_UNREACHABLE(why) \
  ::poplar::internal::CheckFailed(__FILE__, __LINE__, "unreachable", why)

#endif  // POPLAR_COMMON_UTIL_CHECK_H_
