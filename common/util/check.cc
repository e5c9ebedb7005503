#include "common/util/check.h"

#include <cstdlib>

#include "common/util/log.h"

namespace poplar::internal {

void CheckFailed(const char* file, int line, const char* condition, const char* why) {
  log::Error("CHECK failed at ", file, ":", line, ": ", condition, ": ", why);
  std::abort();
}

}  // namespace poplar::internal
