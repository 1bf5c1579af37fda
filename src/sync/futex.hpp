// Thin wrappers over futex(2) for waiting on a 32-bit word that may live in shared memory.
//
// The ops are the shared ones (FUTEX_WAIT_BITSET / FUTEX_WAKE without FUTEX_PRIVATE_FLAG): the
// kernel keys the wait queue on the physical page, so a waiter in one process is woken by a waker
// in another process that maps the same segment, at whatever address.
//
// Typical use (the caller owns the protocol; a futex only sleeps and wakes):
//
//   while (word.load(std::memory_order_acquire) == kEmpty) {
//     auto woke = ipcx::detail::futex_wait(word, kEmpty, until);
//     if (!woke) return std::unexpected(woke.error());
//     if (!*woke) return ipcx::fail(ipcx::errc::timed_out, ...);
//   }
//
// Memory ordering: futex_wait compares the word with `expected` inside the kernel, atomically with
// queueing the waiter, so a futex_wake issued after a store that changed the word is never lost.
// The wrappers order nothing themselves: the caller pairs its own release store (before waking)
// with its own acquire load (after waking).
#pragma once

#include <atomic>
#include <cstdint>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"

namespace ipcx::detail {

// Sleeps while `word` holds `expected`, until woken or `until` passes.
// Returns true when the caller should look at the word again: woken, the value already differed
// (EAGAIN), or a spurious wake-up. Returns false when the deadline passed. An expired deadline
// makes no system call: it reports whether the word still holds `expected` (false) or not (true).
// EINTR is retried with the same absolute deadline (the timeout is absolute on CLOCK_MONOTONIC, the
// clock of ipcx::deadline), so a signal never stretches the wait.
result<bool> futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, deadline until);

// Wakes up to `count` waiters on `word` (INT_MAX for all). Never fails on a valid, mapped word;
// async-signal-safe.
void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept;

}  // namespace ipcx::detail
