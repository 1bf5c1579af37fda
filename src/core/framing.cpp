#include "core/framing.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>

#include "core/io.hpp"
#include "core/syscall.hpp"

namespace ipcx::detail {
namespace {

constexpr std::size_t min_buffer = 64 * 1024;

std::uint32_t load_le32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint32_t>(p[i]);
  return v;
}

ssize_t write_some(const stream_end& end, bool blocking, iovec* iov, int count) {
  int fd = blocking ? end.blocking : end.nonblocking;
  if (count == 1) {
    // write/send take the kernel's single-buffer path, measurably cheaper than writev/sendmsg.
    if (end.socket)
      return sys([&] {
        return ::send(fd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT));
      });
    return sys([&] { return ::write(fd, iov->iov_base, iov->iov_len); });
  }
  if (end.socket) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    int flags = MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT);
    return sys([&] { return ::sendmsg(fd, &msg, flags); });
  }
  return sys([&] { return ::writev(fd, iov, count); });
}

ssize_t read_some(const stream_end& end, bool blocking, std::byte* data, std::size_t size) {
  int fd = blocking ? end.blocking : end.nonblocking;
  if (end.socket) return sys([&] { return ::recv(fd, data, size, blocking ? 0 : MSG_DONTWAIT); });
  return sys([&] { return ::read(fd, data, size); });
}

}  // namespace

result<void> framed_stream::send(const stream_end& end, std::span<const std::byte> message,
                                 deadline until) {
  if (message.size() > max_message_)
    return fail(errc::message_too_large, "send", object_,
                std::to_string(message.size()) + " bytes, the channel's maximum is " +
                    std::to_string(max_message_));
  std::byte header[header_size];
  auto size = static_cast<std::uint32_t>(message.size());
  for (std::size_t i = 0; i < header_size; ++i) header[i] = std::byte((size >> (8 * i)) & 0xff);
  iovec iov[2] = {{header, header_size},
                  {const_cast<std::byte*>(message.data()), message.size()}};
  int count = message.empty() ? 1 : 2;
  if (count == 2 && message.size() <= staging_limit) {
    // Copying header and payload together costs less than the kernel's iovec path for frames of
    // this size; larger ones go out with writev as they are.
    if (staging_.size() < header_size + message.size()) staging_.resize(header_size + message.size());
    std::memcpy(staging_.data(), header, header_size);
    std::memcpy(staging_.data() + header_size, message.data(), message.size());
    iov[0] = {staging_.data(), header_size + message.size()};
    count = 1;
  }
  iovec* next = iov;
  bool blocking = until.is_never();
  bool started = false;
  for (;;) {
    ssize_t n = write_some(end, blocking, next, count);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "write", object_);
      if (!started && until.expired()) return fail(errc::timed_out, "send", object_);
      auto ready = wait_for(end.nonblocking, POLLOUT, started ? deadline::never() : until, object_);
      if (!ready) return std::unexpected(ready.error());
      if (!*ready) return fail(errc::timed_out, "send", object_);
      continue;
    }
    started = true;
    auto written = static_cast<std::size_t>(n);
    while (count > 0 && written >= next->iov_len) {
      written -= next->iov_len;
      ++next;
      --count;
    }
    if (count == 0) return {};
    next->iov_base = static_cast<std::byte*>(next->iov_base) + written;
    next->iov_len -= written;
  }
}

result<void> framed_stream::fill(const stream_end& end, std::size_t needed, deadline until) {
  if (buffer_.size() < needed) {
    // Keep the unread bytes, drop the consumed ones, and grow only as far as the frame needs.
    std::vector<std::byte> bigger(std::max(needed, min_buffer));
    if (end_ > begin_) std::memcpy(bigger.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    buffer_ = std::move(bigger);
  } else if (buffer_.size() - begin_ < needed) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  bool blocking = until.is_never();
  for (;;) {
    ssize_t n = read_some(end, blocking, buffer_.data() + end_, buffer_.size() - end_);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return {};
    }
    if (n == 0) {
      if (end_ > begin_)
        return fail(errc::end_of_stream, "recv", object_, "the peer closed in the middle of a message");
      return fail(errc::end_of_stream, "recv", object_);
    }
    if (errno == ECONNRESET) return fail(errc::end_of_stream, "recv", object_, "connection reset");
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "read", object_);
    if (until.expired()) return fail(errc::timed_out, "recv", object_);
    auto ready = wait_for(end.nonblocking, POLLIN, until, object_);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "recv", object_);
  }
}

result<std::size_t> framed_stream::recv(const stream_end& end, std::span<std::byte> out,
                                        deadline until) {
  for (;;) {
    std::size_t have = end_ - begin_;
    if (have >= header_size) {
      std::size_t size = load_le32(buffer_.data() + begin_);
      if (size > max_message_)
        return fail(errc::bad_frame, "recv", object_,
                    "a frame claims " + std::to_string(size) + " bytes, the maximum is " +
                        std::to_string(max_message_));
      if (size > out.size())
        return fail(errc::message_too_large, "recv", object_,
                    "the message has " + std::to_string(size) + " bytes, the buffer " +
                        std::to_string(out.size()));
      if (have >= header_size + size) {
        if (size > 0) std::memcpy(out.data(), buffer_.data() + begin_ + header_size, size);
        begin_ += header_size + size;
        if (begin_ == end_) begin_ = end_ = 0;
        return size;
      }
      auto filled = fill(end, header_size + size, until);
      if (!filled) return std::unexpected(filled.error());
      continue;
    }
    auto filled = fill(end, header_size, until);
    if (!filled) return std::unexpected(filled.error());
  }
}

}  // namespace ipcx::detail
