// What the socket transports (socket.cpp), ipcx::listener and ipcx::stream share: resolving an
// address to socket addresses, binding, listening, accepting and connecting under a deadline, and
// the one factory that turns a connected descriptor into a channel's transport.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <string>

#include "ipcx/address.hpp"
#include "ipcx/channel.hpp"
#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"
#include "ipcx/unique_fd.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {

// True for the kinds that listen and accept: unix stream, unix seqpacket, tcp.
bool is_connection_socket(mechanism kind) noexcept;
// True for the byte-stream kinds: unix stream and tcp.
bool is_byte_stream_socket(mechanism kind) noexcept;

// A socket file this process bound. It is removed on destruction when `remove` is set, and only
// if the path still names the file that was bound (a successor's file is left alone).
class socket_file {
 public:
  socket_file() = default;
  socket_file(std::string path, dev_t device, ino_t inode) noexcept
      : path_(std::move(path)), device_(device), inode_(inode), remove_(true) {}
  socket_file(socket_file&& other) noexcept { *this = std::move(other); }
  socket_file& operator=(socket_file&& other) noexcept;
  socket_file(const socket_file&) = delete;
  socket_file& operator=(const socket_file&) = delete;
  ~socket_file() { reset(); }

  // After a successful setup: keep the file on destruction unless `remove_on_close`.
  void keep_unless(bool remove_on_close) noexcept { remove_ = remove_on_close; }

 private:
  void reset() noexcept;

  std::string path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  bool remove_ = false;
};

// A bound socket: listening (and O_NONBLOCK, so accept can honour deadlines) for the connection
// kinds, plain and blocking for the datagram kinds.
struct bound_socket {
  unique_fd fd;
  address where;     // as bound: with the port the kernel chose for port 0
  socket_file file;  // unix path sockets only
};

// Binds (and, for the connection kinds, listens on) `where`. A unix socket file is created with
// options.permissions; it fails with EEXIST if the path exists. An abstract name or a port in
// use fails with EADDRINUSE.
result<bound_socket> bind_socket(const address& where, const channel_options& options);

// Like bind_socket, but a unix socket file that nobody listens on (connect gives ECONNREFUSED)
// is taken for the leftover of a dead process: it is unlinked and bound again.
result<bound_socket> bind_socket_replacing_stale(const address& where,
                                                 const channel_options& options);

// Accepts one connection on a listening O_NONBLOCK socket within the deadline
// (errc::timed_out). The connection is blocking and close-on-exec.
result<unique_fd> accept_connection(int listening, deadline until, const std::string& object);

// Connects a new socket of where.kind to `where` (trying each address a host name resolves to),
// within the deadline. The descriptor is blocking and close-on-exec; a unix datagram socket is
// autobound first so the other side can answer it. ENOENT / ECONNREFUSED when nobody is there.
result<unique_fd> connect_socket(const address& where, deadline until);

// Sets TCP_NODELAY: ipcx sends whole messages and wants them on the wire at once.
result<void> set_no_delay(int fd, const std::string& object);

// The channel transport for a connected (or accepted) socket of where.kind; the same class the
// channel factory uses. For datagram kinds the connected side announces itself to the bound side.
result<transport_ptr> make_connected_transport(unique_fd fd, const address& where,
                                               const channel_options& options);

}  // namespace ipcx::detail
