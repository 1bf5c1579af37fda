// OFD locks on a whole file. See include/ipcx/file_lock.hpp for the contract and the deadline
// trade-off.
#include "ipcx/file_lock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "core/syscall.hpp"

namespace ipcx {
namespace {

using namespace std::chrono_literals;
using detail::sys;

// The whole file, from offset 0 to whatever its end becomes. l_pid must be 0 for OFD locks.
struct flock whole_file(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  fl.l_pid = 0;
  return fl;
}

short type_of(lock_mode mode) {
  return static_cast<short>(mode == lock_mode::shared ? F_RDLCK : F_WRLCK);
}

// F_OFD_SETLK says "held by someone else" with EAGAIN or EACCES (POSIX allows either).
bool is_busy(int errno_value) { return errno_value == EAGAIN || errno_value == EACCES; }

std::unexpected<error> lock_error(int errno_value, const char* operation, const std::string& name,
                                  lock_mode mode) {
  // EBADF on a descriptor that is open: it lacks the access the mode needs.
  if (errno_value == EBADF)
    return std::unexpected(error(std::error_code(EBADF, std::generic_category()), operation, name,
                                 mode == lock_mode::shared
                                     ? "a shared lock needs the file open for reading"
                                     : "an exclusive lock needs the file open for writing"));
  return fail_errno(errno_value, operation, name);
}

void sleep_until(std::chrono::steady_clock::time_point wake) {
  auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(wake.time_since_epoch());
  // steady_clock is CLOCK_MONOTONIC; an absolute wake time keeps an EINTR retry from sleeping
  // longer than planned.
  timespec at{.tv_sec = static_cast<time_t>(since_epoch.count() / 1'000'000'000),
              .tv_nsec = static_cast<long>(since_epoch.count() % 1'000'000'000)};
  (void)sys([&] {
    int failed = ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
    if (failed == 0) return 0;
    errno = failed;  // clock_nanosleep returns its error rather than setting errno
    return -1;
  });
}

}  // namespace

result<file_lock> file_lock::open(std::string_view path, mode_t permissions) {
  std::string name(path);
  if (name.empty() || name.find('\0') != std::string::npos)
    return std::unexpected(error(std::make_error_code(std::errc::invalid_argument), "open", name,
                                 "expected a path without NUL bytes"));
  unique_fd fd(sys([&] {
    return ::open(name.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, permissions & 07777);
  }));
  if (!fd) return fail_errno(errno, "open", name);
  int raw = fd.get();
  return file_lock(std::move(fd), raw, std::move(name));
}

result<file_lock> file_lock::on(int fd) {
  std::string name = "fd " + std::to_string(fd);
  // Checked now so that a bad descriptor fails here rather than at the first lock.
  if (sys([&] { return ::fcntl(fd, F_GETFD); }) < 0)
    return fail_errno(errno, "fcntl(F_GETFD)", name);
  return file_lock(unique_fd(), fd, std::move(name));
}

result<void> file_lock::lock(lock_mode mode, deadline until) {
  struct flock fl = whole_file(type_of(mode));
  if (until.is_never()) {
    if (sys([&] { return ::fcntl(fd_, F_OFD_SETLKW, &fl); }) == 0) return {};
    return lock_error(errno, "fcntl(F_OFD_SETLKW)", name_, mode);
  }
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    if (sys([&] { return ::fcntl(fd_, F_OFD_SETLK, &fl); }) == 0) return {};
    if (!is_busy(errno)) return lock_error(errno, "fcntl(F_OFD_SETLK)", name_, mode);
    if (until.expired()) return fail(errc::timed_out, "file_lock::lock", name_);
    sleep_until(std::min(deadline::clock::now() + pause, until.when()));
    pause = std::min<std::chrono::microseconds>(pause * 2, 2ms);
  }
}

result<bool> file_lock::try_lock(lock_mode mode) {
  struct flock fl = whole_file(type_of(mode));
  if (sys([&] { return ::fcntl(fd_, F_OFD_SETLK, &fl); }) == 0) return true;
  if (is_busy(errno)) return false;
  return lock_error(errno, "fcntl(F_OFD_SETLK)", name_, mode);
}

result<void> file_lock::unlock() {
  struct flock fl = whole_file(F_UNLCK);
  if (sys([&] { return ::fcntl(fd_, F_OFD_SETLK, &fl); }) == 0) return {};
  return fail_errno(errno, "fcntl(F_OFD_SETLK, F_UNLCK)", name_);
}

result<file_lock::guard> file_lock::hold(lock_mode mode, deadline until) {
  auto locked = lock(mode, until);
  if (!locked) return std::unexpected(locked.error());
  return guard(this);
}

}  // namespace ipcx
