// Shared-memory segments: shm:/name (POSIX), sysv-shm:KEY (System V) and memfd (sealed, handed
// over a Unix socket). See include/ipcx/shared_memory.hpp for the contract.
//
// Design: every kind ends in the same state: a descriptor where there is one, a detail::mapping of
// exactly the size the object had when it was checked, and what removal needs (the POSIX file's
// identity, the SysV id, the memfd:/path socket file). The size is always read from the object
// (fstat / IPC_STAT) after opening it and before mapping it; a size the caller passed is only ever
// a minimum to compare with.
#include "ipcx/shared_memory.hpp"

#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "core/io.hpp"
#include "core/mapping.hpp"
#include "core/syscall.hpp"
#include "ipcx/unique_fd.hpp"
#include "transport/socket_common.hpp"
#include "transport/transport.hpp"

namespace ipcx {

struct shared_memory::state {
  ipcx::address where;
  std::string text;  // the address as written, or "memfd:" for an anonymous memfd
  detail::mapping map;
  unique_fd fd;
  int sysv_id = -1;
  bool remove_on_close = false;
  // POSIX: the file this process created, so remove_on_close unlinks only that one.
  dev_t device = 0;
  ino_t inode = 0;
  // memfd:/path creator: the listening socket (its file is removed with it).
  detail::bound_socket server;
  peer_policy peers;

  state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  ~state();
};

namespace {

using detail::sys;

constexpr char kSegmentByte = 'S';  // hand-over message carrying the descriptor
constexpr char kRefusedByte = 'R';  // hand-over message saying "your uid/pid is not allowed"
constexpr std::size_t kMaxReceivedFds = 16;

result<std::unique_ptr<shared_memory::state>> receive_state(int unix_socket_fd,
                                                            const peer_policy& policy,
                                                            deadline until);

std::unexpected<error> fail_code(std::errc code, std::string operation, std::string object,
                                 std::string detail) {
  return std::unexpected(error(std::make_error_code(code), std::move(operation), std::move(object),
                               std::move(detail)));
}

// The same error about `object` instead of the helper's own name for it (the socket helpers name
// the unix:/path they were given; the user wrote memfd:/path).
std::unexpected<error> about(const error& e, const std::string& object) {
  return std::unexpected(error(e.code(), e.operation(), object, e.detail()));
}

std::string ids(const std::vector<uid_t>& values) {
  std::string out;
  for (auto v : values) out += (out.empty() ? "" : ", ") + std::to_string(v);
  return out;
}

std::string describe(const peer_policy& policy) {
  std::string out = policy.uids.empty()
                        ? "allows only this process's uid " + std::to_string(::geteuid())
                        : "allows uids " + ids(policy.uids);
  if (!policy.pids.empty()) {
    std::string pids;
    for (auto p : policy.pids) pids += (pids.empty() ? "" : ", ") + std::to_string(p);
    out += " and pids " + pids;
  }
  return out;
}

result<address> parse_segment_address(std::string_view text) {
  auto where = address::parse(text);
  if (!where) return std::unexpected(where.error());
  if (where->kind != mechanism::shm && where->kind != mechanism::sysv_shm &&
      where->kind != mechanism::memfd)
    return fail(errc::bad_address, "shared_memory", std::string(text),
                "expected shm:/name, sysv-shm:KEY or memfd:/socket-path");
  return where;
}

// The unix stream socket a memfd:/path creator listens on.
address socket_address(const address& where) {
  address out;
  out.kind = mechanism::unix_stream;
  out.path = where.path;
  return out;
}

result<void> check_size(std::size_t actual, std::size_t min_size, const std::string& operation,
                        const std::string& object) {
  if (actual == 0)
    return fail(errc::corrupt_segment, operation, object,
                "the segment is empty (0 bytes): truncated, or its creator has not sized it yet");
  if (actual < min_size)
    return fail(errc::corrupt_segment, operation, object,
                "the segment has " + std::to_string(actual) + " bytes, fewer than the " +
                    std::to_string(min_size) + " required (truncated by another process?)");
  return {};
}

result<std::size_t> size_of(int fd, const std::string& object) {
  struct stat st {};
  if (sys([&] { return ::fstat(fd, &st); }) < 0) return fail_errno(errno, "fstat", object);
  return static_cast<std::size_t>(st.st_size);
}

result<void> check_create_size(std::size_t size, const std::string& object) {
  if (size == 0)
    return fail_code(std::errc::invalid_argument, "shared_memory::create", object,
                     "size 0: a segment holds at least one byte");
  if (size > static_cast<std::size_t>(std::numeric_limits<off_t>::max()))
    return fail_code(std::errc::file_too_large, "shared_memory::create", object,
                     "size " + std::to_string(size) + " does not fit in off_t");
  return {};
}

shared_memory make(std::unique_ptr<shared_memory::state> s) { return shared_memory(std::move(s)); }

// ---- POSIX ---------------------------------------------------------------------------------

result<shared_memory> create_posix(const address& where, std::size_t size,
                                   const segment_options& options) {
  std::string text = where.to_string();
  if (auto ok = check_create_size(size, text); !ok) return std::unexpected(ok.error());
  const char* name = where.path.c_str();
  mode_t mode = options.permissions & 07777;
  unique_fd fd(sys(
      [&] { return ::shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode); }));
  if (!fd) return fail_errno(errno, "shm_open", text);
  // From here a failure removes the object this call made, so a failed create leaves nothing.
  auto undo = [&](std::unexpected<error> e) {
    (void)sys([&] { return ::shm_unlink(name); });
    return e;
  };
  // shm_open applies the umask; the mode asked for is the mode wanted (as for sockets and queues).
  if (sys([&] { return ::fchmod(fd.get(), mode); }) < 0)
    return undo(fail_errno(errno, "fchmod", text));
  if (sys([&] { return ::ftruncate(fd.get(), static_cast<off_t>(size)); }) < 0)
    return undo(fail_errno(errno, "ftruncate", text));
  struct stat st {};
  if (sys([&] { return ::fstat(fd.get(), &st); }) < 0)
    return undo(fail_errno(errno, "fstat", text));
  // Another process with write access could already have truncated it (it exists under its name
  // since shm_open): check, as join does.
  if (auto ok =
          check_size(static_cast<std::size_t>(st.st_size), size, "shared_memory::create", text);
      !ok)
    return undo(std::unexpected(ok.error()));
  auto map = detail::mapping::map(fd.get(), size, text);
  if (!map) return undo(std::unexpected(map.error()));

  auto s = std::make_unique<shared_memory::state>();
  s->where = where;
  s->text = std::move(text);
  s->map = std::move(*map);
  s->fd = std::move(fd);
  s->remove_on_close = options.remove_on_close;
  s->device = st.st_dev;
  s->inode = st.st_ino;
  return make(std::move(s));
}

result<shared_memory> join_posix(const address& where, std::size_t min_size) {
  std::string text = where.to_string();
  unique_fd fd(
      sys([&] { return ::shm_open(where.path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0); }));
  if (!fd) return fail_errno(errno, "shm_open", text);
  auto size = size_of(fd.get(), text);
  if (!size) return std::unexpected(size.error());
  if (auto ok = check_size(*size, min_size, "shared_memory::join", text); !ok)
    return std::unexpected(ok.error());
  auto map = detail::mapping::map(fd.get(), *size, text);
  if (!map) return std::unexpected(map.error());
  auto s = std::make_unique<shared_memory::state>();
  s->where = where;
  s->text = std::move(text);
  s->map = std::move(*map);
  s->fd = std::move(fd);
  return make(std::move(s));
}

result<void> remove_posix(const address& where) {
  if (sys([&] { return ::shm_unlink(where.path.c_str()); }) < 0)
    return fail_errno(errno, "shm_unlink", where.to_string());
  return {};
}

// ---- System V ------------------------------------------------------------------------------

result<key_t> key_of(const address& where) {
  if (where.path.empty()) return static_cast<key_t>(where.key);
  // 'x', as sysv-mq does: one path names the same key for every ipcx object kind.
  key_t key = sys([&] { return ::ftok(where.path.c_str(), 'x'); });
  if (key == -1) return fail_errno(errno, "ftok", where.to_string());
  return key;
}

result<shared_memory> create_sysv(const address& where, std::size_t size,
                                  const segment_options& options) {
  std::string text = where.to_string();
  if (auto ok = check_create_size(size, text); !ok) return std::unexpected(ok.error());
  auto key = key_of(where);
  if (!key) return std::unexpected(key.error());
  // shmget's mode is not narrowed by the umask.
  int id = sys([&] {
    return ::shmget(*key, size,
                    IPC_CREAT | IPC_EXCL | static_cast<int>(options.permissions & 0777));
  });
  if (id < 0) {
    // EINVAL here is a size outside SHMMIN..SHMMAX (the key cannot be invalid): say so.
    if (errno == EINVAL)
      return fail_code(std::errc::invalid_argument, "shmget", text,
                       "size " + std::to_string(size) +
                           " is outside the host's limits (/proc/sys/kernel/shmmax)");
    return fail_errno(errno, "shmget", text);
  }
  auto map = detail::mapping::attach(id, size, text);
  if (!map) {
    (void)sys([&] { return ::shmctl(id, IPC_RMID, nullptr); });  // a failed create leaves nothing
    return std::unexpected(map.error());
  }
  auto s = std::make_unique<shared_memory::state>();
  s->where = where;
  s->text = std::move(text);
  s->map = std::move(*map);
  s->sysv_id = id;
  s->remove_on_close = options.remove_on_close;
  return make(std::move(s));
}

result<shared_memory> join_sysv(const address& where, std::size_t min_size) {
  std::string text = where.to_string();
  auto key = key_of(where);
  if (!key) return std::unexpected(key.error());
  // shmget with no mode bits checks no permission; asking for read-write makes a process that
  // could not attach read-write fail here, with EACCES.
  int id = sys([&] { return ::shmget(*key, 0, 0600); });
  if (id < 0) return fail_errno(errno, "shmget", text);
  shmid_ds ds{};
  if (sys([&] { return ::shmctl(id, IPC_STAT, &ds); }) < 0)
    return fail_errno(errno, "shmctl(IPC_STAT)", text);
  if (auto ok = check_size(ds.shm_segsz, min_size, "shared_memory::join", text); !ok)
    return std::unexpected(ok.error());
  auto map = detail::mapping::attach(id, ds.shm_segsz, text);
  if (!map) return std::unexpected(map.error());
  auto s = std::make_unique<shared_memory::state>();
  s->where = where;
  s->text = std::move(text);
  s->map = std::move(*map);
  s->sysv_id = id;
  return make(std::move(s));
}

result<void> remove_sysv(const address& where) {
  std::string text = where.to_string();
  auto key = key_of(where);
  if (!key) return std::unexpected(key.error());
  int id = sys([&] { return ::shmget(*key, 0, 0); });
  if (id < 0) return fail_errno(errno, "shmget", text);
  // The segment goes when the last process detaches; its key is released at once.
  if (sys([&] { return ::shmctl(id, IPC_RMID, nullptr); }) < 0)
    return fail_errno(errno, "shmctl(IPC_RMID)", text);
  return {};
}

// ---- memfd ---------------------------------------------------------------------------------

result<std::unique_ptr<shared_memory::state>> make_memfd(std::size_t size, const address& where) {
  std::string text = where.to_string();
  if (auto ok = check_create_size(size, text); !ok) return std::unexpected(ok.error());
  // The name shows in /proc/PID/fd and /proc/PID/maps only; it names nothing. 249 bytes at most.
  std::string debug_name = ("ipcx " + text).substr(0, 249);
  unique_fd fd(
      sys([&] { return ::memfd_create(debug_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING); }));
  if (!fd) return fail_errno(errno, "memfd_create", text);
  if (sys([&] { return ::ftruncate(fd.get(), static_cast<off_t>(size)); }) < 0)
    return fail_errno(errno, "ftruncate", text);
  // F_SEAL_SEAL last: from here on nobody, this process included, can change the size or the
  // seals, which is what lets a receiver map it without fear of SIGBUS.
  if (sys([&] {
        return ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      }) < 0)
    return fail_errno(errno, "fcntl(F_ADD_SEALS)", text);
  auto map = detail::mapping::map(fd.get(), size, text);
  if (!map) return std::unexpected(map.error());
  auto s = std::make_unique<shared_memory::state>();
  s->where = where;
  s->text = std::move(text);
  s->map = std::move(*map);
  s->fd = std::move(fd);
  return s;
}

result<shared_memory> create_memfd_at(const address& where, std::size_t size,
                                      const segment_options& options) {
  std::string text = where.to_string();
  auto s = make_memfd(size, where);
  if (!s) return std::unexpected(s.error());
  // The socket file is the segment's only name and is useless without its creator (the memory has
  // no name in the kernel): it is always removed with the creator, and a file nobody listens on is
  // taken for a dead creator's leftover and replaced.
  auto bound = detail::bind_socket_replacing_stale(
      socket_address(where), {.permissions = options.permissions, .remove_on_close = true});
  if (!bound) return about(bound.error(), text);
  (*s)->server = std::move(*bound);
  (*s)->peers = options.peers;
  return make(std::move(*s));
}

result<shared_memory> join_memfd(const address& where, std::size_t min_size,
                                 const segment_options& options) {
  std::string text = where.to_string();
  auto fd = detail::connect_socket(socket_address(where), options.until);
  if (!fd) return about(fd.error(), text);
  auto received = receive_state(fd->get(), options.peers, options.until);
  if (!received) return about(received.error(), text);
  if (auto ok = check_size((*received)->map.size(), min_size, "shared_memory::join", text); !ok)
    return std::unexpected(ok.error());
  (*received)->where = where;
  (*received)->text = std::move(text);
  return make(std::move(*received));
}

result<void> remove_memfd(const address& where) {
  std::string text = where.to_string();
  if (where.path.empty())
    return fail_code(std::errc::invalid_argument, "shared_memory::remove", text,
                     "an anonymous memfd has no name to remove");
  auto removed = detail::remove_socket(socket_address(where));
  if (!removed) return about(removed.error(), text);
  return {};
}

// One byte of data, plus the descriptor when `fd` >= 0.
result<void> send_handover(int socket_fd, char byte, int fd, const std::string& object) {
  iovec iov{.iov_base = &byte, .iov_len = 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  if (fd >= 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  // MSG_NOSIGNAL: a peer that went away is EPIPE for this call, not SIGPIPE for the process.
  if (sys([&] { return ::sendmsg(socket_fd, &msg, MSG_NOSIGNAL); }) < 0)
    return fail_errno(errno, "sendmsg", object);
  return {};
}

result<ucred> peer_credentials(int socket_fd, const std::string& object) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (sys([&] { return ::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &length); }) < 0)
    return fail_errno(errno, "getsockopt(SO_PEERCRED)", object);
  return cred;
}

// receive_memfd up to the mapped state; the caller names it.
result<std::unique_ptr<shared_memory::state>> receive_state(int unix_socket_fd,
                                                            const peer_policy& policy,
                                                            deadline until) {
  std::string object = "socket fd " + std::to_string(unix_socket_fd);
  auto cred = peer_credentials(unix_socket_fd, object);
  if (!cred) return std::unexpected(cred.error());
  if (!policy.allows(cred->uid, cred->pid))
    return fail_code(std::errc::operation_not_permitted, "receive_memfd", object,
                     "the peer (uid " + std::to_string(cred->uid) + ", pid " +
                         std::to_string(cred->pid) + ") is not allowed: the peer policy " +
                         describe(policy));

  char byte = 0;
  iovec iov{.iov_base = &byte, .iov_len = 1};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxReceivedFds)> control{};
  msghdr msg{};
  ssize_t n = 0;
  for (;;) {
    msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    // MSG_CMSG_CLOEXEC: the received descriptors are close-on-exec from birth.
    int flags = MSG_CMSG_CLOEXEC | (until.is_never() ? 0 : MSG_DONTWAIT);
    n = sys([&] { return ::recvmsg(unix_socket_fd, &msg, flags); });
    if (n >= 0) break;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail_errno(errno, "recvmsg", object);
    if (until.expired()) return fail(errc::timed_out, "receive_memfd", object);
    auto ready = detail::wait_for(unix_socket_fd, POLLIN, until, object);
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return fail(errc::timed_out, "receive_memfd", object);
  }

  // Own every descriptor that came before looking at anything else, so each one is closed on every
  // path: the first is the segment, any others are closed unused.
  std::vector<unique_fd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  if (n == 0)
    return fail(errc::end_of_stream, "receive_memfd", object,
                "the peer closed the connection without handing over a segment");
  if (fds.empty()) {
    if (byte == kRefusedByte)
      return fail_code(std::errc::operation_not_permitted, "receive_memfd", object,
                       "the creator refused this process (uid " + std::to_string(::geteuid()) +
                           ", pid " + std::to_string(::getpid()) +
                           "): its peer policy does not allow it");
    return fail_code(std::errc::bad_message, "receive_memfd", object,
                     "a message came without a descriptor");
  }
  unique_fd fd = std::move(fds.front());

  int seals = sys([&] { return ::fcntl(fd.get(), F_GET_SEALS); });
  if (seals < 0)
    return fail_code(std::errc::operation_not_permitted, "receive_memfd", object,
                     "the descriptor received is not a sealable memfd (F_GET_SEALS: " +
                         std::generic_category().message(errno) + ")");
  constexpr int required = F_SEAL_SHRINK | F_SEAL_GROW;
  if ((seals & required) != required)
    return fail_code(std::errc::operation_not_permitted, "receive_memfd", object,
                     "the memfd is not sealed against shrinking and growing "
                     "(F_SEAL_SHRINK | F_SEAL_GROW): an unsealed segment could be shrunk under "
                     "this process");
  auto size = size_of(fd.get(), object);
  if (!size) return std::unexpected(size.error());
  if (auto ok = check_size(*size, 0, "receive_memfd", object); !ok)
    return std::unexpected(ok.error());
  auto map = detail::mapping::map(fd.get(), *size, object);
  if (!map) return std::unexpected(map.error());

  auto s = std::make_unique<shared_memory::state>();
  s->where.kind = mechanism::memfd;
  s->text = s->where.to_string();
  s->map = std::move(*map);
  s->fd = std::move(fd);
  return s;
}

}  // namespace

// ---- peer_policy ---------------------------------------------------------------------------

bool peer_policy::allows(uid_t uid, pid_t pid) const noexcept {
  bool uid_ok =
      uids.empty() ? uid == ::geteuid() : std::find(uids.begin(), uids.end(), uid) != uids.end();
  bool pid_ok = pids.empty() || std::find(pids.begin(), pids.end(), pid) != pids.end();
  return uid_ok && pid_ok;
}

// ---- shared_memory -------------------------------------------------------------------------

shared_memory::state::~state() {
  if (!remove_on_close) return;
  if (sysv_id >= 0) {
    // By id, which names exactly this segment (a successor under the same key has another id).
    // Already removed (EINVAL/EIDRM) is fine: gone either way.
    (void)sys([&] { return ::shmctl(sysv_id, IPC_RMID, nullptr); });
  } else if (where.kind == mechanism::shm) {
    // Only the object this process created: if it was removed and the name reused since, the
    // successor's stays. (The check and the unlink are two steps; a replacement squeezed between
    // them would be removed: the same window socket files have.)
    unique_fd probe(
        sys([&] { return ::shm_open(where.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0); }));
    struct stat st {};
    if (probe && sys([&] { return ::fstat(probe.get(), &st); }) == 0 && st.st_dev == device &&
        st.st_ino == inode)
      (void)sys([&] { return ::shm_unlink(where.path.c_str()); });
  }
  // memfd:/path: the socket file goes with `server` (socket_file removes only its own file).
}

shared_memory::shared_memory(std::unique_ptr<state> s) noexcept
    : state_(std::move(s)), bytes_(state_->map.bytes()) {}
// A moved-from segment owns nothing and shows no bytes (its span would outlive the mapping).
shared_memory::shared_memory(shared_memory&& other) noexcept
    : state_(std::move(other.state_)), bytes_(std::exchange(other.bytes_, {})) {}
shared_memory& shared_memory::operator=(shared_memory&& other) noexcept {
  if (this != &other) {
    state_ = std::move(other.state_);
    bytes_ = std::exchange(other.bytes_, {});
  }
  return *this;
}
shared_memory::~shared_memory() = default;

int shared_memory::fd() const noexcept { return state_ ? state_->fd.get() : -1; }

const ipcx::address& shared_memory::address() const noexcept {
  static const ipcx::address none{};
  return state_ ? state_->where : none;
}

int shared_memory::serve_fd() const noexcept { return state_ ? state_->server.fd.get() : -1; }

result<shared_memory> shared_memory::create(std::string_view address, std::size_t size,
                                            const segment_options& options) {
  auto where = parse_segment_address(address);
  if (!where) return std::unexpected(where.error());
  return create(*where, size, options);
}

result<shared_memory> shared_memory::create(const ipcx::address& where, std::size_t size,
                                            const segment_options& options) {
  switch (where.kind) {
    case mechanism::shm: return create_posix(where, size, options);
    case mechanism::sysv_shm: return create_sysv(where, size, options);
    case mechanism::memfd:
      if (where.path.empty()) {
        auto s = make_memfd(size, where);
        if (!s) return std::unexpected(s.error());
        return make(std::move(*s));
      }
      return create_memfd_at(where, size, options);
    default: break;
  }
  return fail(errc::bad_address, "shared_memory::create", where.to_string(),
              "expected shm:/name, sysv-shm:KEY or memfd:/socket-path");
}

result<shared_memory> shared_memory::join(std::string_view address, std::size_t min_size,
                                          const segment_options& options) {
  auto where = parse_segment_address(address);
  if (!where) return std::unexpected(where.error());
  return join(*where, min_size, options);
}

result<shared_memory> shared_memory::join(const ipcx::address& where, std::size_t min_size,
                                          const segment_options& options) {
  switch (where.kind) {
    case mechanism::shm: return join_posix(where, min_size);
    case mechanism::sysv_shm: return join_sysv(where, min_size);
    case mechanism::memfd:
      if (where.path.empty())
        return fail_code(std::errc::invalid_argument, "shared_memory::join", where.to_string(),
                         "an anonymous memfd has no name to join: use receive_memfd");
      return join_memfd(where, min_size, options);
    default: break;
  }
  return fail(errc::bad_address, "shared_memory::join", where.to_string(),
              "expected shm:/name, sysv-shm:KEY or memfd:/socket-path");
}

result<shared_memory> shared_memory::open(std::string_view address, std::size_t size,
                                          const segment_options& options) {
  auto where = parse_segment_address(address);
  if (!where) return std::unexpected(where.error());
  return open(*where, size, options);
}

result<shared_memory> shared_memory::open(const ipcx::address& where, std::size_t size,
                                          const segment_options& options) {
  // Join, else create. Another process may create or remove the segment between the two calls
  // (EEXIST after ENOENT): start over, a bounded number of times.
  for (int attempt = 0;; ++attempt) {
    auto joined = join(where, size, options);
    bool missing =
        !joined &&
        (joined.error() == std::errc::no_such_file_or_directory ||
         (where.kind == mechanism::memfd && joined.error() == std::errc::connection_refused));
    if (!missing || attempt == 8) return joined;
    auto created = create(where, size, options);
    if (created || created.error() != std::errc::file_exists) return created;
  }
}

result<shared_memory> shared_memory::create_memfd(std::size_t size) {
  ipcx::address where;
  where.kind = mechanism::memfd;
  auto s = make_memfd(size, where);
  if (!s) return std::unexpected(s.error());
  return make(std::move(*s));
}

result<void> shared_memory::remove(std::string_view address) {
  auto where = parse_segment_address(address);
  if (!where) return std::unexpected(where.error());
  return remove(*where);
}

result<void> shared_memory::remove(const ipcx::address& where) {
  switch (where.kind) {
    case mechanism::shm: return remove_posix(where);
    case mechanism::sysv_shm: return remove_sysv(where);
    case mechanism::memfd: return remove_memfd(where);
    default: break;
  }
  return fail(errc::bad_address, "shared_memory::remove", where.to_string(),
              "expected shm:/name, sysv-shm:KEY or memfd:/socket-path");
}

result<void> shared_memory::serve_one(deadline until) {
  if (!state_ || !state_->server.fd)
    return fail(errc::not_supported, "serve_one", state_ ? state_->text : std::string(),
                "only the creator of a memfd:/path segment serves hand-overs");
  const std::string& text = state_->text;
  auto connection = detail::accept_connection(state_->server.fd.get(), until, text);
  if (!connection) return about(connection.error(), text);
  auto cred = peer_credentials(connection->get(), text);
  if (!cred) return std::unexpected(cred.error());
  if (!state_->peers.allows(cred->uid, cred->pid)) {
    // Tell the joiner why it gets nothing, so its error is as clear as ours. If it already left,
    // there is nobody to tell: the refusal below is the result either way.
    (void)send_handover(connection->get(), kRefusedByte, -1, text);
    return fail_code(std::errc::operation_not_permitted, "serve_one", text,
                     "the joiner (uid " + std::to_string(cred->uid) + ", pid " +
                         std::to_string(cred->pid) + ") is not allowed: the peer policy " +
                         describe(state_->peers));
  }
  return send_handover(connection->get(), kSegmentByte, state_->fd.get(), text);
}

result<void> send_memfd(int unix_socket_fd, const shared_memory& segment) {
  std::string object = "socket fd " + std::to_string(unix_socket_fd);
  if (segment.address().kind != mechanism::memfd || segment.fd() < 0)
    return fail_code(std::errc::invalid_argument, "send_memfd", segment.address().to_string(),
                     "only a sealed memfd segment can be handed over");
  return send_handover(unix_socket_fd, kSegmentByte, segment.fd(), object);
}

result<shared_memory> receive_memfd(int unix_socket_fd, const peer_policy& policy, deadline until) {
  auto s = receive_state(unix_socket_fd, policy, until);
  if (!s) return std::unexpected(s.error());
  return make(std::move(*s));
}

}  // namespace ipcx
