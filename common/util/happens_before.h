// Happens-before edges that ThreadSanitizer cannot see because the synchronisation lives in an
// uninstrumented library. gRPC's callback API promises that a reactor's Start* call happens
// before the reaction it leads to (OnReadDone, OnWriteDone), and every reaction before OnDone;
// libgrpc++ keeps the promise with atomics and locks TSan does not see, so without these edges
// TSan reports e.g. the serialisation inside StartWrite as racing with OnWriteDone freeing the
// message. Each edge says exactly one of gRPC's documented guarantees, keyed by the reactor's
// address; outside a TSan build they compile to nothing.
#ifndef POPLAR_COMMON_UTIL_HAPPENS_BEFORE_H_
#define POPLAR_COMMON_UTIL_HAPPENS_BEFORE_H_

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POPLAR_UNDER_TSAN 1
#endif
#endif

#ifdef POPLAR_UNDER_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace poplar {

// Before handing `sync` to the library (a Start* or Finish call, the end of a reaction).
inline void HappensBefore([[maybe_unused]] const void* sync) {
#ifdef POPLAR_UNDER_TSAN
  __tsan_release(const_cast<void*>(sync));
#endif
}

// Where the library hands it back (the start of a reaction, of OnDone).
inline void HappensAfter([[maybe_unused]] const void* sync) {
#ifdef POPLAR_UNDER_TSAN
  __tsan_acquire(const_cast<void*>(sync));
#endif
}

// A reaction's body: after what came before it, and before what comes after it (the next
// reaction, OnDone). Not for OnDone itself, after which the reactor may be gone.
class Reaction {
 public:
  explicit Reaction(const void* sync) : sync_(sync) { HappensAfter(sync_); }
  ~Reaction() { HappensBefore(sync_); }
  Reaction(const Reaction&) = delete;
  Reaction& operator=(const Reaction&) = delete;

 private:
  const void* sync_;
};

}  // namespace poplar

#endif  // POPLAR_COMMON_UTIL_HAPPENS_BEFORE_H_
