#include "core/io.hpp"

#include <fcntl.h>
#include <signal.h>

#include <cstdlib>
#include <mutex>

#include "core/syscall.hpp"

namespace ipcx::detail {

result<bool> wait_for(int fd, short events, deadline until, const std::string& object) {
  pollfd p{.fd = fd, .events = events, .revents = 0};
  for (;;) {
    // The timeout is recomputed on every pass so an EINTR never stretches the deadline.
    int rc = ::poll(&p, 1, until.poll_timeout_ms());
    if (rc > 0) return true;
    if (rc == 0) {
      if (until.expired()) return false;
      continue;  // woke a little early because of millisecond rounding
    }
    if (errno != EINTR) return fail_errno(errno, "poll", object);
  }
}

result<void> set_cloexec(int fd, bool on, const std::string& object) {
  int flags = sys([&] { return ::fcntl(fd, F_GETFD); });
  if (flags < 0) return fail_errno(errno, "fcntl(F_GETFD)", object);
  flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (sys([&] { return ::fcntl(fd, F_SETFD, flags); }) < 0)
    return fail_errno(errno, "fcntl(F_SETFD)", object);
  return {};
}

namespace {
result<void> change_flag(int fd, int flag, bool on, const std::string& object) {
  int flags = sys([&] { return ::fcntl(fd, F_GETFL); });
  if (flags < 0) return fail_errno(errno, "fcntl(F_GETFL)", object);
  flags = on ? flags | flag : flags & ~flag;
  if (sys([&] { return ::fcntl(fd, F_SETFL, flags); }) < 0)
    return fail_errno(errno, "fcntl(F_SETFL)", object);
  return {};
}
}  // namespace

result<void> set_nonblocking(int fd, bool on, const std::string& object) {
  return change_flag(fd, O_NONBLOCK, on, object);
}

result<void> set_flag(int fd, int flag, const std::string& object) {
  return change_flag(fd, flag, true, object);
}

void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      ::sigaction(SIGPIPE, &ignore, nullptr);
    }
  });
}

result<unique_fd> reopen(int fd, int flags, const std::string& object) {
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  unique_fd out(sys([&] { return ::open(proc.c_str(), flags | O_CLOEXEC); }));
  if (!out) return fail_errno(errno, "open", object + " via " + proc);
  // A twin of a packet-mode pipe must write packets too; open() cannot set O_DIRECT on a pipe.
  int original = sys([&] { return ::fcntl(fd, F_GETFL); });
  if (original >= 0 && (original & O_DIRECT)) {
    auto packets = set_flag(out.get(), O_DIRECT, object);
    if (!packets) return std::unexpected(packets.error());
  }
  return out;
}

std::optional<long> read_proc_number(const char* path) {
  unique_fd fd(sys([&] { return ::open(path, O_RDONLY | O_CLOEXEC); }));
  if (!fd) return std::nullopt;
  char text[32];
  ssize_t n = sys([&] { return ::read(fd.get(), text, sizeof text - 1); });
  if (n <= 0) return std::nullopt;
  text[n] = '\0';
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == text) return std::nullopt;
  return value;
}

}  // namespace ipcx::detail
