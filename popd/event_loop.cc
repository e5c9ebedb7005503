#include "popd/event_loop.h"

#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/util/errno_status.h"

namespace poplar::popd {
namespace {

absl::Status Errno(const char* what) { return ErrnoToStatus(errno, what); }

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(std::chrono::milliseconds tick_period,
                                                             std::function<void()> tick) {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_.valid()) return Errno("epoll_create1");
  loop->wake_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loop->wake_.valid()) return Errno("eventfd");
  loop->timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!loop->timer_.valid()) return Errno("timerfd_create");
  itimerspec spec{};
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tick_period).count();
  spec.it_interval.tv_sec = ns / 1000000000;
  spec.it_interval.tv_nsec = ns % 1000000000;
  spec.it_value = spec.it_interval;
  if (timerfd_settime(loop->timer_.get(), 0, &spec, nullptr) != 0) return Errno("timerfd_settime");
  loop->alarm_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!loop->alarm_.valid()) return Errno("timerfd_create");
  loop->tick_ = std::move(tick);
  loop->inbox_->loop_ = loop.get();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // wake
  if (epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, loop->wake_.get(), &ev) != 0)
    return Errno("epoll_ctl");
  ev.data.u64 = 1;  // timer
  if (epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, loop->timer_.get(), &ev) != 0)
    return Errno("epoll_ctl");
  ev.data.u64 = 2;  // alarm
  if (epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, loop->alarm_.get(), &ev) != 0)
    return Errno("epoll_ctl");
  return loop;
}

absl::Status EventLoop::Add(int fd, uint32_t events, Handler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Errno("epoll_ctl(ADD)");
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events, Handler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) return Errno("epoll_ctl(MOD)");
  return absl::OkStatus();
}

void EventLoop::Remove(int fd) { epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  // A full counter (never, at 2^64-1) or EAGAIN still leaves the eventfd readable: no wake lost.
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof one);
}

EventLoop::~EventLoop() {
  std::lock_guard<std::mutex> lock(inbox_->mu_);
  inbox_->loop_ = nullptr;
}

void EventLoop::Inbox::Post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (loop_ != nullptr) loop_->Post(std::move(fn));
}

void EventLoop::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  alarms_.emplace(Clock::now() + delay, std::move(fn));
  ArmAlarm();
}

void EventLoop::ArmAlarm() {
  itimerspec spec{};
  if (!alarms_.empty()) {
    // steady_clock is CLOCK_MONOTONIC on Linux, so its time points arm the timerfd directly.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        alarms_.begin()->first.time_since_epoch())
                        .count();
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  timerfd_settime(alarm_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EventLoop::RunAlarms() {
  uint64_t expirations = 0;
  [[maybe_unused]] ssize_t r = read(alarm_.get(), &expirations, sizeof expirations);
  const Clock::time_point now = Clock::now();
  std::vector<std::function<void()>> due;
  while (!alarms_.empty() && alarms_.begin()->first <= now) {
    due.push_back(std::move(alarms_.begin()->second));
    alarms_.erase(alarms_.begin());
  }
  ArmAlarm();
  for (std::function<void()>& fn : due) fn();
}

void EventLoop::Stop() {
  Post([this] { stop_ = true; });
}

void EventLoop::RunPosted() {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = read(wake_.get(), &count, sizeof count);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(posted_);
  }
  for (std::function<void()>& fn : batch) fn();
}

void EventLoop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_) {
    const int n = epoll_wait(epoll_.get(), events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // only EBADF/EINVAL: a bug; leave rather than spin
    }
    bool wake = false;
    bool tick = false;
    bool alarm = false;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == 0) {
        wake = true;
      } else if (tag == 1) {
        tick = true;
      } else if (tag == 2) {
        alarm = true;
      } else {
        static_cast<Handler*>(events[i].data.ptr)->OnEvents(events[i].events);
      }
    }
    // Handlers may have been deleted by the posted closures or the tick; so both run after the
    // batch of fd events, never between an event's lookup and its dispatch.
    if (wake) RunPosted();
    if (alarm) RunAlarms();
    if (tick) {
      uint64_t expirations = 0;
      [[maybe_unused]] ssize_t r = read(timer_.get(), &expirations, sizeof expirations);
      tick_();
    }
  }
}

}  // namespace poplar::popd
