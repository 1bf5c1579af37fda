// ipcx/stream.hpp — raw bytes over a byte-stream mechanism: no framing, no message boundaries.
//
// Channels carry messages (on byte streams, length-prefixed frames). A stream carries the bytes
// as they are, for peers that do not speak ipcx (a shell reading a FIFO, an HTTP server) or for
// data that is a stream to begin with:
//
//   auto s = ipcx::stream::join("tcp://127.0.0.1:8080", 2s);  // connect within 2 s
//   if (!s) return s.error();
//   s->write_all("GET / HTTP/1.0\r\n\r\n");
//   std::array<std::byte, 4096> buffer;
//   for (;;) {
//     auto n = s->read(buffer, 5s);
//     if (!n || *n == 0) break;                                // error, or the server closed
//     consume(std::span(buffer).first(*n));
//   }
//
// Where streams come from: stream::join (unix: and tcp:// connect; fifo: opens the FIFO for
// writing, waiting for a reader), listener::accept_stream (the server's side of a unix: or tcp://
// connection) and stream::pipe (an anonymous pipe, to split across fork).
//
// Writing to a stream whose reader is gone fails with EPIPE (never SIGPIPE). Thread safety: one
// stream is used by one thread at a time.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"
#include "ipcx/unique_fd.hpp"

namespace ipcx {

class listener;

class stream {
 public:
  // unix:/path, unix:@name, tcp://HOST:PORT: connects (ENOENT or ECONNREFUSED when nobody
  // listens). fifo:/path: opens it for writing once a reader has it open (ENOENT if it does not
  // exist). Either gives errc::timed_out at the deadline.
  [[nodiscard]] static result<stream> join(std::string_view address, deadline until = {});
  // An anonymous pipe: first the read end, then the write end.
  [[nodiscard]] static result<std::pair<stream, stream>> pipe();

  // Blocks until some bytes are available and returns how many were read (at most
  // buffer.size()); 0 means the writer closed. errc::timed_out at the deadline.
  [[nodiscard]] result<std::size_t> read(std::span<std::byte> buffer, deadline until = {});
  // Blocks until every byte is written. At the deadline, errc::timed_out, whose detail says how
  // many bytes went out: the stream then holds a prefix of `data`.
  [[nodiscard]] result<void> write_all(std::span<const std::byte> data, deadline until = {});
  [[nodiscard]] result<void> write_all(std::string_view data, deadline until = {}) {
    return write_all(std::as_bytes(std::span(data.data(), data.size())), until);
  }

  // The descriptor (blocking, close-on-exec), for poll or to hand to other code.
  int fd() const noexcept { return fd_.get(); }

  stream(stream&&) noexcept = default;
  stream& operator=(stream&&) noexcept = default;

 private:
  friend class listener;
  stream(unique_fd fd, bool socket, std::string object) noexcept
      : fd_(std::move(fd)), socket_(socket), object_(std::move(object)) {}

  // Pipes and FIFOs have no per-call MSG_DONTWAIT: calls with a deadline use a second,
  // O_NONBLOCK open of the same pipe, made on first need.
  result<int> nonblocking_fd();

  unique_fd fd_;
  unique_fd nonblocking_;
  bool socket_ = false;
  std::string object_;  // the address, for errors
};

}  // namespace ipcx
