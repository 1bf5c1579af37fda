// ipcx/unique_fd.hpp — a move-only owner of one file descriptor.
//
// -1 means "owns nothing". The destructor closes and never fails; close is not retried on EINTR
// because Linux has already released the descriptor by then.
//
//   ipcx::unique_fd fd(::eventfd(0, EFD_CLOEXEC));
//   if (!fd) return ipcx::fail_errno(errno, "eventfd");
#pragma once

#include <unistd.h>

#include <utility>

namespace ipcx {

class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace ipcx
