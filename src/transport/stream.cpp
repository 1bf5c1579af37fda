#include "ipcx/stream.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/io.hpp"
#include "core/syscall.hpp"
#include "ipcx/address.hpp"
#include "transport/socket_common.hpp"

namespace ipcx {
namespace {

using detail::sys;

result<void> check_fifo(int fd, const std::string& object) {
  struct stat st {};
  if (sys([&] { return ::fstat(fd, &st); }) < 0) return fail_errno(errno, "fstat", object);
  if (!S_ISFIFO(st.st_mode))
    return std::unexpected(error(std::make_error_code(std::errc::invalid_argument), "open", object,
                                 "the path is not a FIFO"));
  return {};
}

result<unique_fd> open_fifo_for_writing(const address& where, deadline until) {
  std::string object = where.to_string();
  if (until.is_never()) {
    // The kernel blocks this open until a reader has the FIFO open.
    unique_fd fd(sys([&] { return ::open(where.path.c_str(), O_WRONLY | O_CLOEXEC); }));
    if (!fd) return fail_errno(errno, "open", object);
    auto fifo = check_fifo(fd.get(), object);
    if (!fifo) return std::unexpected(fifo.error());
    return fd;
  }
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    unique_fd fd(
        sys([&] { return ::open(where.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC); }));
    if (fd) {
      auto fifo = check_fifo(fd.get(), object);
      if (!fifo) return std::unexpected(fifo.error());
      // Once open, the descriptor blocks like any other: deadline calls use their own O_NONBLOCK
      // open (stream::nonblocking_fd), so the plain path stays one write.
      auto blocking = detail::set_nonblocking(fd.get(), false, object);
      if (!blocking) return std::unexpected(blocking.error());
      return fd;
    }
    // ENXIO: no reader yet. Nothing can be polled for a reader to arrive, so try again with a
    // growing pause (1 ms to 50 ms) until the deadline.
    if (errno != ENXIO) return fail_errno(errno, "open", object);
    if (until.expired())
      return fail(errc::timed_out, "open", object, "no reader opened the FIFO in time");
    std::this_thread::sleep_for(
        std::min<deadline::clock::duration>(pause, until.remaining()));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace

result<stream> stream::join(std::string_view text, deadline until) {
  auto where = address::parse(text);
  if (!where) return std::unexpected(where.error());
  std::string object = where->to_string();
  switch (where->kind) {
    case mechanism::unix_stream:
    case mechanism::tcp: {
      auto fd = detail::connect_socket(*where, until);
      if (!fd) return std::unexpected(fd.error());
      if (where->kind == mechanism::tcp) {
        auto no_delay = detail::set_no_delay(fd->get(), object);
        if (!no_delay) return std::unexpected(no_delay.error());
      }
      return stream(std::move(*fd), true, std::move(object));
    }
    case mechanism::fifo: {
      detail::ignore_sigpipe_once();  // write(2) on a pipe has no MSG_NOSIGNAL
      auto fd = open_fifo_for_writing(*where, until);
      if (!fd) return std::unexpected(fd.error());
      return stream(std::move(*fd), false, std::move(object));
    }
    default:
      return fail(errc::not_supported, "stream::join", object,
                  "raw streams exist for unix:, tcp:// and fifo:");
  }
}

result<std::pair<stream, stream>> stream::pipe() {
  int fds[2] = {-1, -1};
  if (sys([&] { return ::pipe2(fds, O_CLOEXEC); }) < 0) return fail_errno(errno, "pipe2");
  unique_fd read_end(fds[0]);
  unique_fd write_end(fds[1]);
  detail::ignore_sigpipe_once();  // write(2) on a pipe has no MSG_NOSIGNAL
  std::string object = "pipe:" + std::to_string(fds[0]) + "," + std::to_string(fds[1]);
  return std::pair{stream(std::move(read_end), false, object),
                   stream(std::move(write_end), false, object)};
}

result<int> stream::nonblocking_fd() {
  if (nonblocking_) return nonblocking_.get();
  int flags = sys([&] { return ::fcntl(fd_.get(), F_GETFL); });
  if (flags < 0) return fail_errno(errno, "fcntl(F_GETFL)", object_);
  auto again = detail::reopen(fd_.get(), (flags & O_ACCMODE) | O_NONBLOCK, object_);
  if (!again) {
    // Opening a pipe for writing without a reader is ENXIO; a write would have said EPIPE.
    if (again.error() == std::errc::no_such_device_or_address)
      return fail_errno(EPIPE, "write", object_);
    return std::unexpected(again.error());
  }
  nonblocking_ = std::move(*again);
  return nonblocking_.get();
}

result<std::size_t> stream::read(std::span<std::byte> buffer, deadline until) {
  if (until.is_never()) {
    int fd = fd_.get();
    ssize_t n = socket_ ? sys([&] { return ::recv(fd, buffer.data(), buffer.size(), 0); })
                        : sys([&] { return ::read(fd, buffer.data(), buffer.size()); });
    if (n < 0) return fail_errno(errno, "read", object_);
    return static_cast<std::size_t>(n);
  }
  int fd = fd_.get();
  if (!socket_) {
    auto nonblocking = nonblocking_fd();
    if (!nonblocking) return std::unexpected(nonblocking.error());
    fd = *nonblocking;
  }
  for (;;) {
    ssize_t n = socket_
                    ? sys([&] { return ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT); })
                    : sys([&] { return ::read(fd, buffer.data(), buffer.size()); });
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "read", object_);
    if (until.expired()) return fail(errc::timed_out, "read", object_);
    auto ready = detail::wait_for(fd, POLLIN, until, object_);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "read", object_);
  }
}

result<void> stream::write_all(std::span<const std::byte> data, deadline until) {
  int fd = fd_.get();
  int flags = MSG_NOSIGNAL;
  if (!until.is_never()) {
    if (socket_) {
      flags |= MSG_DONTWAIT;
    } else {
      auto nonblocking = nonblocking_fd();
      if (!nonblocking) return std::unexpected(nonblocking.error());
      fd = *nonblocking;
    }
  }
  std::size_t done = 0;
  while (done < data.size()) {
    const std::byte* from = data.data() + done;
    std::size_t left = data.size() - done;
    ssize_t n = socket_ ? sys([&] { return ::send(fd, from, left, flags); })
                        : sys([&] { return ::write(fd, from, left); });
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (until.is_never() || (errno != EAGAIN && errno != EWOULDBLOCK))
      return fail_errno(errno, "write", object_);
    auto written = [&] {
      return std::to_string(done) + " of " + std::to_string(data.size()) + " bytes written";
    };
    if (until.expired()) return fail(errc::timed_out, "write", object_, written());
    auto ready = detail::wait_for(fd, POLLOUT, until, object_);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "write", object_, written());
  }
  return {};
}

}  // namespace ipcx
