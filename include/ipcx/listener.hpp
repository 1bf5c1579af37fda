// ipcx/listener.hpp — a server socket that accepts any number of peers, one channel each.
//
// A channel created on a connection socket (unix:, unix-seqpacket:, tcp://) serves exactly one
// peer. To serve many, listen once and accept each client in turn (or from an event loop):
//
//   auto server = ipcx::listener::create("tcp://127.0.0.1:0");  // port 0: the kernel picks one
//   std::string where = server->address().to_string();         // "tcp://127.0.0.1:40123"
//   // ...clients call ipcx::channel::join(where)...
//   auto client = server->accept(5s);                            // errc::timed_out after 5 s
//   if (client) client->send("welcome");
//
// Clients join with channel::join (framed messages) or ipcx::stream::join (raw bytes); the server
// side picks the matching accept() or accept_stream(). A connection waits in the kernel's backlog
// until accepted, so clients may connect before the server calls accept.
//
// create() fails with EEXIST if the socket file exists (EADDRINUSE for an abstract name or a port
// in use); open() also replaces a socket file that nobody listens on, as a crashed server leaves
// behind. The file is created with options.permissions (0600 by default: only the owner can
// connect) and stays after the listener closes unless options.remove_on_close. options.max_message
// applies to every accepted channel.
//
// Thread safety: one listener is used by one thread at a time. The channels and streams it returns
// are independent of it and of each other, and outlive it.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "ipcx/address.hpp"
#include "ipcx/channel.hpp"
#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"
#include "ipcx/stream.hpp"

namespace ipcx {

namespace detail {
struct listener_state;
}

class listener {
 public:
  // Binds and listens. Mechanisms: unix (path or @abstract), unix-seqpacket, tcp; any other
  // address fails with errc::not_supported.
  [[nodiscard]] static result<listener> create(std::string_view address,
                                               const channel_options& options = {});
  [[nodiscard]] static result<listener> create(const ipcx::address& where,
                                               const channel_options& options = {});
  // As create(), but a stale socket file (connect is refused: nobody listens) is unlinked and
  // bound again. A file somebody listens on still gives EEXIST.
  [[nodiscard]] static result<listener> open(std::string_view address,
                                             const channel_options& options = {});
  [[nodiscard]] static result<listener> open(const ipcx::address& where,
                                             const channel_options& options = {});

  // Blocks until a client connects or the deadline passes (errc::timed_out), and returns a
  // channel to it, of the same kind and framing as channel::join gives the client.
  [[nodiscard]] result<channel> accept(deadline until = {});
  // std::nullopt when no client is waiting.
  [[nodiscard]] result<std::optional<channel>> try_accept();
  // The connection as raw bytes (unix stream and tcp only; errc::not_supported otherwise).
  [[nodiscard]] result<stream> accept_stream(deadline until = {});

  // Polls readable when a client is waiting to be accepted.
  int wait_fd() const noexcept;
  // The address as bound: with the port the kernel chose for tcp://HOST:0.
  const ipcx::address& address() const noexcept;

  listener(listener&&) noexcept;
  listener& operator=(listener&&) noexcept;
  ~listener();

 private:
  explicit listener(std::unique_ptr<detail::listener_state> state) noexcept;

  std::unique_ptr<detail::listener_state> state_;
};

}  // namespace ipcx
