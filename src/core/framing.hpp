// Length-prefixed messages over a byte stream (pipe, FIFO, Unix stream socket, TCP).
//
// A frame is a 4-byte little-endian length followed by that many bytes. The receiver reads as much
// as the kernel has into its own buffer, so one read usually brings a whole frame (the same number
// of system calls as a raw read of the message). A header claiming more than `max_message` is
// errc::bad_frame, checked before anything is allocated.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

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

  framed_stream(std::size_t max_message, std::string object)
      : max_message_(max_message), object_(std::move(object)) {}

  std::size_t max_message() const noexcept { return max_message_; }

  // Writes one whole frame. Once its first byte is in the stream the frame is completed even past
  // the deadline, because a half frame would corrupt every message after it.
  result<void> send(const stream_end& end, std::span<const std::byte> message, deadline until);

  // Reads one whole frame into `out`; a frame larger than `out` stays buffered
  // (errc::message_too_large). errc::end_of_stream when the writer closed between frames, and
  // also, with a detail saying so, when it closed in the middle of one.
  result<std::size_t> recv(const stream_end& end, std::span<std::byte> out, deadline until);

  // Bytes already read from the kernel and not yet returned.
  bool has_buffered() const noexcept { return end_ > begin_ || packet_pending_; }

 private:
  result<void> fill(const stream_end& end, std::size_t needed, deadline until);
  // One read, waiting as the deadline allows; 0 is end of stream.
  result<std::size_t> read_waiting(const stream_end& end, std::byte* data, std::size_t size,
                                   deadline until);
  result<void> write_frame(const stream_end& end, iovec* iov, int count, deadline until);
  result<void> send_packet(const stream_end& end, std::span<const std::byte> message,
                           deadline until);
  result<std::size_t> recv_packet(const stream_end& end, std::span<std::byte> out, deadline until);
  result<std::size_t> deliver_packet_message(std::span<std::byte> out);

  static constexpr std::size_t staging_limit = 64 * 1024;

  std::size_t max_message_;
  std::string object_;
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
