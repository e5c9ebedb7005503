// ThreadSanitizer build only (POPLAR_TSAN): tells TSan about Debian's absl::Mutex, CondVar and
// Notification, which are compiled without TSan. absl::Mutex is atomics and futexes, invisible
// to an uninstrumented runtime, so without this every field guarded by an absl::Mutex (Poplar's
// and gRPC's, whose grpc_core::Mutex and gpr_mu are absl::Mutex on Debian) would be reported as
// a race. Loaded with LD_PRELOAD (tests/run.sh), it interposes the exported functions, calls the
// real ones (dlsym RTLD_NEXT) and adds the happens-before edges: release before an unlock,
// acquire after a lock. It holds no state and changes no behaviour; in a process without the
// TSan runtime (python, curl) the __tsan_* hooks are absent and it only forwards.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
}

namespace {

void Acquire(const void* addr) {
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(addr));
}
void Release(const void* addr) {
  if (__tsan_release != nullptr) __tsan_release(const_cast<void*>(addr));
}

template <typename Fn>
Fn Real(const char* mangled) {
  void* f = dlsym(RTLD_NEXT, mangled);
  if (f == nullptr) {
    std::fprintf(stderr, "absl_sync_tsan: %s not found: %s\n", mangled, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(f);
}

// The symbols' mangled names follow the inline namespace absl's headers use (Debian:
// absl::debian3), taken from the compiler so they always match the headers.
#define POPLAR_REAL(type, name) static const auto real = Real<type>(name)

// absl evaluates a Condition inside Lock/Await's slow path, with the mutex held, outside our
// Acquire/Release around the calls (and then may release the mutex internally to wait): the
// evaluation is a critical section of its own. (It may run on the unlocking thread.)
struct Guarded {
  const absl::Condition* cond;
  const absl::Mutex* mu;
};
bool EvalGuarded(void* arg) {
  const auto* g = static_cast<const Guarded*>(arg);
  Acquire(g->mu);
  const bool r = g->cond->Eval();
  Release(g->mu);
  return r;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  POPLAR_REAL(void (*)(Mutex*), "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex4LockEv");
  real(this);
  Acquire(this);
}
void Mutex::ReaderLock() {
  POPLAR_REAL(void (*)(Mutex*), "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}
bool Mutex::TryLock() {
  POPLAR_REAL(bool (*)(Mutex*), "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex7TryLockEv");
  const bool ok = real(this);
  if (ok) Acquire(this);
  return ok;
}
bool Mutex::ReaderTryLock() {
  POPLAR_REAL(bool (*)(Mutex*), "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex13ReaderTryLockEv");
  const bool ok = real(this);
  if (ok) Acquire(this);
  return ok;
}
void Mutex::Unlock() {
  POPLAR_REAL(void (*)(Mutex*), "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex6UnlockEv");
  Release(this);
  real(this);
}
void Mutex::ReaderUnlock() {
  POPLAR_REAL(void (*)(Mutex*), "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}
void Mutex::LockWhen(const Condition& cond) {
  POPLAR_REAL(void (*)(Mutex*, const Condition&),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex8LockWhenERKNS0_9ConditionE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  real(this, guarded);
  Acquire(this);
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  POPLAR_REAL(void (*)(Mutex*, const Condition&),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  real(this, guarded);
  Acquire(this);
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  POPLAR_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
              "_ZN4absl" ABSL_TSAN_SHIM_NS
              "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  const bool r = real(this, guarded, timeout);
  Acquire(this);  // held either way
  return r;
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, absl::Time deadline) {
  POPLAR_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
              "_ZN4absl" ABSL_TSAN_SHIM_NS
              "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  const bool r = real(this, guarded, deadline);
  Acquire(this);
  return r;
}
// Await and CondVar::Wait release the mutex while waiting and hold it again on return.
void Mutex::Await(const Condition& cond) {
  POPLAR_REAL(void (*)(Mutex*, const Condition&),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex5AwaitERKNS0_9ConditionE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  Release(this);
  real(this, guarded);
  Acquire(this);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  POPLAR_REAL(bool (*)(Mutex*, const Condition&, absl::Duration),
              "_ZN4absl" ABSL_TSAN_SHIM_NS
              "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  Release(this);
  const bool r = real(this, guarded, timeout);
  Acquire(this);
  return r;
}
bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  POPLAR_REAL(bool (*)(Mutex*, const Condition&, absl::Time),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Guarded g{&cond, this};
  const Condition guarded(&EvalGuarded, const_cast<Guarded*>(&g));
  Release(this);
  const bool r = real(this, guarded, deadline);
  Acquire(this);
  return r;
}
void CondVar::Wait(Mutex* mu) {
  POPLAR_REAL(void (*)(CondVar*, Mutex*),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "7CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  POPLAR_REAL(bool (*)(CondVar*, Mutex*, absl::Duration),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool r = real(this, mu, timeout);
  Acquire(mu);
  return r;
}
bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  POPLAR_REAL(bool (*)(CondVar*, Mutex*, absl::Time),
              "_ZN4absl" ABSL_TSAN_SHIM_NS "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool r = real(this, mu, deadline);
  Acquire(mu);
  return r;
}
void Notification::Notify() {
  POPLAR_REAL(void (*)(Notification*), "_ZN4absl" ABSL_TSAN_SHIM_NS "12Notification6NotifyEv");
  Release(this);
  real(this);
}
void Notification::WaitForNotification() const {
  POPLAR_REAL(void (*)(const Notification*),
              "_ZNK4absl" ABSL_TSAN_SHIM_NS "12Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}
bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  POPLAR_REAL(bool (*)(const Notification*, absl::Duration),
              "_ZNK4absl" ABSL_TSAN_SHIM_NS
              "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool r = real(this, timeout);
  if (r) Acquire(this);
  return r;
}
bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  POPLAR_REAL(bool (*)(const Notification*, absl::Time),
              "_ZNK4absl" ABSL_TSAN_SHIM_NS
              "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool r = real(this, deadline);
  if (r) Acquire(this);
  return r;
}

ABSL_NAMESPACE_END
}  // namespace absl
