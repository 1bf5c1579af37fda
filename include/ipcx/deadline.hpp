// ipcx/deadline.hpp — when a blocking call gives up.
//
// A deadline is a point on the steady clock. It converts implicitly from a duration measured from
// now, so every blocking call reads naturally:
//
//   ch.recv(buffer);                 // waits forever
//   ch.recv(buffer, 50ms);           // gives up with errc::timed_out after 50 ms
//   ch.recv(buffer, ipcx::deadline::at(t));
#pragma once

#include <time.h>

#include <chrono>

namespace ipcx {

class deadline {
 public:
  using clock = std::chrono::steady_clock;

  // Never expires.
  constexpr deadline() noexcept = default;
  template <typename Rep, typename Period>
  deadline(std::chrono::duration<Rep, Period> from_now)  // NOLINT: implicit by design
      : when_(clock::now() + std::chrono::duration_cast<clock::duration>(from_now)) {}

  static constexpr deadline never() noexcept { return {}; }
  // Already expired: the call makes one non-blocking attempt.
  static deadline immediate() noexcept { return at(clock::time_point::min()); }
  static deadline at(clock::time_point when) noexcept {
    deadline d;
    d.when_ = when;
    return d;
  }

  bool is_never() const noexcept { return when_ == clock::time_point::max(); }
  bool expired() const noexcept { return !is_never() && clock::now() >= when_; }
  clock::time_point when() const noexcept { return when_; }

  // Time left, zero when expired; meaningless for never().
  clock::duration remaining() const noexcept {
    // Compared before subtracting: immediate() is time_point::min(), and min() - now overflows.
    auto now = clock::now();
    return when_ > now ? when_ - now : clock::duration::zero();
  }
  // For poll(2): -1 for never, else milliseconds left rounded up so a wait never ends early.
  int poll_timeout_ms() const noexcept;
  // The deadline as an absolute CLOCK_REALTIME time, for calls such as mq_timedreceive.
  timespec realtime() const noexcept;

 private:
  clock::time_point when_ = clock::time_point::max();
};

inline int deadline::poll_timeout_ms() const noexcept {
  if (is_never()) return -1;
  auto left = remaining();
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
}

inline timespec deadline::realtime() const noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(remaining()).count();
  long long ns = static_cast<long long>(now.tv_nsec) + left % 1'000'000'000;
  timespec out{};
  out.tv_sec = now.tv_sec + static_cast<time_t>(left / 1'000'000'000 + ns / 1'000'000'000);
  out.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return out;
}

}  // namespace ipcx
