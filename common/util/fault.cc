#include "common/util/fault.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <utility>

namespace poplar {

bool ParseFaultSpec(std::string_view text, FaultSpec* out) {
  if (text.empty()) return false;
  size_t colon = text.rfind(':');
  FaultSpec s;
  s.point = text.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view n = text.substr(colon + 1);
    int v = 0;
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
    if (ec != std::errc() || end != n.data() + n.size() || v < 1) return false;
    s.hit = v;
  }
  if (s.point.empty()) return false;
  *out = s;
  return true;
}

namespace {
std::atomic<bool> observed{false};
std::mutex& ObserverMutex() {
  static std::mutex mu;
  return mu;
}
std::function<void(std::string_view)>& Observer() {
  static std::function<void(std::string_view)> f;
  return f;
}
}  // namespace

void SetFaultObserverForTesting(std::function<void(std::string_view point)> observer) {
  std::lock_guard<std::mutex> lock(ObserverMutex());
  observed = static_cast<bool>(observer);
  Observer() = std::move(observer);
}

void FaultPoint(std::string_view point) {
  if (observed) {
    std::function<void(std::string_view)> f;
    {
      std::lock_guard<std::mutex> lock(ObserverMutex());
      f = Observer();
    }
    if (f) f(point);  // outside the mutex: the observer may block
  }
  static const char* env = std::getenv("POPLAR_FAULT");
  if (env == nullptr) return;
  static FaultSpec spec;
  static const bool valid = ParseFaultSpec(env, &spec);
  if (!valid || spec.point != point) return;
  static std::atomic<int> hits{0};
  if (hits.fetch_add(1) + 1 == spec.hit) ::kill(::getpid(), SIGKILL);
}

}  // namespace poplar
