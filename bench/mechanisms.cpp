// Each mechanism's ping-pong set-up, raw and ipcx side by side.
//
// A mechanism's body runs in the initiator, creates what must exist before the fork, forks the
// responder, and then runs on in both processes: each opens or joins its side, and both call
// session::run with their endpoints. Objects the initiator creates before the fork are joined by
// name in the responder (as an unrelated program would), never used through inherited copies.
// Raw and ipcx objects are separate and named apart ("raw-a", "ipcx-a"), so the two never see
// each other's messages.
#include "mechanisms.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "endpoints.hpp"
#include "ipcx/channel.hpp"
#include "ipcx/unique_fd.hpp"
#include "stream.hpp"

namespace ipcx::bench {
namespace {

// "call("object"): cause", the form ipcx's own errors take.
std::string call_error(const char* call, const std::string& object, int errno_value) {
  std::string cause = std::strerror(errno_value);
  if (!cause.empty())
    cause[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(cause[0])));
  if (object.empty()) return std::string(call) + ": " + cause;
  return std::string(call) + "(\"" + object + "\"): " + cause;
}

// A raw call failed (errno set). `size_refused`: the errno may mean that the host refuses the
// message size (EINVAL from mq_open, msgget...), which makes the row n/a rather than failed.
void raw_failed(session& s, const char* call, const std::string& object,
                bool size_refused = false) {
  int e = errno;
  bool na = size_refused && (e == EINVAL || e == EMSGSIZE);
  s.unavailable(
      impl::raw, na ? row_status::not_available : row_status::failed,
      call_error(call, object, e) +
          (na ? " (message size " + std::to_string(s.size()) + " refused by the host)" : ""));
}

void ipcx_failed(session& s, const error& e, bool size_refused = false) {
  bool na = size_refused && (e == std::errc::invalid_argument || e == errc::message_too_large ||
                             e == std::errc::message_size);
  s.unavailable(impl::ipcx, na ? row_status::not_available : row_status::failed, e.message());
}

// Keeps a channel that opened and carries messages of the case's size; records why not otherwise.
void keep(session& s, result<channel> opened, std::optional<channel>& out,
          bool size_refused = false) {
  if (!s.usable(impl::ipcx)) return;
  if (!opened) {
    ipcx_failed(s, opened.error(), size_refused);
    return;
  }
  if (opened->info().max_message < s.size()) {
    s.unavailable(impl::ipcx, row_status::not_available,
                  opened->address().to_string() + " carries at most " +
                      std::to_string(opened->info().max_message) + " bytes");
    return;
  }
  out.emplace(std::move(*opened));
}

unique_fd open_raw(session& s, const std::string& path, int flags, mode_t mode = 0) {
  if (!s.usable(impl::raw)) return unique_fd();
  unique_fd fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
  if (!fd) raw_failed(s, "open", path);
  return fd;
}

std::optional<ipcx_endpoint> ipcx_side(std::optional<channel>& tx, std::optional<channel>& rx) {
  if (!tx || !rx) return std::nullopt;
  return ipcx_endpoint(&*tx, &*rx);
}

// Ping-pong, or (throughput) a one-way stream over the same endpoints: the initiator only sends,
// the responder only receives.
template <typename Raw>
int run(session& s, Raw& raw, std::optional<ipcx_endpoint>& ix) {
  if (s.spec().kind != "throughput") return s.run(&raw, ix ? &*ix : nullptr);
  stream_control* controls = stream_controls(s);
  if (controls == nullptr) {
    s.unavailable(impl::raw, row_status::failed, "mmap(MAP_SHARED): no stream control area");
    s.unavailable(impl::ipcx, row_status::failed, "mmap(MAP_SHARED): no stream control area");
    return s.run(static_cast<stream_endpoint<endpoint_ref<Raw>>*>(nullptr),
                 static_cast<stream_endpoint<endpoint_ref<ipcx_endpoint>>*>(nullptr));
  }
  stream_endpoint<endpoint_ref<Raw>> raw_stream(&controls[0], &raw);
  std::optional<stream_endpoint<endpoint_ref<ipcx_endpoint>>> ipcx_stream;
  if (ix) ipcx_stream.emplace(&controls[1], &*ix);
  return s.run(&raw_stream, ipcx_stream ? &*ipcx_stream : nullptr);
}

// ---------------------------------------------------------------------------------------------
// pipe: two pipes, or channel::pipe(), made before the fork; each process keeps its ends.

int pipe_main(session& s) {
  int down[2] = {-1, -1};  // initiator -> responder
  int up[2] = {-1, -1};    // responder -> initiator
  if (::pipe2(down, O_CLOEXEC) != 0 || ::pipe2(up, O_CLOEXEC) != 0) raw_failed(s, "pipe2", "");
  unique_fd down_read(down[0]), down_write(down[1]), up_read(up[0]), up_write(up[1]);
  std::optional<channel> mine, theirs;
  if (auto pair = channel::pipe({.max_message = s.size()}); pair) {
    mine.emplace(std::move(pair->first));
    theirs.emplace(std::move(pair->second));
  } else {
    ipcx_failed(s, pair.error());
  }
  bool responder = s.fork_responder();
  // Each process closes the other's ends, so a peer that dies is an end of stream, not a hang.
  if (responder) {
    std::swap(mine, theirs);
    down_write.reset();
    up_read.reset();
  } else {
    down_read.reset();
    up_write.reset();
  }
  theirs.reset();
  fd_pair_endpoint raw = responder ? fd_pair_endpoint(down_read.get(), up_write.get())
                                   : fd_pair_endpoint(up_read.get(), down_write.get());
  auto ix = ipcx_side(mine, mine);
  return run(s, raw, ix);
}

// ---------------------------------------------------------------------------------------------
// fifo: two FIFOs, "a" carrying initiator -> responder and "b" the replies.

int fifo_main(session& s) {
  const auto& spec = s.spec();
  std::string raw_a = spec.path("raw-a"), raw_b = spec.path("raw-b");
  std::string ipcx_a = "fifo:" + spec.path("ipcx-a"), ipcx_b = "fifo:" + spec.path("ipcx-b");
  if (::mkfifo(raw_a.c_str(), 0600) != 0)
    raw_failed(s, "mkfifo", raw_a);
  else if (::mkfifo(raw_b.c_str(), 0600) != 0)
    raw_failed(s, "mkfifo", raw_b);
  std::optional<channel> a, b;
  keep(s, channel::create(ipcx_a, {.max_message = s.size()}), a);
  keep(s, channel::create(ipcx_b, {.max_message = s.size()}), b);

  bool responder = s.fork_responder();
  // Both open "a" first, then "b": a blocking FIFO open waits for the other end, so opposite
  // orders would wait for each other.
  unique_fd read_fd, write_fd;
  if (responder) {
    read_fd = open_raw(s, raw_a, O_RDONLY);
    write_fd = open_raw(s, raw_b, O_WRONLY);
    a.reset();
    b.reset();
    keep(s, channel::join(ipcx_a, {.max_message = s.size()}), a);
    keep(s, channel::join(ipcx_b, {.max_message = s.size()}), b);
  } else {
    write_fd = open_raw(s, raw_a, O_WRONLY);
    read_fd = open_raw(s, raw_b, O_RDONLY);
  }
  fd_pair_endpoint raw(read_fd.get(), write_fd.get());
  // ipcx opens its FIFO ends lazily, at the first send and recv of the warm-up.
  auto ix = responder ? ipcx_side(b, a) : ipcx_side(a, b);
  return run(s, raw, ix);
}

// ---------------------------------------------------------------------------------------------
// file: two logs, "a" written by the initiator and followed by the responder, "b" the reverse.

int file_main(session& s) {
  const auto& spec = s.spec();
  std::string raw_a = spec.path("raw-a"), raw_b = spec.path("raw-b");
  std::string ipcx_a = "file:" + spec.path("ipcx-a"), ipcx_b = "file:" + spec.path("ipcx-b");
  unique_fd file_a = open_raw(s, raw_a, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  unique_fd file_b = open_raw(s, raw_b, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
  // The initiator's watch on "b" exists before the responder can write it.
  auto watch = [&](const std::string& path) {
    if (!s.usable(impl::raw)) return unique_fd();
    unique_fd fd(::inotify_init1(IN_CLOEXEC));
    if (!fd)
      raw_failed(s, "inotify_init1", path);
    else if (::inotify_add_watch(fd.get(), path.c_str(), IN_MODIFY) < 0)
      raw_failed(s, "inotify_add_watch", path);
    return fd;
  };
  unique_fd events = watch(raw_b);
  std::optional<channel> a, b;
  keep(s, channel::create(ipcx_a, {.max_message = s.size()}), a);
  keep(s, channel::create(ipcx_b, {.max_message = s.size()}), b);

  bool responder = s.fork_responder();
  if (responder) {
    // The responder's watch on "a" is armed before run()'s handshake lets the initiator write.
    events = watch(raw_a);
    file_a = open_raw(s, raw_a, O_RDONLY | O_NOFOLLOW);
    file_b = open_raw(s, raw_b, O_WRONLY | O_NOFOLLOW);
    a.reset();
    b.reset();
    keep(s, channel::join(ipcx_a, {.max_message = s.size()}), a);
    keep(s, channel::join(ipcx_b, {.max_message = s.size()}), b);
    file_endpoint raw(file_b.get(), file_a.get(), events.get());
    auto ix = ipcx_side(b, a);
    return run(s, raw, ix);
  }
  file_endpoint raw(file_a.get(), file_b.get(), events.get());
  auto ix = ipcx_side(a, b);
  return run(s, raw, ix);
}

// ---------------------------------------------------------------------------------------------
// signal: each process receives on its own signalfd / signal:self and sends to the other's pid.

// The raw side's signal, kept apart from the one ipcx uses so the two never mix.
int raw_signal() { return SIGRTMAX - 3; }

int signal_main(session& s) {
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, raw_signal());
  // Blocked before the fork, so the responder never has a moment with the default action
  // (termination) in place.
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) raw_failed(s, "sigprocmask", "");
  s.fork_responder();
  unique_fd signal_fd;
  if (s.usable(impl::raw)) {
    signal_fd.reset(::signalfd(-1, &set, SFD_CLOEXEC));
    if (!signal_fd) raw_failed(s, "signalfd", "");
  }
  std::optional<channel> self, peer;
  keep(s, channel::create("signal:self"), self);
  // join("signal:PID") refuses a process that does not block the signal yet (it would die of
  // it), so each side listens first and joins once the other says it listens.
  s.tell_peer("listening");
  if (!s.hear_peer()) return 1;
  keep(s, channel::join("signal:" + std::to_string(s.peer_pid())), peer);
  signal_endpoint raw(s.peer_pid(), raw_signal(), signal_fd.get());
  auto ix = ipcx_side(peer, self);
  return run(s, raw, ix);
}

// ---------------------------------------------------------------------------------------------
// mq: two POSIX queues, "a" carrying initiator -> responder and "b" the replies.

constexpr long queue_capacity = 8;  // within this host's msg_max of 10

int mq_main(session& s) {
  const auto& spec = s.spec();
  std::string raw_a = spec.ipc_name("raw-a"), raw_b = spec.ipc_name("raw-b");
  std::string ipcx_a = "mq:" + spec.ipc_name("ipcx-a"), ipcx_b = "mq:" + spec.ipc_name("ipcx-b");
  auto create_queue = [&](const std::string& name) {
    if (!s.usable(impl::raw)) return unique_fd();
    mq_attr attr{};
    attr.mq_maxmsg = queue_capacity;
    attr.mq_msgsize = static_cast<long>(s.size());
    unique_fd q(::mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr));
    if (!q) raw_failed(s, "mq_open", name, true);
    return q;
  };
  auto open_queue = [&](const std::string& name) {
    if (!s.usable(impl::raw)) return unique_fd();
    unique_fd q(::mq_open(name.c_str(), O_RDWR | O_CLOEXEC));
    if (!q) raw_failed(s, "mq_open", name);
    return q;
  };
  unique_fd queue_a = create_queue(raw_a), queue_b = create_queue(raw_b);
  channel_options options{.max_message = s.size(),
                          .capacity = static_cast<std::size_t>(queue_capacity)};
  std::optional<channel> a, b;
  keep(s, channel::create(ipcx_a, options), a, true);
  keep(s, channel::create(ipcx_b, options), b, true);

  if (s.fork_responder()) {
    queue_a = open_queue(raw_a);
    queue_b = open_queue(raw_b);
    a.reset();
    b.reset();
    keep(s, channel::join(ipcx_a, options), a);
    keep(s, channel::join(ipcx_b, options), b);
    mq_endpoint raw(queue_b.get(), queue_a.get());
    auto ix = ipcx_side(b, a);
    return run(s, raw, ix);
  }
  mq_endpoint raw(queue_a.get(), queue_b.get());
  auto ix = ipcx_side(a, b);
  return run(s, raw, ix);
}

// ---------------------------------------------------------------------------------------------
// sysv-mq: two System V queues, keys 0 and 1 raw, 2 and 3 ipcx.

std::optional<long> read_proc_long(const char* path) {
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return std::nullopt;
  long value = 0;
  bool ok = std::fscanf(f, "%ld", &value) == 1;
  std::fclose(f);
  if (!ok) return std::nullopt;
  return value;
}

int sysv_mq_main(session& s) {
  const auto& spec = s.spec();
  // msgsnd refuses a message above msgmax with EINVAL at every send; say so up front.
  if (auto msgmax = read_proc_long("/proc/sys/kernel/msgmax");
      msgmax && static_cast<long>(s.size()) > *msgmax) {
    std::string why = "message size " + std::to_string(s.size()) + " above the host's msgmax " +
                      std::to_string(*msgmax);
    s.unavailable(impl::raw, row_status::not_available, why);
    s.unavailable(impl::ipcx, row_status::not_available, why);
  }
  auto create_queue = [&](long key) {
    if (!s.usable(impl::raw)) return -1;
    int id = ::msgget(static_cast<key_t>(key), IPC_CREAT | IPC_EXCL | 0600);
    if (id < 0) raw_failed(s, "msgget", std::to_string(key));
    return id;
  };
  auto open_queue = [&](long key) {
    if (!s.usable(impl::raw)) return -1;
    int id = ::msgget(static_cast<key_t>(key), 0600);
    if (id < 0) raw_failed(s, "msgget", std::to_string(key));
    return id;
  };
  int queue_a = create_queue(spec.key(0));
  int queue_b = create_queue(spec.key(1));
  std::string ipcx_a = "sysv-mq:" + std::to_string(spec.key(2));
  std::string ipcx_b = "sysv-mq:" + std::to_string(spec.key(3));
  channel_options options{.max_message = s.size()};
  std::optional<channel> a, b;
  keep(s, channel::create(ipcx_a, options), a, true);
  keep(s, channel::create(ipcx_b, options), b, true);

  if (s.fork_responder()) {
    queue_a = open_queue(spec.key(0));
    queue_b = open_queue(spec.key(1));
    a.reset();
    b.reset();
    keep(s, channel::join(ipcx_a, options), a);
    keep(s, channel::join(ipcx_b, options), b);
    sysv_endpoint raw(queue_b, queue_a, s.size());
    auto ix = ipcx_side(b, a);
    return run(s, raw, ix);
  }
  sysv_endpoint raw(queue_a, queue_b, s.size());
  auto ix = ipcx_side(a, b);
  return run(s, raw, ix);
}

// ---------------------------------------------------------------------------------------------
// Sockets: the responder creates (binds, listens), the initiator joins (connects).

struct socket_kind {
  const char* scheme;  // "unix:", "tcp://"...
  int domain;
  int type;
  bool stream;  // needs the send/recv loops of a byte stream
  bool dgram;   // no connection: the responder answers the last sender
};

socklen_t unix_address(const std::string& path, sockaddr_un& out) {
  out = {};
  out.sun_family = AF_UNIX;
  std::memcpy(out.sun_path, path.data(), std::min(path.size(), sizeof out.sun_path - 1));
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

socklen_t loopback_address(std::uint16_t port, sockaddr_in& out) {
  out = {};
  out.sin_family = AF_INET;
  out.sin_port = htons(port);
  out.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sizeof out;
}

void no_delay(session& s, int fd) {
  int on = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
    raw_failed(s, "setsockopt(TCP_NODELAY)", "");
}

int socket_main(session& s, const socket_kind& kind) {
  const auto& spec = s.spec();
  const bool inet = kind.domain == AF_INET;
  std::string raw_path = spec.path("raw.sock");
  std::string ipcx_text = inet ? std::string(kind.scheme) + "127.0.0.1:0"
                               : std::string(kind.scheme) + spec.path("ipcx.sock");
  auto raw_sockaddr = [&](std::uint16_t port, sockaddr_storage& out) {
    if (inet) return loopback_address(port, reinterpret_cast<sockaddr_in&>(out));
    return unix_address(raw_path, reinterpret_cast<sockaddr_un&>(out));
  };

  if (s.fork_responder()) {
    unique_fd listener;
    std::uint16_t raw_port = 0;
    if (s.usable(impl::raw)) {
      listener.reset(::socket(kind.domain, kind.type | SOCK_CLOEXEC, 0));
      sockaddr_storage where{};
      socklen_t length = raw_sockaddr(0, where);
      if (!listener) {
        raw_failed(s, "socket", "");
      } else if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&where), length) != 0) {
        raw_failed(s, "bind", inet ? "127.0.0.1:0" : raw_path);
      } else if (!kind.dgram && ::listen(listener.get(), 1) != 0) {
        raw_failed(s, "listen", "");
      } else if (inet) {
        sockaddr_in bound{};
        socklen_t bound_length = sizeof bound;
        if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0)
          raw_failed(s, "getsockname", "");
        raw_port = ntohs(bound.sin_port);
      }
    }
    std::optional<channel> ch;
    keep(s, channel::create(ipcx_text, {.max_message = s.size(), .remove_on_close = true}), ch);
    std::string ipcx_bound = ch ? ch->address().to_string() : "-";
    s.tell_peer("ready " + std::to_string(s.usable(impl::raw)) + " " + std::to_string(raw_port) +
                " " + ipcx_bound);
    auto connected = s.hear_peer();
    if (!connected) return 1;
    int raw_connected = 0;
    std::sscanf(connected->c_str(), "connected %d", &raw_connected);
    if (!raw_connected) s.unavailable(impl::raw, row_status::failed, "");
    unique_fd connection;
    if (s.usable(impl::raw) && !kind.dgram) {
      connection.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!connection)
        raw_failed(s, "accept4", "");
      else if (kind.domain == AF_INET)
        no_delay(s, connection.get());
    }
    if (!inet && listener) ::unlink(raw_path.c_str());  // connected or bound: the name is done
    auto ix = ipcx_side(ch, ch);
    if (kind.dgram) {
      dgram_server_endpoint raw(listener.get());
      return run(s, raw, ix);
    }
    socket_endpoint raw(connection.get(), kind.stream);
    return run(s, raw, ix);
  }

  auto ready = s.hear_peer();
  if (!ready) return 1;
  int raw_ready = 0;
  unsigned raw_port = 0;
  char ipcx_bound[256] = "-";
  std::sscanf(ready->c_str(), "ready %d %u %255s", &raw_ready, &raw_port, ipcx_bound);
  // An empty note: the responder knows why, and its reason is the one reported.
  if (!raw_ready) s.unavailable(impl::raw, row_status::failed, "");
  if (std::string(ipcx_bound) == "-") s.unavailable(impl::ipcx, row_status::failed, "");
  unique_fd fd;
  if (s.usable(impl::raw)) {
    fd.reset(::socket(kind.domain, kind.type | SOCK_CLOEXEC, 0));
    sockaddr_storage where{};
    socklen_t length = raw_sockaddr(static_cast<std::uint16_t>(raw_port), where);
    sa_family_t family = AF_UNIX;
    if (!fd) {
      raw_failed(s, "socket", "");
    } else if (kind.dgram && !inet &&
               ::bind(fd.get(), reinterpret_cast<sockaddr*>(&family), sizeof family) != 0) {
      // Autobind (an abstract name chosen by the kernel), so the replies have an address.
      raw_failed(s, "bind", "(autobind)");
    } else if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&where), length) != 0) {
      raw_failed(s, "connect", inet ? "127.0.0.1:" + std::to_string(raw_port) : raw_path);
    } else if (kind.domain == AF_INET && kind.stream) {
      no_delay(s, fd.get());
    }
  }
  std::optional<channel> ch;
  if (s.usable(impl::ipcx)) keep(s, channel::join(ipcx_bound, {.max_message = s.size()}), ch);
  s.tell_peer("connected " + std::to_string(s.usable(impl::raw)));
  socket_endpoint raw(fd.get(), kind.stream);
  auto ix = ipcx_side(ch, ch);
  return run(s, raw, ix);
}

int unix_main(session& s) { return socket_main(s, {"unix:", AF_UNIX, SOCK_STREAM, true, false}); }
int unix_dgram_main(session& s) {
  return socket_main(s, {"unix-dgram:", AF_UNIX, SOCK_DGRAM, false, true});
}
int unix_seqpacket_main(session& s) {
  return socket_main(s, {"unix-seqpacket:", AF_UNIX, SOCK_SEQPACKET, false, false});
}
int tcp_main(session& s) { return socket_main(s, {"tcp://", AF_INET, SOCK_STREAM, true, false}); }
int udp_main(session& s) { return socket_main(s, {"udp://", AF_INET, SOCK_DGRAM, false, true}); }

// ---------------------------------------------------------------------------------------------
// Cleanup, in the orchestrator.

void remove_ipcx(const std::string& address) { (void)channel::remove(address); }

void cleanup_none(const case_spec&) {}

void cleanup_fifo(const case_spec& spec) {
  ::unlink(spec.path("raw-a").c_str());
  ::unlink(spec.path("raw-b").c_str());
  remove_ipcx("fifo:" + spec.path("ipcx-a"));
  remove_ipcx("fifo:" + spec.path("ipcx-b"));
}

void cleanup_file(const case_spec& spec) {
  ::unlink(spec.path("raw-a").c_str());
  ::unlink(spec.path("raw-b").c_str());
  remove_ipcx("file:" + spec.path("ipcx-a"));
  remove_ipcx("file:" + spec.path("ipcx-b"));
}

void cleanup_mq(const case_spec& spec) {
  ::mq_unlink(spec.ipc_name("raw-a").c_str());
  ::mq_unlink(spec.ipc_name("raw-b").c_str());
  remove_ipcx("mq:" + spec.ipc_name("ipcx-a"));
  remove_ipcx("mq:" + spec.ipc_name("ipcx-b"));
}

void cleanup_sysv_mq(const case_spec& spec) {
  for (int i = 0; i < 2; ++i)
    if (int id = ::msgget(static_cast<key_t>(spec.key(i)), 0); id >= 0)
      ::msgctl(id, IPC_RMID, nullptr);
  remove_ipcx("sysv-mq:" + std::to_string(spec.key(2)));
  remove_ipcx("sysv-mq:" + std::to_string(spec.key(3)));
}

template <const char* Scheme>
void cleanup_unix(const case_spec& spec) {
  ::unlink(spec.path("raw.sock").c_str());
  remove_ipcx(std::string(Scheme) + spec.path("ipcx.sock"));
}
constexpr char unix_scheme[] = "unix:";
constexpr char unix_dgram_scheme[] = "unix-dgram:";
constexpr char unix_seqpacket_scheme[] = "unix-seqpacket:";

}  // namespace

const std::vector<mechanism_entry>& mechanisms() {
  // Largest sizes: the host's queue limits (msgsize_max, msgmax: 8192 here), a datagram's
  // limit (socket buffer, 64 KiB for UDP), a file log kept whole (1 MiB records for a tenth of a
  // second would write gigabytes per run).
  constexpr std::size_t any = std::size_t{1} << 30;
  static const std::vector<mechanism_entry> all = {
      {"pipe", {64, 4096}, any, nullptr, pipe_main, cleanup_none},
      {"fifo", {64, 4096}, any, nullptr, fifo_main, cleanup_fifo},
      {"file", {64, 4096}, 64 << 10, nullptr, file_main, cleanup_file},
      // A signal carries one 64-bit value; ipcx uses a byte of it for the length.
      {"signal", {7}, 7, nullptr, signal_main, cleanup_none},
      {"mq", {64, 4096}, any, nullptr, mq_main, cleanup_mq},
      {"sysv-mq", {64, 4096}, any, nullptr, sysv_mq_main, cleanup_sysv_mq},
      {"unix", {64, 4096}, any, nullptr, unix_main, cleanup_unix<unix_scheme>},
      {"unix-dgram",
       {64, 4096},
       64 << 10,
       nullptr,
       unix_dgram_main,
       cleanup_unix<unix_dgram_scheme>},
      {"unix-seqpacket",
       {64, 4096},
       64 << 10,
       nullptr,
       unix_seqpacket_main,
       cleanup_unix<unix_seqpacket_scheme>},
      {"tcp", {64, 4096}, any, nullptr, tcp_main, cleanup_none},
      {"udp",
       {64, 4096},
       32 << 10,
       "UDP has no flow control: a one-way stream loses what the "
       "receiver's buffer cannot hold, so no lossless rate exists to measure",
       udp_main,
       cleanup_none},
  };
  return all;
}

}  // namespace ipcx::bench
