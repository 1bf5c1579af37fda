#include "core/framing.hpp"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/io.hpp"
#include "core/syscall.hpp"

namespace ipcx::detail {
namespace {

constexpr std::size_t min_buffer = 64 * 1024;

// Packet mode's markers (see "Packet mode" below; `escape` is framed_stream::packet_escape).
constexpr std::byte escape = framed_stream::packet_escape;
constexpr std::byte long_tag{0x01};
constexpr std::size_t long_header = 6;

// A read shorter than a packet would drop the rest of it, so packet reads ask for at least a page.
std::size_t packet_read_size() {
  return std::max<std::size_t>(PIPE_BUF, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
}

ssize_t write_some(stream_end end, bool blocking, iovec* iov, int count) {
  // write/send take the kernel's single-buffer path, measurably cheaper than writev/sendmsg.
  if (count == 1)
    return write_one(end, blocking, static_cast<const std::byte*>(iov->iov_base), iov->iov_len);
  int fd = blocking ? end.blocking : end.nonblocking;
  if (end.socket) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    int flags = MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT);
    return sys([&] { return ::sendmsg(fd, &msg, flags); });
  }
  return sys([&] { return ::writev(fd, iov, count); });
}

}  // namespace

framed_stream::framed_stream(std::size_t max_message, std::string object)
    : max_message_(max_message),
      object_(std::move(object)),
      packet_read_size_(packet_read_size()) {}

result<void> framed_stream::send_slow(stream_end end, std::span<const std::byte> message,
                                      deadline until) {
  if (message.size() > max_message_)
    return fail(errc::message_too_large, "send", object_,
                std::to_string(message.size()) + " bytes, the channel's maximum is " +
                    std::to_string(max_message_));
  if (end.packets) return send_packet(end, message, until);
  std::byte header[header_size];
  store_length(header, message.size());
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
  return write_frame(end, iov, count, until);
}

result<void> framed_stream::write_frame(stream_end end, iovec* iov, int count, deadline until) {
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

result<void> framed_stream::write_rest(stream_end end, std::size_t frame, std::size_t written) {
  iovec rest{staging_.data() + written, frame - written};
  return write_frame(end, &rest, 1, deadline::never());
}

result<void> framed_stream::fill(stream_end end, std::size_t needed, deadline until) {
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
  auto got = read_waiting(end, buffer_.data() + end_, buffer_.size() - end_, until);
  if (!got) return std::unexpected(got.error());
  if (*got == 0) {
    if (end_ > begin_)
      return fail(errc::end_of_stream, "recv", object_, "the peer closed in the middle of a message");
    return fail(errc::end_of_stream, "recv", object_);
  }
  end_ += *got;
  return {};
}

result<std::size_t> framed_stream::read_waiting(stream_end end, std::byte* data, std::size_t size,
                                                deadline until) {
  bool blocking = until.is_never();
  for (;;) {
    ssize_t n = read_some(end, blocking, data, size);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == ECONNRESET) return fail(errc::end_of_stream, "recv", object_, "connection reset");
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "read", object_);
    if (until.expired()) return fail(errc::timed_out, "recv", object_);
    auto ready = wait_for(end.nonblocking, POLLIN, until, object_);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "recv", object_);
  }
}

result<std::size_t> framed_stream::recv_frame(stream_end end, std::span<std::byte> out,
                                              deadline until) {
  for (;;) {
    std::size_t have = end_ - begin_;
    if (have >= header_size) {
      std::size_t size = load_length(buffer_.data() + begin_);
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

namespace ipcx::detail {

// Packet mode (pipes and FIFOs with O_DIRECT): every write of up to PIPE_BUF bytes is one packet
// and every read returns at most one, so the kernel keeps message boundaries and most messages
// need no header at all:
//   verbatim  1..PIPE_BUF bytes whose first byte is not `escape`: the message as it is;
//   stuffed   escape + the message, for messages that start with `escape` (under PIPE_BUF bytes);
//   long      escape, 0x01, 32-bit length, the message: empty messages, messages over PIPE_BUF, and
//             PIPE_BUF-byte ones that start with `escape`. The kernel splits it into page-sized
//             packets, which the reader joins by the length.
result<void> framed_stream::send_packet(stream_end end, std::span<const std::byte> message,
                                        deadline until) {
  std::size_t size = message.size();
  if (is_verbatim_packet(message)) {
    iovec iov{const_cast<std::byte*>(message.data()), size};
    return write_frame(end, &iov, 1, until);
  }
  bool stuffed = size >= 1 && size < PIPE_BUF;  // and so it starts with `escape`
  std::size_t header = stuffed ? 1 : long_header;
  if (size > staging_limit) {
    std::byte prefix[long_header] = {escape, long_tag};
    store_length(prefix + 2, size);
    iovec iov[2] = {{prefix, long_header}, {const_cast<std::byte*>(message.data()), size}};
    return write_frame(end, iov, 2, until);
  }
  if (staging_.size() < header + size) staging_.resize(header + size);
  staging_[0] = escape;
  if (!stuffed) {
    staging_[1] = long_tag;
    store_length(staging_.data() + 2, size);
  }
  if (size > 0) std::memcpy(staging_.data() + header, message.data(), size);
  iovec iov{staging_.data(), header + size};
  return write_frame(end, &iov, 1, until);
}

result<std::size_t> framed_stream::deliver_packet_message(std::span<std::byte> out) {
  std::size_t size = end_;
  if (size > out.size()) {
    packet_pending_ = true;  // kept whole in buffer_ until a large enough buffer comes
    return fail(errc::message_too_large, "recv", object_,
                "the message has " + std::to_string(size) + " bytes, the buffer " +
                    std::to_string(out.size()));
  }
  if (size > 0) std::memcpy(out.data(), buffer_.data(), size);
  packet_pending_ = false;
  end_ = 0;
  return size;
}

result<std::size_t> framed_stream::recv_packet(stream_end end, std::span<std::byte> out,
                                               deadline until) {
  if (packet_pending_) return deliver_packet_message(out);
  if (packet_assembling_) return assemble_packets(end, out, until);
  bool direct = out.size() >= packet_read_size_;
  if (!direct && buffer_.size() < packet_read_size_)
    buffer_.resize(std::max(packet_read_size_, min_buffer));
  std::byte* first = direct ? out.data() : buffer_.data();
  auto got = read_waiting(end, first, direct ? out.size() : packet_read_size_, until);
  if (!got) return std::unexpected(got.error());
  return first_packet(out, first, *got, end, until);
}

result<std::size_t> framed_stream::first_packet(std::span<std::byte> out, std::byte* first,
                                                std::size_t n, stream_end end, deadline until) {
  bool direct = first == out.data();
  if (n == 0) return fail(errc::end_of_stream, "recv", object_);
  if (first[0] != escape || n == 1) {
    if (n > max_message_ || first[0] == escape)
      return fail(errc::bad_frame, "recv", object_,
                  "a malformed packet of " + std::to_string(n) + " bytes");
    if (direct) return n;
    end_ = n;
    return deliver_packet_message(out);
  }
  if (first[1] == escape) {  // stuffed: drop the escape byte
    std::byte* target = direct ? out.data() : buffer_.data();
    std::memmove(target, first + 1, n - 1);
    if (direct) return n - 1;
    end_ = n - 1;
    return deliver_packet_message(out);
  }
  if (first[1] != long_tag || n < long_header)
    return fail(errc::bad_frame, "recv", object_, "a packet with an unknown header");
  std::size_t size = load_length(first + 2);
  if (size > max_message_)
    return fail(errc::bad_frame, "recv", object_,
                "a frame claims " + std::to_string(size) + " bytes, the maximum is " +
                    std::to_string(max_message_));
  if (n - long_header > size)
    return fail(errc::bad_frame, "recv", object_, "a packet longer than its message");
  if (buffer_.size() < size + packet_read_size_) buffer_.resize(size + packet_read_size_);
  std::memmove(buffer_.data(), first + long_header, n - long_header);
  end_ = n - long_header;
  packet_expected_ = size;
  packet_assembling_ = true;
  return assemble_packets(end, out, until);
}

result<std::size_t> framed_stream::assemble_packets(stream_end end, std::span<std::byte> out,
                                                    deadline until) {
  while (end_ < packet_expected_) {
    // Kept across a timeout: the next recv goes on from here.
    auto got = read_waiting(end, buffer_.data() + end_, packet_read_size_, until);
    if (!got) return std::unexpected(got.error());
    if (*got == 0)
      return fail(errc::end_of_stream, "recv", object_, "the peer closed in the middle of a message");
    if (end_ + *got > packet_expected_)
      return fail(errc::bad_frame, "recv", object_, "a packet longer than its message");
    end_ += *got;
  }
  packet_assembling_ = false;
  return deliver_packet_message(out);
}

}  // namespace ipcx::detail
