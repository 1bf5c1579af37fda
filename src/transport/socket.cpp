// The socket transports: unix stream, unix seqpacket, unix datagram, tcp and udp.
//
// Design:
// - Connection kinds (unix stream, unix seqpacket, tcp): create() binds and listens; the first send
//   or recv accepts one peer within its deadline and then closes the listening socket (a listener,
//   listener.cpp, serves many). join() connects.
// - unix stream and tcp are byte streams and carry framed messages (core/framing.hpp).
// - The packet kinds (seqpacket, unix datagram, udp) carry one message per packet, as it is, so the
//   never-deadline path is the plain send/recv (sendto/recvfrom on the bound datagram side) a raw
//   program makes, and raw peers interoperate. Two things need a packet that is no message:
//   * the end of a seqpacket connection, where recv returns 0, as it would for an empty packet;
//   * the hello a datagram joiner sends, so the bound side, which answers whoever it heard from
//     last, can speak first (a server that greets).
//   So no message travels as an empty packet: a message made only of `stuffing` bytes, the empty
//   message included, is sent with one more of them, and a received packet made only of them is
//   one byte shorter as a message. Every other message is sent untouched, and only a message that
//   starts with the stuffing byte costs a scan (on both sides) or the extra byte (a sendmsg). An
//   empty packet is the end (seqpacket) or a hello (datagram; recv takes it in silently, so a raw
//   peer's empty datagram is not delivered either).
// - Unix socket files: the mode is set on the socket before bind() (see bind_unix), so the file is
//   born with options.permissions. open() replaces a file nobody is bound to. Two known windows,
//   both between processes racing for one name: a socket bound but not yet listening refuses
//   connects, so a concurrent open() may take it for stale; and two open()s replacing the same
//   stale file may both unlink and bind, the later one keeping the name.
// - Deadlines: data descriptors are blocking. never() is the plain blocking call; a deadline adds
//   MSG_DONTWAIT and polls between attempts. Listening sockets are O_NONBLOCK instead, since accept4
//   has no per-call flag; accepting is not on the per-message path.
// - Messages larger than the caller's buffer: when the buffer is smaller than max_message, a
//   recvmsg(MSG_PEEK|MSG_TRUNC) learns the size first and the packet stays queued; with a buffer
//   of max_message or more (the common case) recv is one call.
// - options.capacity is not used: the kernel's socket buffers decide how much is queued.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/framing.hpp"
#include "core/io.hpp"
#include "core/syscall.hpp"
#include "transport/socket_common.hpp"

namespace ipcx::detail {
namespace {

// 0xA5 (10100101): not 0x00 or 0xFF and not printable ASCII, the bytes buffers are most often
// filled with, so a message made only of it is rare.
constexpr std::byte stuffing{0xA5};

// seqpacket and unix datagram: the kernel's limit is the sender's SO_SNDBUF, raised to fit.
constexpr std::size_t default_packet_max = 64 * 1024;
// The largest UDP payload IPv4 carries (65535 less the IP and UDP headers), less the byte a
// stuffed message may need.
constexpr std::size_t udp_max = 65507 - 1;
// A frame's length field has 32 bits.
constexpr std::size_t framed_max = std::numeric_limits<std::uint32_t>::max();

std::unexpected<error> fail_code(std::errc code, std::string operation, std::string object,
                                 std::string detail) {
  return std::unexpected(
      error(std::make_error_code(code), std::move(operation), std::move(object), std::move(detail)));
}

bool is_unix(mechanism kind) {
  return kind == mechanism::unix_stream || kind == mechanism::unix_dgram ||
         kind == mechanism::unix_seqpacket;
}

bool is_path_socket(const address& where) { return is_unix(where.kind) && !where.abstract; }

int socket_type(mechanism kind) {
  switch (kind) {
    case mechanism::unix_seqpacket: return SOCK_SEQPACKET;
    case mechanism::unix_dgram:
    case mechanism::udp: return SOCK_DGRAM;
    default: return SOCK_STREAM;
  }
}

channel_info info_for(mechanism kind, std::size_t max_message) {
  return {
      .kind = kind,
      .max_message = max_message,
      // UDP may drop and reorder between hosts. On loopback it keeps order in practice, but
      // nothing promises it, so a caller must not rely on it.
      .ordered = kind != mechanism::udp,
      .persistent = false,
      .cross_host = kind == mechanism::tcp || kind == mechanism::udp,
      .stream = is_byte_stream_socket(kind),
  };
}

result<std::size_t> max_message_for(const address& where, const channel_options& options) {
  std::size_t max = options.max_message;
  std::size_t limit = framed_max;
  if (is_byte_stream_socket(where.kind)) {
    if (max == 0) max = framed_stream::default_max_message;
  } else if (where.kind == mechanism::udp) {
    if (max == 0) max = udp_max;
    limit = udp_max;
  } else {
    if (max == 0) max = default_packet_max;
  }
  if (max > limit)
    return fail(errc::message_too_large, "socket", where.to_string(),
                "max_message " + std::to_string(max) + " is above the mechanism's limit of " +
                    std::to_string(limit) + " bytes");
  return max;
}

result<void> too_large(std::size_t size, std::size_t max, const std::string& object) {
  return fail(errc::message_too_large, "send", object,
              std::to_string(size) + " bytes, the channel's maximum is " + std::to_string(max));
}

// A socket address with its length.
struct endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

endpoint unix_endpoint(const address& where) {
  endpoint e;
  auto* un = reinterpret_cast<sockaddr_un*>(&e.storage);
  un->sun_family = AF_UNIX;
  // An abstract name starts with a NUL and is exactly as long as the length says (no trailing NUL);
  // address::parse has checked that either form fits in sun_path.
  std::size_t offset = where.abstract ? 1 : 0;
  std::memcpy(un->sun_path + offset, where.path.data(), where.path.size());
  std::size_t length = offsetof(sockaddr_un, sun_path) + offset + where.path.size();
  if (!where.abstract) ++length;
  e.length = static_cast<socklen_t>(length);
  return e;
}

// The socket addresses `where` names: one for unix, what getaddrinfo gives for tcp and udp.
result<std::vector<endpoint>> resolve(const address& where) {
  if (is_unix(where.kind)) return std::vector<endpoint>{unix_endpoint(where)};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socket_type(where.kind);
  hints.ai_flags = AI_NUMERICSERV;
  std::string port = std::to_string(where.port);
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    // getaddrinfo has its own error space. EAI_SYSTEM is an errno; the rest (no such name, no
    // answer from DNS...) all mean the host cannot be reached by that name.
    if (rc == EAI_SYSTEM) return fail_errno(errno, "getaddrinfo", where.to_string());
    if (rc == EAI_MEMORY) return fail_errno(ENOMEM, "getaddrinfo", where.to_string());
    return fail_code(std::errc::host_unreachable, "getaddrinfo", where.to_string(),
                     ::gai_strerror(rc));
  }
  std::vector<endpoint> out;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    endpoint e;
    std::memcpy(&e.storage, ai->ai_addr, ai->ai_addrlen);
    e.length = ai->ai_addrlen;
    out.push_back(e);
  }
  ::freeaddrinfo(list);
  if (out.empty())
    return fail_code(std::errc::host_unreachable, "getaddrinfo", where.to_string(),
                     "no usable address");
  return out;
}

// One socket call under the deadline contract. never(): the plain blocking call. Otherwise
// non-blocking attempts (`call` gets MSG_DONTWAIT to add to its flags), polling for `events`
// in between, and errc::timed_out when the deadline passes.
template <typename Call>
result<std::size_t> socket_call(int fd, short events, deadline until, const char* operation,
                                const std::string& object, Call&& call) {
  if (until.is_never()) {
    ssize_t n = sys([&] { return call(0); });
    if (n < 0) return fail_errno(errno, operation, object);
    return static_cast<std::size_t>(n);
  }
  for (;;) {
    ssize_t n = sys([&] { return call(MSG_DONTWAIT); });
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, operation, object);
    if (until.expired()) return fail(errc::timed_out, operation, object);
    auto ready = wait_for(fd, events, until, object);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, operation, object);
  }
}

// The socket buffers must hold a whole packet: the kernel refuses a unix packet larger than the
// sender's SO_SNDBUF (less a little), and a UDP receiver drops one that overflows SO_RCVBUF.
// Room for two packets and their bookkeeping; the kernel doubles what setsockopt asks for, and
// getsockopt reports the doubled value.
result<void> size_buffers(int fd, std::size_t max_message, const std::string& object) {
  std::size_t want = 2 * (max_message + 1 + 1024);
  if (want > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    return fail_code(std::errc::message_size, "setsockopt", object,
                     "max_message " + std::to_string(max_message) + " is too large for a packet");
  struct option {
    int name;
    int force;
    const char* text;
  };
  for (auto [name, force, text] : {option{SO_SNDBUF, SO_SNDBUFFORCE, "SO_SNDBUF"},
                                   option{SO_RCVBUF, SO_RCVBUFFORCE, "SO_RCVBUF"}}) {
    auto current = [&]() -> result<std::size_t> {
      int value = 0;
      socklen_t length = sizeof value;
      if (sys([&] { return ::getsockopt(fd, SOL_SOCKET, name, &value, &length); }) < 0)
        return fail_errno(errno, std::string("getsockopt(") + text + ")", object);
      return static_cast<std::size_t>(value);
    };
    auto have = current();
    if (!have) return std::unexpected(have.error());
    if (*have >= want) continue;
    int ask = static_cast<int>(want / 2 + 1);
    if (sys([&] { return ::setsockopt(fd, SOL_SOCKET, name, &ask, sizeof ask); }) < 0)
      return fail_errno(errno, std::string("setsockopt(") + text + ")", object);
    have = current();
    if (!have) return std::unexpected(have.error());
    // Above net.core.[rw]mem_max only a process with CAP_NET_ADMIN may go; failing that, the
    // check below reports the limit.
    if (*have < want) {
      (void)sys([&] { return ::setsockopt(fd, SOL_SOCKET, force, &ask, sizeof ask); });
      have = current();
      if (!have) return std::unexpected(have.error());
    }
    if (*have < want)
      return fail_code(std::errc::message_size, std::string("setsockopt(") + text + ")", object,
                       "max_message " + std::to_string(max_message) + " needs a " +
                           std::to_string(want) + "-byte socket buffer, the system allows " +
                           std::to_string(*have) + " (net.core.wmem_max / rmem_max)");
  }
  return {};
}

// What a connected or accepted descriptor needs before it carries messages.
result<void> configure_connected(int fd, mechanism kind, std::size_t max_message,
                                 const std::string& object) {
  if (kind == mechanism::tcp) return set_no_delay(fd, object);
  if (!is_byte_stream_socket(kind)) return size_buffers(fd, max_message, object);
  return {};
}

// Removes a socket file left by a dead process; refuses anything that is not a socket.
result<void> unlink_stale(const address& where) {
  std::string object = where.to_string();
  struct stat st {};
  if (sys([&] { return ::lstat(where.path.c_str(), &st); }) < 0) {
    if (errno == ENOENT) return {};  // someone else removed it first: as good
    return fail_errno(errno, "lstat", object);
  }
  if (!S_ISSOCK(st.st_mode))
    return fail_code(std::errc::not_a_socket, "open", object,
                     "the path exists and is not a socket; refusing to replace it");
  if (sys([&] { return ::unlink(where.path.c_str()); }) < 0 && errno != ENOENT)
    return fail_errno(errno, "unlink", object);
  return {};
}

result<bound_socket> bind_unix(const address& where, const channel_options& options,
                               std::size_t max_message) {
  std::string object = where.to_string();
  bool listens = is_connection_socket(where.kind);
  int type = socket_type(where.kind) | SOCK_CLOEXEC | (listens ? SOCK_NONBLOCK : 0);
  unique_fd fd(sys([&] { return ::socket(AF_UNIX, type, 0); }));
  if (!fd) return fail_errno(errno, "socket", object);
  if (!where.abstract) {
    // bind() gives the file the mode of the socket's own inode less the umask, so setting the
    // mode on the descriptor first creates the file with options.permissions from the start:
    // no moment with wider permissions, and no umask change, which is process-wide and would
    // race with other threads creating files.
    if (sys([&] { return ::fchmod(fd.get(), options.permissions); }) < 0)
      return fail_errno(errno, "fchmod", object);
  }
  auto e = unix_endpoint(where);
  if (sys([&] { return ::bind(fd.get(), e.get(), e.length); }) < 0) {
    // bind() says EADDRINUSE when the path exists, whatever the file is: for a named object that
    // is "it exists". An abstract name is no file: it keeps EADDRINUSE.
    int err = errno == EADDRINUSE && !where.abstract ? EEXIST : errno;
    return fail_errno(err, "bind", object);
  }
  bound_socket out;
  out.where = where;
  if (!where.abstract) {
    struct stat st {};
    if (sys([&] { return ::lstat(where.path.c_str(), &st); }) == 0)
      out.file = socket_file(where.path, st.st_dev, st.st_ino);
  }
  // From here a failure removes the file just made (socket_file's destructor).
  if (listens) {
    if (sys([&] { return ::listen(fd.get(), SOMAXCONN); }) < 0)
      return fail_errno(errno, "listen", object);
  } else {
    auto sized = size_buffers(fd.get(), max_message, object);
    if (!sized) return std::unexpected(sized.error());
  }
  out.file.keep_unless(options.remove_on_close);
  out.fd = std::move(fd);
  return out;
}

result<bound_socket> bind_inet(const address& where, std::size_t max_message) {
  std::string object = where.to_string();
  auto candidates = resolve(where);
  if (!candidates) return std::unexpected(candidates.error());
  bool listens = is_connection_socket(where.kind);
  int type = socket_type(where.kind) | SOCK_CLOEXEC | (listens ? SOCK_NONBLOCK : 0);
  std::optional<error> last;
  for (const auto& candidate : *candidates) {
    unique_fd fd(sys([&] { return ::socket(candidate.family(), type, 0); }));
    if (!fd) {
      last = error::from_errno(errno, "socket", object);
      continue;
    }
    if (where.kind == mechanism::tcp) {
      // A restarted server can bind while its previous run's connections sit in TIME_WAIT. A port
      // somebody listens on still gives EADDRINUSE (at bind, or at listen when both set it).
      int on = 1;
      if (sys([&] { return ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); }) < 0)
        return fail_errno(errno, "setsockopt(SO_REUSEADDR)", object);
    }
    if (sys([&] { return ::bind(fd.get(), candidate.get(), candidate.length); }) < 0 ||
        (listens && sys([&] { return ::listen(fd.get(), SOMAXCONN); }) < 0)) {
      // The name is taken: binding another of its addresses would make a second, different
      // endpoint under the same name, so stop here.
      if (errno == EADDRINUSE) return fail_errno(errno, listens ? "bind/listen" : "bind", object);
      last = error::from_errno(errno, "bind", object);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (sys([&] {
          return ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
        }) < 0)
      return fail_errno(errno, "getsockname", object);
    bound_socket out;
    out.where = where;
    out.where.port = bound.ss_family == AF_INET6
                         ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                         : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    if (!listens) {
      auto sized = size_buffers(fd.get(), max_message, out.where.to_string());
      if (!sized) return std::unexpected(sized.error());
    }
    out.fd = std::move(fd);
    return out;
  }
  return std::unexpected(*last);
}

// Connects `fd` to `e` within the deadline. `fd` is O_NONBLOCK unless the deadline is never().
result<void> connect_within(int fd, const endpoint& e, bool unix_socket, deadline until,
                            const std::string& object) {
  for (;;) {
    if (sys([&] { return ::connect(fd, e.get(), e.length); }) == 0) return {};
    int err = errno;
    if (err == EISCONN) return {};  // a connect interrupted by a signal completed meanwhile
    if (err == EAGAIN && unix_socket) {
      // The listener's backlog is full. A unix connect does not complete in the background, so
      // try again shortly, up to the deadline.
      if (until.expired()) return fail(errc::timed_out, "connect", object, "the backlog is full");
      auto pause = std::min<deadline::clock::duration>(std::chrono::milliseconds(2), until.remaining());
      std::this_thread::sleep_for(pause);
      continue;
    }
    if (err != EINPROGRESS && err != EALREADY) return fail_errno(err, "connect", object);
    // TCP connects in the background (or a blocking connect was interrupted and goes on): wait
    // until it is writable, then read the outcome.
    auto ready = wait_for(fd, POLLOUT, until, object);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "connect", object);
    int so_error = 0;
    socklen_t length = sizeof so_error;
    if (sys([&] { return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length); }) < 0)
      return fail_errno(errno, "getsockopt(SO_ERROR)", object);
    if (so_error != 0) return fail_errno(so_error, "connect", object);
    return {};
  }
}

// Shared by the two transport classes: the descriptors, and accepting the first peer.
class socket_transport : public transport {
 public:
  int wait_fd() const noexcept override { return fd_ ? fd_.get() : listening_.get(); }
  channel_info info() const noexcept override { return info_; }
  const address& where() const noexcept override { return where_; }

 protected:
  socket_transport(unique_fd listening, unique_fd fd, address where, channel_info info,
                   socket_file file)
      : listening_(std::move(listening)),
        fd_(std::move(fd)),
        where_(std::move(where)),
        object_(where_.to_string()),
        info_(info),
        file_(std::move(file)) {}

  // The creator of a connection kind has no peer until its first send or recv accepts one.
  result<void> connected(deadline until) {
    if (fd_) [[likely]] return {};
    return accept_peer(until);
  }

 private:
  // Out of line so that connected(), on every send and recv, stays one test.
  [[gnu::noinline]] result<void> accept_peer(deadline until) {
    auto accepted = accept_connection(listening_.get(), until, object_);
    if (!accepted) return std::unexpected(accepted.error());
    auto configured = configure_connected(accepted->get(), where_.kind, info_.max_message, object_);
    if (!configured) return std::unexpected(configured.error());
    fd_ = std::move(*accepted);
    // One peer per channel: later connects are refused rather than left waiting in the backlog.
    listening_.reset();
    return {};
  }

 protected:
  unique_fd listening_;  // the creator's, until it accepted
  unique_fd fd_;
  address where_;
  std::string object_;
  channel_info info_;
  socket_file file_;  // removed on destruction with remove_on_close
};

// unix stream and tcp: length-prefixed frames over the byte stream.
class stream_socket final : public socket_transport {
 public:
  stream_socket(unique_fd listening, unique_fd fd, address where, channel_info info,
                socket_file file)
      : socket_transport(std::move(listening), std::move(fd), std::move(where), info,
                         std::move(file)),
        framing_(info.max_message, object_) {}

  result<void> send(std::span<const std::byte> message, deadline until) override {
    if (message.size() > info_.max_message)
      return too_large(message.size(), info_.max_message, object_);
    auto ready = connected(until);
    if (!ready) return ready;
    return framing_.send({fd_.get(), fd_.get(), true}, message, until);
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    auto ready = connected(until);
    if (!ready) return std::unexpected(ready.error());
    return framing_.recv({fd_.get(), fd_.get(), true}, buffer, until);
  }

 private:
  framed_stream framing_;
};

bool all_stuffing(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == stuffing; });
}

// True when `message` travels with one more stuffing byte: it is empty or made only of them.
bool needs_stuffing(std::span<const std::byte> message) {
  return message.empty() || (message[0] == stuffing && all_stuffing(message));
}

// seqpacket, unix datagram and udp: one message per packet (see the design note on stuffing).
class packet_socket final : public socket_transport {
 public:
  // `answers`: the bound side of a datagram kind, which sends to whoever it heard from last.
  packet_socket(unique_fd listening, unique_fd fd, address where, channel_info info,
                socket_file file, bool answers)
      : socket_transport(std::move(listening), std::move(fd), std::move(where), info,
                         std::move(file)),
        answers_(answers),
        seqpacket_(where_.kind == mechanism::unix_seqpacket) {}

  result<void> send(std::span<const std::byte> message, deadline until) override {
    if (message.size() > info_.max_message)
      return too_large(message.size(), info_.max_message, object_);
    auto ready = connected(until);
    if (!ready) return ready;
    const sockaddr* to = nullptr;
    socklen_t to_length = 0;
    if (answers_) {
      if (peer_.length == 0) {
        auto found = find_peer();
        if (!found) return found;
      }
      to = peer_.get();
      to_length = peer_.length;
    }
    int fd = fd_.get();
    result<std::size_t> sent;
    if (!needs_stuffing(message)) [[likely]] {
      auto send_to = [&](int flags) {
        return ::sendto(fd, message.data(), message.size(), flags | MSG_NOSIGNAL, to, to_length);
      };
      if (until.is_never() && sys([&] { return send_to(0); }) >= 0) [[likely]]
        return {};
      // Failed, so nothing went out: the general path tries once more and reports or waits.
      sent = socket_call(fd, POLLOUT, until, "send", object_, send_to);
    } else {
      std::byte extra = stuffing;
      iovec iov[2] = {{&extra, 1}, {const_cast<std::byte*>(message.data()), message.size()}};
      msghdr m{};
      m.msg_name = const_cast<sockaddr*>(to);
      m.msg_namelen = to_length;
      m.msg_iov = iov;
      m.msg_iovlen = 2;
      sent = socket_call(fd, POLLOUT, until, "send", object_,
                         [&](int flags) { return ::sendmsg(fd, &m, flags | MSG_NOSIGNAL); });
    }
    if (!sent) return std::unexpected(sent.error());
    return {};
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    auto ready = connected(until);
    if (!ready) return std::unexpected(ready.error());
    int fd = fd_.get();
    for (;;) {
      if (buffer.size() < info_.max_message) {
        auto fits = peek_fits(buffer, until);
        if (!fits) return std::unexpected(fits.error());
      }
      sockaddr_storage from;  // the kernel fills from_length bytes; note_peer reads no more
      socklen_t from_length = answers_ ? sizeof from : 0;
      sockaddr* from_address = answers_ ? reinterpret_cast<sockaddr*>(&from) : nullptr;
      // MSG_TRUNC: the result is the packet's real length, so a truncation shows.
      auto got = socket_call(fd, POLLIN, until, "recv", object_, [&](int flags) {
        return ::recvfrom(fd, buffer.data(), buffer.size(), flags | MSG_TRUNC, from_address,
                          answers_ ? &from_length : nullptr);
      });
      if (!got) return closed_or(got.error());
      if (answers_) note_peer(from, from_length);
      std::size_t n = *got;
      if (n == 0) {
        if (seqpacket_) return fail(errc::end_of_stream, "recv", object_);
        continue;  // a joiner's hello: its sender is noted, and there is no message
      }
      if (n > buffer.size()) {
        // A stuffed message of exactly the buffer's size: the byte cut off was stuffing too. (Only a
        // peer with a larger max_message could send a longer message that starts the same way.)
        if (n == buffer.size() + 1 && all_stuffing(buffer)) return buffer.size();
        // Only a peer configured with a larger max_message can send this; the kernel has
        // already dropped the tail.
        return fail(errc::message_too_large, "recv", object_,
                    "a message of " + std::to_string(n) + " bytes, larger than the buffer (" +
                        std::to_string(buffer.size()) + "), arrived and was discarded");
      }
      if (buffer[0] == stuffing && all_stuffing(buffer.first(n))) return n - 1;
      return n;
    }
  }

 private:
  // The small-buffer path: looks at the next packet without taking it (plus one byte, to see
  // whether a packet one byte longer than the buffer is a stuffed message that fits) and fails
  // with errc::message_too_large, the packet kept, when the message does not fit.
  result<void> peek_fits(std::span<std::byte> buffer, deadline until) {
    std::byte spill{};
    iovec iov[2] = {{buffer.data(), buffer.size()}, {&spill, 1}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    int fd = fd_.get();
    auto length = socket_call(fd, POLLIN, until, "recv", object_, [&](int flags) {
      return ::recvmsg(fd, &m, flags | MSG_PEEK | MSG_TRUNC);
    });
    if (!length) return closed_or(length.error());
    std::size_t n = *length;
    if (n <= buffer.size()) return {};  // fits, or an empty packet (the end, or a hello)
    if (n == buffer.size() + 1 && spill == stuffing && all_stuffing(buffer)) return {};
    return fail(errc::message_too_large, "recv", object_,
                "the message has " + std::to_string(n) + " bytes, the buffer " +
                    std::to_string(buffer.size()));
  }

  std::unexpected<error> closed_or(const error& e) const {
    // A seqpacket peer that died with data unread resets the connection: for the reader that is
    // the end of the stream, as for the framed stream kinds.
    if (seqpacket_ && e == std::errc::connection_reset)
      return fail(errc::end_of_stream, "recv", object_, "connection reset");
    return std::unexpected(e);
  }

  void note_peer(const sockaddr_storage& from, socklen_t length) {
    // A unix sender that never bound has no address to answer to (its length covers at most the
    // family): forget the previous peer rather than answer the wrong one.
    if (length <= sizeof(sa_family_t) || length > sizeof from) {
      peer_.length = 0;
      return;
    }
    std::memcpy(&peer_.storage, &from, length);
    peer_.length = length;
  }

  // The bound side has not received anything yet: the first queued packet, typically a joiner's
  // hello, names the peer. A message is left for recv; a hello, which carries nothing, is taken.
  result<void> find_peer() {
    sockaddr_storage from{};
    socklen_t length = sizeof from;
    int fd = fd_.get();
    ssize_t n = sys([&] {
      return ::recvfrom(fd, nullptr, 0, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC,
                        reinterpret_cast<sockaddr*>(&from), &length);
    });
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "recv", object_);
    if (n >= 0) note_peer(from, length);
    if (peer_.length == 0)
      return fail(errc::no_peer, "send", object_,
                  "nobody has joined or sent to this address yet, so there is no one to answer");
    if (n == 0) (void)sys([&] { return ::recv(fd, nullptr, 0, MSG_DONTWAIT); });
    return {};
  }

  bool answers_;
  bool seqpacket_;
  endpoint peer_;  // length 0: none yet
};

result<transport_ptr> make_bound_transport(bound_socket bound, std::size_t max_message) {
  auto info = info_for(bound.where.kind, max_message);
  if (is_byte_stream_socket(bound.where.kind))
    return std::make_unique<stream_socket>(std::move(bound.fd), unique_fd(),
                                           std::move(bound.where), info, std::move(bound.file));
  if (bound.where.kind == mechanism::unix_seqpacket)
    return std::make_unique<packet_socket>(std::move(bound.fd), unique_fd(),
                                           std::move(bound.where), info, std::move(bound.file),
                                           false);
  return std::make_unique<packet_socket>(unique_fd(), std::move(bound.fd), std::move(bound.where),
                                         info, std::move(bound.file), true);
}

result<bound_socket> bind_with_max(const address& where, const channel_options& options,
                                   std::size_t max_message) {
  if (is_unix(where.kind)) return bind_unix(where, options, max_message);
  return bind_inet(where, max_message);
}

result<transport_ptr> create_socket(const address& where, const channel_options& options) {
  auto max = max_message_for(where, options);
  if (!max) return std::unexpected(max.error());
  auto bound = bind_with_max(where, options, *max);
  if (!bound) return std::unexpected(bound.error());
  return make_bound_transport(std::move(*bound), *max);
}

result<transport_ptr> join_socket(const address& where, const channel_options& options) {
  auto fd = connect_socket(where, deadline::never());
  if (!fd) return std::unexpected(fd.error());
  return make_connected_transport(std::move(*fd), where, options);
}

// create, or join what exists; a unix socket file nobody is bound to is replaced. Another process
// may be doing the same at the same moment, so each step can find the previous one's answer
// outdated: try again a few times. (Two processes replacing the same stale file at once can still
// both unlink and bind, one after the other; the later one wins the name.)
result<transport_ptr> open_either(const address& where, const channel_options& options) {
  std::optional<error> last;
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto made = create_socket(where, options);
    if (made) return made;
    if (made.error() != std::errc::file_exists && made.error() != std::errc::address_in_use)
      return made;
    auto joined = join_socket(where, options);
    if (joined) return joined;
    last = joined.error();
    if (joined.error() == std::errc::connection_refused && is_path_socket(where)) {
      auto removed = unlink_stale(where);
      if (!removed) return std::unexpected(removed.error());
      continue;
    }
    // The owner went away between our create and our join: start over.
    if (joined.error() == std::errc::connection_refused ||
        joined.error() == std::errc::no_such_file_or_directory)
      continue;
    return joined;
  }
  return std::unexpected(*last);
}

}  // namespace

bool is_connection_socket(mechanism kind) noexcept {
  return kind == mechanism::unix_stream || kind == mechanism::unix_seqpacket ||
         kind == mechanism::tcp;
}

bool is_byte_stream_socket(mechanism kind) noexcept {
  return kind == mechanism::unix_stream || kind == mechanism::tcp;
}

socket_file& socket_file::operator=(socket_file&& other) noexcept {
  if (this != &other) {
    reset();
    path_ = std::move(other.path_);
    device_ = other.device_;
    inode_ = other.inode_;
    remove_ = std::exchange(other.remove_, false);
    other.path_.clear();
  }
  return *this;
}

void socket_file::reset() noexcept {
  if (remove_ && !path_.empty()) {
    // Only the file this process bound: if it was removed and someone else bound the path since,
    // theirs stays. (A destructor cannot fail; a file already gone is what was wanted.)
    struct stat st {};
    if (sys([&] { return ::lstat(path_.c_str(), &st); }) == 0 && st.st_dev == device_ &&
        st.st_ino == inode_)
      (void)sys([&] { return ::unlink(path_.c_str()); });
  }
  path_.clear();
  remove_ = false;
}

result<bound_socket> bind_socket(const address& where, const channel_options& options) {
  auto max = max_message_for(where, options);
  if (!max) return std::unexpected(max.error());
  return bind_with_max(where, options, *max);
}

result<bound_socket> bind_socket_replacing_stale(const address& where,
                                                 const channel_options& options) {
  for (int attempt = 0;; ++attempt) {
    auto bound = bind_socket(where, options);
    if (bound || !is_path_socket(where) || bound.error() != std::errc::file_exists || attempt == 8)
      return bound;
    // Someone listening answers within the second (a full backlog ends in timed_out: busy, but
    // there); ECONNREFUSED means nobody is bound to the file.
    auto probe = connect_socket(where, std::chrono::seconds(1));
    if (probe || probe.error() == errc::timed_out)
      return std::unexpected(error(bound.error().code(), bound.error().operation(),
                                   bound.error().object(), "a server is listening on it"));
    if (probe.error() == std::errc::connection_refused) {
      auto removed = unlink_stale(where);
      if (!removed) return std::unexpected(removed.error());
      continue;
    }
    if (probe.error() == std::errc::no_such_file_or_directory) continue;  // gone meanwhile
    return std::unexpected(probe.error());
  }
}

result<unique_fd> accept_connection(int listening, deadline until, const std::string& object) {
  for (;;) {
    unique_fd fd(sys([&] { return ::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC); }));
    if (fd) return fd;
    // The client gave up before we took its connection: wait for the next one.
    if (errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "accept", object);
    if (until.expired()) return fail(errc::timed_out, "accept", object);
    auto ready = wait_for(listening, POLLIN, until, object);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "accept", object);
  }
}

result<unique_fd> connect_socket(const address& where, deadline until) {
  std::string object = where.to_string();
  auto candidates = resolve(where);
  if (!candidates) return std::unexpected(candidates.error());
  bool unix_socket = is_unix(where.kind);
  int type = socket_type(where.kind) | SOCK_CLOEXEC | (until.is_never() ? 0 : SOCK_NONBLOCK);
  std::optional<error> last;
  // A name may resolve to several addresses (localhost: ::1 and 127.0.0.1): the first that
  // answers wins.
  for (const auto& candidate : *candidates) {
    unique_fd fd(sys([&] { return ::socket(candidate.family(), type, 0); }));
    if (!fd) return fail_errno(errno, "socket", object);
    if (where.kind == mechanism::unix_dgram) {
      // Autobind (an address of just the family): the kernel picks a unique abstract name, so
      // the bound side's answers have somewhere to go.
      sockaddr_un self{};
      self.sun_family = AF_UNIX;
      if (sys([&] {
            return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&self), sizeof(sa_family_t));
          }) < 0)
        return fail_errno(errno, "bind (autobind)", object);
    }
    auto connected = connect_within(fd.get(), candidate, unix_socket, until, object);
    if (!connected) {
      if (connected.error() == errc::timed_out) return std::unexpected(connected.error());
      last = connected.error();
      continue;
    }
    if (!until.is_never()) {
      auto blocking = set_nonblocking(fd.get(), false, object);
      if (!blocking) return std::unexpected(blocking.error());
    }
    return fd;
  }
  return std::unexpected(*last);
}

result<void> set_no_delay(int fd, const std::string& object) {
  int on = 1;
  if (sys([&] { return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on); }) < 0)
    return fail_errno(errno, "setsockopt(TCP_NODELAY)", object);
  return {};
}

result<transport_ptr> make_connected_transport(unique_fd fd, const address& where,
                                               const channel_options& options) {
  auto max = max_message_for(where, options);
  if (!max) return std::unexpected(max.error());
  std::string object = where.to_string();
  auto configured = configure_connected(fd.get(), where.kind, *max, object);
  if (!configured) return std::unexpected(configured.error());
  auto info = info_for(where.kind, *max);
  if (is_byte_stream_socket(where.kind))
    return std::make_unique<stream_socket>(unique_fd(), std::move(fd), where, info, socket_file());
  if (where.kind == mechanism::unix_dgram || where.kind == mechanism::udp) {
    // The hello: see the design note at the top. Sent without waiting: if the bound side's queue
    // is full it is busy reading others, and a lost hello only means it cannot speak first.
    if (sys([&] { return ::send(fd.get(), nullptr, 0, MSG_DONTWAIT | MSG_NOSIGNAL); }) < 0 &&
        errno != EAGAIN && errno != EWOULDBLOCK)
      return fail_errno(errno, "send (hello)", object);
  }
  return std::make_unique<packet_socket>(unique_fd(), std::move(fd), where, info, socket_file(),
                                         false);
}

result<transport_ptr> open_socket(const address& where, open_mode mode,
                                  const channel_options& options) {
  switch (mode) {
    case open_mode::create: return create_socket(where, options);
    case open_mode::join: return join_socket(where, options);
    case open_mode::open: return open_either(where, options);
  }
  return fail(errc::not_supported, "open_socket", where.to_string());
}

result<void> remove_socket(const address& where) {
  if (!is_path_socket(where)) return {};  // an abstract name vanishes with its socket
  std::string object = where.to_string();
  struct stat st {};
  if (sys([&] { return ::lstat(where.path.c_str(), &st); }) < 0)
    return fail_errno(errno, "remove", object);
  if (!S_ISSOCK(st.st_mode))
    return fail_code(std::errc::not_a_socket, "remove", object,
                     "the path is not a socket; refusing to unlink it");
  if (sys([&] { return ::unlink(where.path.c_str()); }) < 0)
    return fail_errno(errno, "unlink", object);
  return {};
}

}  // namespace ipcx::detail
