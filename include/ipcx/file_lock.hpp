// ipcx/file_lock.hpp — "one process at a time" on a file or device: an OFD lock.
//
// Use it to keep two processes from driving one device, rewriting one file, or running one daemon
// twice. The lock is an open-file-description lock (F_OFD_SETLK / F_OFD_SETLKW) on the whole file:
// it belongs to this file_lock's open of the file, not to the process, so two file_lock objects in
// one process exclude each other too, and closing some other descriptor of the same file (which
// drops a classic POSIX record lock) does not drop it. The kernel releases it when the last
// descriptor of that open goes, which includes the holder's death, even by SIGKILL.
//
//   auto lock = ipcx::file_lock::open("/run/myapp.lock");  // creates the file (0600) if needed
//   auto held = lock->hold(ipcx::lock_mode::exclusive, 2s);  // RAII: unlocked at scope end
//   if (!held) return std::unexpected(held.error());         // errc::timed_out after 2 s
//
// Deadlines: with no deadline, lock() is the plain blocking F_OFD_SETLKW. An expired deadline is
// one F_OFD_SETLK attempt. A finite deadline retries F_OFD_SETLK with sleeps that start at 50 us
// and double up to 2 ms, never past the deadline: the kernel has no timed lock call, and the ways
// to interrupt F_OFD_SETLKW (a timer signal, a thread to cancel) would put a signal handler or a
// thread into the application; polling installs nothing. The price: a lock released during a
// sleep is noticed up to 2 ms late, and a poller has no place in the kernel's queue, so a steady
// stream of F_OFD_SETLKW waiters can keep it out.
//
// Shared locks need the file open for reading, exclusive ones for writing; open() opens it
// read-write. Thread safety: one file_lock is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"
#include "ipcx/unique_fd.hpp"

namespace ipcx {

enum class lock_mode { exclusive, shared };

class file_lock {
 public:
  // Opens (creating with `permissions` if missing) `path` read-write, close-on-exec, without
  // following a final symbolic link (ELOOP if it is one). The file is left behind on close.
  [[nodiscard]] static result<file_lock> open(std::string_view path, mode_t permissions = 0600);
  // Locks through `fd`, which the caller keeps open for as long as this object lives. The lock
  // belongs to fd's open file description: a dup of it shares the lock.
  [[nodiscard]] static result<file_lock> on(int fd);

  // Takes the lock, blocking until the deadline (errc::timed_out). Changes a held lock's mode.
  [[nodiscard]] result<void> lock(lock_mode mode = lock_mode::exclusive, deadline until = {});
  // Takes the lock if nobody holds a conflicting one: true; false without blocking otherwise.
  [[nodiscard]] result<bool> try_lock(lock_mode mode = lock_mode::exclusive);
  // Releases the lock (nothing happens if it is not held).
  [[nodiscard]] result<void> unlock();

  // Releases the lock in its destructor. Holds a reference: the file_lock must outlive it.
  class guard {
   public:
    guard(guard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
    guard& operator=(guard&& other) noexcept {
      if (this != &other) {
        release();
        lock_ = std::exchange(other.lock_, nullptr);
      }
      return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { release(); }

    // Unlocks now (errors, which only a closed descriptor gives, are dropped as in a destructor).
    void release() noexcept {
      if (lock_ != nullptr) (void)std::exchange(lock_, nullptr)->unlock();
    }

   private:
    friend class file_lock;
    explicit guard(file_lock* lock) noexcept : lock_(lock) {}
    file_lock* lock_;
  };
  // lock(mode, until), unlocked when the guard goes.
  [[nodiscard]] result<guard> hold(lock_mode mode = lock_mode::exclusive, deadline until = {});

  int fd() const noexcept { return fd_; }
  // The path given to open(), or "fd N".
  const std::string& name() const noexcept { return name_; }

  file_lock(file_lock&& other) noexcept
      : owned_(std::move(other.owned_)),
        fd_(std::exchange(other.fd_, -1)),
        name_(std::move(other.name_)) {}
  file_lock& operator=(file_lock&& other) noexcept {
    if (this != &other) {
      owned_ = std::move(other.owned_);
      fd_ = std::exchange(other.fd_, -1);
      name_ = std::move(other.name_);
    }
    return *this;
  }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;
  // Closing an owned descriptor releases the lock; a borrowed one keeps it (unlock() first).
  ~file_lock() = default;

 private:
  file_lock(unique_fd owned, int fd, std::string name) noexcept
      : owned_(std::move(owned)), fd_(fd), name_(std::move(name)) {}

  unique_fd owned_;  // open(): the descriptor this object opened; on(): empty
  int fd_ = -1;
  std::string name_;
};

}  // namespace ipcx
