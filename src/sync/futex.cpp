#include "sync/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "core/syscall.hpp"

namespace ipcx::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "futex words must be plain lock-free 32-bit atomics");
// FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time unless FUTEX_CLOCK_REALTIME is set;
// libstdc++'s steady_clock reads CLOCK_MONOTONIC, so a deadline converts without a clock read.
static_assert(std::chrono::steady_clock::is_steady);

namespace {

std::uint32_t* address_of(std::atomic<std::uint32_t>& word) noexcept {
  return reinterpret_cast<std::uint32_t*>(&word);
}

timespec monotonic(deadline until) noexcept {
  auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(until.when().time_since_epoch()).count();
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

}  // namespace

result<bool> futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, deadline until) {
  if (!until.is_never() && until.expired()) {
    // The kernel rejects a negative absolute time (immediate() is time_point::min()) with EINVAL;
    // an expired deadline needs no system call anyway.
    return word.load(std::memory_order_relaxed) != expected;
  }
  timespec ts{};
  const timespec* timeout = nullptr;
  if (!until.is_never()) {
    ts = monotonic(until);
    timeout = &ts;
  }
  long rc = sys([&] {
    return ::syscall(SYS_futex, address_of(word), FUTEX_WAIT_BITSET, expected, timeout, nullptr,
                     FUTEX_BITSET_MATCH_ANY);
  });
  if (rc == 0) return true;
  switch (errno) {
    case EAGAIN:  // the word no longer held `expected` when the kernel looked: a change to see
      return true;
    case ETIMEDOUT: return false;
    default: return fail_errno(errno, "futex_wait");
  }
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  // FUTEX_WAKE fails only on a bad address or op (EFAULT/EINVAL): a broken invariant of the caller,
  // not a runtime condition, and a waker has nobody to report it to.
  (void)sys([&] {
    return ::syscall(SYS_futex, address_of(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
  });
}

}  // namespace ipcx::detail
