// A process-wide patrol that wakes registered futex sleepers every `period`, so a side that sleeps
// without a deadline still looks at its peer's liveness now and then.
//
// Why not a timed FUTEX_WAIT: arming and cancelling an hrtimer on every sleep costs about 10 % of
// a same-core blocking round trip on a VM (the timer reprogramming traps to the hypervisor), paid
// per message. The patrol pays one timer per period per process instead; a sleeper registers its
// word once (two uncontended mutex operations) and keeps it registered while it may sleep again.
//
// A wake-up from the patrol leaves the word unchanged: the sleeper tells it from a real wake-up
// by the word, and then runs its periodic checks. Waking a word nobody sleeps on costs one system
// call and nothing else. A patrol wake that lands just before a sleeper's FUTEX_WAIT is lost; the
// next period's is not, so a sleeper looks at least once every 2 periods.
//
// The thread starts at the first registration and ends after a few periods with none; a forked
// child starts its own at its next registration. Its state is never destroyed (exit with the
// thread mid-wait is safe).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ipcx::detail {

class periodic_wake {
 public:
  static constexpr std::chrono::milliseconds period{250};

  // Registers `word` for the guard's lifetime. The word must stay mapped until then.
  explicit periodic_wake(std::atomic<std::uint32_t>& word);
  // False when no patrol thread could be started, or in a forked child for its parent's
  // registration: the sleeper must then use a timed wait, or register anew.
  bool active() const noexcept;
  ~periodic_wake();
  periodic_wake(const periodic_wake&) = delete;
  periodic_wake& operator=(const periodic_wake&) = delete;

 private:
  friend class patrol;
  std::atomic<std::uint32_t>* word_;
  bool active_ = false;
  std::uint64_t generation_ = 0;
  periodic_wake* prev_ = nullptr;
  periodic_wake* next_ = nullptr;
};

}  // namespace ipcx::detail
