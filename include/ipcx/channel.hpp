// ipcx/channel.hpp — a message channel over any Linux IPC mechanism.
//
// A channel is named by an address (see address.hpp). Three verbs reach it:
//
//   auto server = ipcx::channel::create("mq:/orders", {.max_message = 4096, .capacity = 8});
//   auto client = ipcx::channel::join("mq:/orders");   // fails with ENOENT if it does not exist
//   auto either = ipcx::channel::open("mq:/orders");   // joins, or creates when missing
//   client->send("hello");
//   std::array<std::byte, 4096> buffer;
//   auto n = server->recv(buffer, 100ms);              // n: size of the message, or an error
//
// Messages keep their boundaries on every mechanism: byte streams (pipe, fifo, unix, tcp) carry
// length-prefixed frames. A message larger than the receiver's buffer fails with
// errc::message_too_large and stays where it was: call recv again with a larger buffer.
//
// On connection-oriented sockets, create() binds and listens, and the first send or recv accepts
// one peer; use ipcx::listener to serve many. On datagram sockets (unix-dgram, udp) create() binds
// and answers whoever sent last; join() connects and sends an empty hello, so the creator may send
// first (errc::no_peer until someone joined or sent).
//
// Named objects are created with mode 0600 and O_EXCL; they persist after close (a queue keeps its
// messages) until channel::remove() or `ipcx rm`, unless `remove_on_close` is set by the creator.
//
// Thread safety: one channel is used by one thread at a time. Writing to a pipe, FIFO or socket
// whose reader is gone gives EPIPE, never SIGPIPE: ipcx ignores SIGPIPE if its disposition is the
// default when the first such channel is made.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "ipcx/address.hpp"
#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"

namespace ipcx {

struct channel_options {
  std::size_t max_message = 0;  // largest message; 0 = the mechanism's default (info() tells)
  std::size_t capacity = 0;     // messages held before send blocks, where settable; 0 = default
  mode_t permissions = 0600;    // for named objects this call creates
  bool remove_on_close = false; // the creator removes the named object when it closes
};

struct channel_info {
  mechanism kind;
  std::size_t max_message;  // largest message this channel carries
  bool ordered;             // messages arrive in the order they were sent
  bool persistent;          // messages outlive both processes
  bool cross_host;          // the mechanism can reach another machine
  bool stream;              // a byte stream underneath (messages are framed)
};

namespace detail {
class transport;
}

class channel {
 public:
  [[nodiscard]] static result<channel> create(std::string_view address,
                                              const channel_options& options = {});
  [[nodiscard]] static result<channel> join(std::string_view address,
                                            const channel_options& options = {});
  [[nodiscard]] static result<channel> open(std::string_view address,
                                            const channel_options& options = {});
  [[nodiscard]] static result<channel> create(const address& where,
                                              const channel_options& options = {});
  [[nodiscard]] static result<channel> join(const address& where,
                                            const channel_options& options = {});
  [[nodiscard]] static result<channel> open(const address& where,
                                            const channel_options& options = {});

  // Two connected ends of anonymous pipes (one pipe each way), to be split by fork. For exec, the
  // child's end calls keep_across_exec() and passes address().to_string() ("pipe:R,W") to the new
  // program, which join()s it.
  [[nodiscard]] static result<std::pair<channel, channel>> pipe(const channel_options& options = {});

  // Removes a named object (queue, FIFO, socket file, log, segment). Mechanisms without a name
  // (pipe, signal, tcp, udp, abstract sockets) have nothing to remove and succeed.
  [[nodiscard]] static result<void> remove(std::string_view address);
  [[nodiscard]] static result<void> remove(const address& where);

  // Blocks until the whole message is accepted or the deadline passes (errc::timed_out).
  [[nodiscard]] result<void> send(std::span<const std::byte> message, deadline until = {});
  [[nodiscard]] result<void> send(std::string_view message, deadline until = {}) {
    return send(std::as_bytes(std::span(message.data(), message.size())), until);
  }
  // False when the message cannot be accepted without blocking.
  [[nodiscard]] result<bool> try_send(std::span<const std::byte> message);

  // Blocks until one whole message is in `buffer` and returns its size. errc::end_of_stream when
  // the peer closed; errc::message_too_large (message kept) when `buffer` is too small.
  [[nodiscard]] result<std::size_t> recv(std::span<std::byte> buffer, deadline until = {});
  // std::nullopt when no message is waiting.
  [[nodiscard]] result<std::optional<std::size_t>> try_recv(std::span<std::byte> buffer);

  // A descriptor that polls readable when recv may not block, or -1 if the mechanism has none.
  // Framed streams (pipe, fifo, unix, tcp) may already hold whole messages in the channel's
  // buffer while the descriptor is quiet: an event loop drains with try_recv until it returns
  // nothing. A connection-socket creator's descriptor is the listening socket until its peer is
  // accepted.
  int wait_fd() const noexcept;
  channel_info info() const noexcept;
  // The address as bound: with the port chosen for tcp://HOST:0, the pid for signal:self.
  const ipcx::address& address() const noexcept;

  // Clears close-on-exec on this channel's descriptors (pipe:), so an exec'd child can join.
  [[nodiscard]] result<void> keep_across_exec();

  channel(channel&&) noexcept;
  channel& operator=(channel&&) noexcept;
  ~channel();

  explicit channel(std::unique_ptr<detail::transport> transport) noexcept;

 private:
  std::unique_ptr<detail::transport> transport_;
};

}  // namespace ipcx
