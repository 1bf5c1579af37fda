// Length-prefixed messages over a byte stream (pipe, FIFO, Unix stream socket, TCP).
//
// A frame is a 4-byte little-endian length followed by that many bytes. The receiver reads as much
// as the kernel has into its own buffer, so one read usually brings a whole frame (the same number
// of system calls as a raw read of the message). A header claiming more than `max_message` is
// errc::bad_frame, checked before anything is allocated.
#pragma once

#include <sys/uio.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
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
  // Inline, as recv is: a never-deadline message that travels as one packet as it is costs the
  // caller the write(2) and a few tests (the round-trip benchmark holds ipcx to 5 % of raw calls).
  result<void> send(stream_end end, std::span<const std::byte> message, deadline until) {
    if (end.packets && until.is_never() && is_verbatim_packet(message) &&
        message.size() <= max_message_) [[likely]] {
      // Written whole or not at all (at most PIPE_BUF bytes): one call, no loop.
      if (sys([&] { return ::write(end.blocking, message.data(), message.size()); }) >= 0) [[likely]]
        return {};
      // Failed: the general path writes again and waits (EAGAIN) or reports the error it gets.
    }
    return send_slow(end, message, until);
  }

  // Reads one whole frame into `out`; a frame larger than `out` stays buffered
  // (errc::message_too_large). errc::end_of_stream when the writer closed between frames, and
  // also, with a detail saying so, when it closed in the middle of one.
  result<std::size_t> recv(stream_end end, std::span<std::byte> out, deadline until) {
    if (!end.packets) return recv_frame(end, out, until);
    if (!until.is_never() || packet_pending_ || packet_assembling_) return recv_packet(end, out, until);
    // The common case reads straight into the caller's buffer when it can hold any packet.
    bool direct = out.size() >= packet_read_size_;
    if (!direct && buffer_.size() < packet_read_size_) [[unlikely]]
      return recv_packet(end, out, until);  // allocates the buffer
    std::byte* into = direct ? out.data() : buffer_.data();
    ssize_t n = sys([&] { return ::read(end.blocking, into, direct ? out.size() : packet_read_size_); });
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
  result<void> send_slow(stream_end end, std::span<const std::byte> message, deadline until);
  result<std::size_t> recv_frame(stream_end end, std::span<std::byte> out, deadline until);
  result<void> fill(stream_end end, std::size_t needed, deadline until);
  // One read, waiting as the deadline allows; 0 is end of stream.
  result<std::size_t> read_waiting(stream_end end, std::byte* data, std::size_t size,
                                   deadline until);
  result<void> write_frame(stream_end end, iovec* iov, int count, deadline until);
  result<void> send_packet(stream_end end, std::span<const std::byte> message,
                           deadline until);
  // Packet mode's general receive: a kept message, packets being joined, or a first read that
  // waits as the deadline allows. recv() itself serves the common never-deadline case.
  result<std::size_t> recv_packet(stream_end end, std::span<std::byte> out, deadline until);
  // Decodes a first packet of `n` bytes read at `first` (the caller's buffer or buffer_).
  result<std::size_t> first_packet(std::span<std::byte> out, std::byte* first, std::size_t n,
                                   stream_end end, deadline until);
  result<std::size_t> assemble_packets(stream_end end, std::span<std::byte> out,
                                       deadline until);
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
