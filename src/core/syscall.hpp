// The one seam every system call goes through: retries EINTR, and lets tests inject EINTR to
// prove that every caller survives it.
#pragma once

#include <cerrno>
#include <type_traits>

namespace ipcx::detail {

// Tests set this to N to make the next N calls through sys() fail with EINTR before reaching the
// kernel. Thread-local, so a test in one thread does not disturb another.
inline thread_local int injected_eintr = 0;

// Calls `call` until it does not fail with EINTR. `call` returns -1 (or MAP_FAILED-like sentinels
// compared by the caller) and sets errno, as system calls do.
template <typename Call>
inline auto sys(Call&& call) -> decltype(call()) {
  for (;;) {
    if (injected_eintr > 0) [[unlikely]] {
      --injected_eintr;
      errno = EINTR;
      continue;
    }
    auto rc = call();
    if constexpr (std::is_pointer_v<decltype(rc)>) {
      return rc;
    } else {
      if (rc == -1 && errno == EINTR) continue;
      return rc;
    }
  }
}

}  // namespace ipcx::detail
