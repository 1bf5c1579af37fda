// Length-prefixed messages over a byte stream (pipe, FIFO, Unix stream socket, TCP).
//
// A frame is a 4-byte little-endian length followed by that many bytes. The receiver reads as much
// as the kernel has into its own buffer, so one read usually brings a whole frame (the same number
// of system calls as a raw read of the message). A header claiming more than `max_message` is
// errc::bad_frame, checked before anything is allocated.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "core/syscall.hpp"
#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"

namespace ipcx::detail {

// One direction of a stream. `blocking` serves never-deadline calls in one plain system call;
// `nonblocking` serves calls with a deadline. Sockets use one descriptor with MSG_DONTWAIT.
struct stream_end {
  int blocking = -1;
  int nonblocking = -1;
  bool socket = false;
  // A pipe or FIFO in packet mode (O_DIRECT): message boundaries come from the kernel's packets,
  // and most messages travel without a header (see framing.cpp). Both ends must agree.
  bool packets = false;
};

// One call on the descriptor for never-deadline calls (`blocking`) or on the non-blocking one:
// read/write, or for sockets recv/send (MSG_NOSIGNAL; MSG_DONTWAIT when not blocking).
inline ssize_t read_some(stream_end end, bool blocking, std::byte* data, std::size_t size) {
  int fd = blocking ? end.blocking : end.nonblocking;
  if (end.socket) return sys([&] { return ::recv(fd, data, size, blocking ? 0 : MSG_DONTWAIT); });
  return sys([&] { return ::read(fd, data, size); });
}
inline ssize_t write_one(stream_end end, bool blocking, const std::byte* data, std::size_t size) {
  int fd = blocking ? end.blocking : end.nonblocking;
  if (end.socket)
    return sys(
        [&] { return ::send(fd, data, size, MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT)); });
  return sys([&] { return ::write(fd, data, size); });
}

class framed_stream {
 public:
  static constexpr std::size_t header_size = 4;
  static constexpr std::size_t default_max_message = 1 << 20;
  // Packet mode: the first byte that marks a packet as carrying a header (framing.cpp).
  static constexpr std::byte packet_escape{0xA5};

  framed_stream(std::size_t max_message, std::string object);

  std::size_t max_message() const noexcept { return max_message_; }

  // Writes one whole frame. Once its first byte is in the stream the frame is completed even past
  // the deadline, because a half frame would corrupt every message after it.
  //
  // Inline, as recv is: a never-deadline message costs the caller one write(2) or send(2) and a
  // few tests, plus, on a byte stream, copying header and message together (the round-trip
  // benchmark holds ipcx to 5 % of raw calls; an out-of-line layer per call measurably did not).
  [[gnu::always_inline]] result<void> send(stream_end end, std::span<const std::byte> message,
                                           deadline until) {
    if (until.is_never() && !message.empty() && message.size() <= max_message_) [[likely]] {
      if (end.packets && is_verbatim_packet(message)) [[likely]] {
        // Written whole or not at all (at most PIPE_BUF bytes): one call, no loop.
        if (write_one(end, true, message.data(), message.size()) >= 0) [[likely]]
          return {};
        // Failed: the general path writes again and waits (EAGAIN) or reports the error it gets.
      } else if (!end.packets && header_size + message.size() <= staging_.size()) [[likely]] {
        store_length(staging_.data(), message.size());
        std::memcpy(staging_.data() + header_size, message.data(), message.size());
        std::size_t frame = header_size + message.size();
        ssize_t n = write_one(end, true, staging_.data(), frame);
        if (static_cast<std::size_t>(n) == frame) [[likely]]
          return {};
        if (n > 0) return write_rest(end, frame, static_cast<std::size_t>(n));
      }
    }
    return send_slow(end, message, until);
  }

  // Reads one whole frame into `out`; a frame larger than `out` stays buffered
  // (errc::message_too_large). errc::end_of_stream when the writer closed between frames, and
  // also, with a detail saying so, when it closed in the middle of one.
  [[gnu::always_inline]] result<std::size_t> recv(stream_end end, std::span<std::byte> out,
                                                  deadline until) {
    if (!until.is_never() || packet_pending_ || packet_assembling_) [[unlikely]]
      return end.packets ? recv_packet(end, out, until) : recv_frame(end, out, until);
    if (!end.packets) {
      // Nothing buffered: one read, which usually brings the whole frame (and whatever follows).
      if (end_ != begin_ || buffer_.empty()) return recv_frame(end, out, until);
      ssize_t n = read_some(end, true, buffer_.data(), buffer_.size());
      if (n < 0) return recv_frame(end, out, until);  // reads again: waits or reports the error
      end_ = static_cast<std::size_t>(n);
      if (end_ >= header_size) {
        std::size_t size = load_length(buffer_.data());
        if (size <= max_message_ && size <= out.size() && header_size + size <= end_) [[likely]] {
          std::memcpy(out.data(), buffer_.data() + header_size, size);
          begin_ = header_size + size;
          if (begin_ == end_) begin_ = end_ = 0;
          return size;
        }
      }
      return recv_frame(end, out, until);  // a part of a frame, a bad one, or end of stream
    }
    // The common case reads straight into the caller's buffer when it can hold any packet.
    bool direct = out.size() >= packet_read_size_;
    if (!direct && buffer_.size() < packet_read_size_) [[unlikely]]
      return recv_packet(end, out, until);  // allocates the buffer
    std::byte* into = direct ? out.data() : buffer_.data();
    ssize_t n = read_some(end, true, into, direct ? out.size() : packet_read_size_);
    // A verbatim packet that fits: the whole cost over a plain read(2) is these tests (and, for a
    // buffer under a page, one copy).
    if (n > 0 && into[0] != packet_escape && static_cast<std::size_t>(n) <= max_message_ &&
        static_cast<std::size_t>(n) <= out.size()) [[likely]] {
      if (!direct) std::memcpy(out.data(), into, static_cast<std::size_t>(n));
      return static_cast<std::size_t>(n);
    }
    // Failed: the general path reads again and waits (EAGAIN) or reports the error it gets.
    if (n < 0) return recv_packet(end, out, until);
    return first_packet(out, into, static_cast<std::size_t>(n), end, until);
  }

  // Bytes already read from the kernel and not yet returned.
  bool has_buffered() const noexcept { return end_ > begin_ || packet_pending_; }

 private:
  static bool is_verbatim_packet(std::span<const std::byte> message) {
    return !message.empty() && message.size() <= PIPE_BUF && message[0] != packet_escape;
  }
  static std::size_t load_length(const std::byte* header) {
    std::uint32_t size = 0;
    for (std::size_t i = header_size; i-- > 0;)
      size = (size << 8) | std::to_integer<std::uint32_t>(header[i]);
    return size;
  }
  static void store_length(std::byte* header, std::size_t size) {
    for (std::size_t i = 0; i < header_size; ++i) header[i] = std::byte((size >> (8 * i)) & 0xff);
  }
  // Completes a staged frame of which the first `written` bytes are in the stream.
  result<void> write_rest(stream_end end, std::size_t frame, std::size_t written);
  result<void> send_slow(stream_end end, std::span<const std::byte> message, deadline until);
  result<std::size_t> recv_frame(stream_end end, std::span<std::byte> out, deadline until);
  result<void> fill(stream_end end, std::size_t needed, deadline until);
  // One read, waiting as the deadline allows; 0 is end of stream.
  result<std::size_t> read_waiting(stream_end end, std::byte* data, std::size_t size,
                                   deadline until);
  result<void> write_frame(stream_end end, iovec* iov, int count, deadline until);
  result<void> send_packet(stream_end end, std::span<const std::byte> message, deadline until);
  // Packet mode's general receive: a kept message, packets being joined, or a first read that
  // waits as the deadline allows. recv() itself serves the common never-deadline case.
  result<std::size_t> recv_packet(stream_end end, std::span<std::byte> out, deadline until);
  // Decodes a first packet of `n` bytes read at `first` (the caller's buffer or buffer_).
  result<std::size_t> first_packet(std::span<std::byte> out, std::byte* first, std::size_t n,
                                   stream_end end, deadline until);
  result<std::size_t> assemble_packets(stream_end end, std::span<std::byte> out, deadline until);
  result<std::size_t> deliver_packet_message(std::span<std::byte> out);

  static constexpr std::size_t staging_limit = 64 * 1024;

  std::size_t max_message_;
  std::string object_;
  std::size_t packet_read_size_;
  std::vector<std::byte> staging_;  // outgoing frames up to staging_limit, written in one call
  std::vector<std::byte> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  // Packet mode: buffer_[0, end_) holds a message being joined from packets (assembling) or a
  // whole one kept because the caller's buffer was too small (pending).
  bool packet_assembling_ = false;
  bool packet_pending_ = false;
  std::size_t packet_expected_ = 0;
};

}  // namespace ipcx::detail
