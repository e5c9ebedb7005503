// One epoll event loop (design §6): popd runs one per core, each on its own thread with its own
// SO_REUSEPORT listener and connections, so connections never move between threads and their
// state needs no locks. Other threads (gRPC completions, signal handling) reach a loop only
// through Post(), which queues a closure and wakes the loop by an eventfd.
//
// Level-triggered: a handler that stops reading (backpressure) simply drops EPOLLIN from its
// interest set with Modify() and gets it back later; nothing is lost between wake-ups.
#ifndef POPLAR_POPD_EVENT_LOOP_H_
#define POPLAR_POPD_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/util/unique_fd.h"

namespace poplar::popd {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;

  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnEvents(uint32_t events) = 0;
  };

  // `tick` runs on the loop every `tick_period` (timeouts are checked there: a second's
  // resolution is plenty for POP3's minute-scale deadlines and costs one wake-up per second).
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(std::chrono::milliseconds tick_period,
                                                           std::function<void()> tick);

  absl::Status Add(int fd, uint32_t events, Handler* handler);
  absl::Status Modify(int fd, uint32_t events, Handler* handler);
  void Remove(int fd);

  // Thread-safe. Closures run on the loop thread, in order.
  void Post(std::function<void()> fn);

  // A handle other threads may keep beyond the loop's life (gRPC completions can arrive after
  // a connection, or the whole loop, is gone): posting through it after the loop is destroyed
  // drops the closure instead of touching freed memory.
  class Inbox {
   public:
    void Post(std::function<void()> fn);

   private:
    friend class EventLoop;
    std::mutex mu_;
    EventLoop* loop_ = nullptr;
  };
  const std::shared_ptr<Inbox>& inbox() const { return inbox_; }
  ~EventLoop();
  // Loop thread only: runs fn once, on the loop, `delay` from now (millisecond precision; a
  // timerfd armed for the earliest one). Whatever fn touches must still exist then: connections
  // go through ConnectionHost::WithConnection.
  void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn);

  // Runs until Stop(). Call from one thread only.
  void Run();
  // Thread-safe; Run() returns after the current iteration.
  void Stop();

 private:
  EventLoop() = default;
  void RunPosted();

  UniqueFd epoll_;
  UniqueFd wake_;   // eventfd
  UniqueFd timer_;  // timerfd: the periodic tick
  UniqueFd alarm_;  // timerfd: the earliest RunAfter
  std::multimap<Clock::time_point, std::function<void()>> alarms_;
  void ArmAlarm();
  void RunAlarms();
  std::function<void()> tick_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  bool stop_ = false;
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
};

}  // namespace poplar::popd

#endif  // POPLAR_POPD_EVENT_LOOP_H_
