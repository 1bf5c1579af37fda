// pipe: anonymous pipes carrying messages: as packets on the packet-mode pipes channel::pipe()
// makes (O_DIRECT: see src/core/framing.cpp), as length-prefixed frames on plain ones.
//
// A channel end reads one pipe and writes another. channel::pipe() makes two connected ends (end A
// reads pipe 1 and writes pipe 2, end B the reverse), as socketpair would; after fork each process
// keeps one. For exec, keep_across_exec() clears close-on-exec on the end's two descriptors and the
// child joins "pipe:R,W"; "pipe:" alone is stdin/stdout, so `ipcx send pipe: | ipcx recv pipe:`
// works.
//
// Design: each direction has the descriptor it was given (used, blocking, by never-deadline calls
// in one plain read/write) and a private O_NONBLOCK open file description of the same pipe, opened
// through /proc/self/fd on the first call with a deadline. The twin keeps O_NONBLOCK off the
// shared description, which the peer process or a shell may also use. Twins stay close-on-exec.
//
// Adopted descriptors are checked when the channel is made (open, a pipe or FIFO, the right access
// mode). An explicit descriptor that fails the check fails the join. Descriptors 0, 1 and 2 are
// laxer because a program's invoker wires only the stdio it means: `ipcx send pipe:` may run with
// a terminal on stdin. Such a direction fails only when it is used; the join fails if neither
// direction is usable. The channel closes the descriptors it adopted, except 0, 1 and 2.
//
// Limitation: the kernel gives a pipe's inode mode 0600 and its creator's uid, so a process that
// inherited a pipe from another uid cannot open /proc/self/fd/N for the deadline twin (EACCES).
// Never-deadline calls do not need the twin and still work there.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/framing.hpp"
#include "core/io.hpp"
#include "core/syscall.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

// One direction of a channel end.
struct direction {
  int fd = -1;            // the descriptor to read or write; -1 when the direction is unusable
  unique_fd owned;        // holds fd when the channel closes it (not 0/1/2, not a shared fd)
  unique_fd nonblocking;  // private O_NONBLOCK twin, opened on the first call with a deadline
  std::optional<error> unusable;  // why fd cannot be used (a stdio descriptor that is no pipe)
  bool packets = false;           // the pipe is in packet mode (O_DIRECT): see framing.cpp
};

const char* file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a pipe";
}

result<std::size_t> frame_limit(const channel_options& options, const std::string& object) {
  std::size_t max = options.max_message ? options.max_message : framed_stream::default_max_message;
  // The frame header holds a 32-bit length.
  if (max > UINT32_MAX)
    return std::unexpected(
        error(std::make_error_code(std::errc::invalid_argument), "pipe", object,
              "max_message " + std::to_string(max) + " exceeds the 32-bit frame length"));
  return max;
}

// Checks that `fd` is an open pipe or FIFO readable (or writable) through this descriptor. The
// error names the descriptor and its role; `operation` is the verb reported.
std::optional<error> check_descriptor(int fd, bool for_reading, const std::string& operation,
                                      const std::string& object) {
  std::string name =
      "descriptor " + std::to_string(fd) + (for_reading ? " (read" : " (write") + " end)";
  int flags = sys([&] { return ::fcntl(fd, F_GETFL); });
  if (flags < 0) {
    int e = errno;
    return error(std::error_code(e, std::generic_category()), operation, object,
                 e == EBADF ? name + " is not open" : name + ": fcntl(F_GETFL) failed");
  }
  struct stat st {};
  if (sys([&] { return ::fstat(fd, &st); }) != 0)
    return error(std::error_code(errno, std::generic_category()), operation, object,
                 name + ": fstat failed");
  if (!S_ISFIFO(st.st_mode))
    return error(std::make_error_code(std::errc::not_supported), operation, object,
                 name + " is " + file_kind(st.st_mode) + ", not a pipe or FIFO");
  int access = flags & O_ACCMODE;
  bool ok = access == O_RDWR || access == (for_reading ? O_RDONLY : O_WRONLY);
  if (!ok)
    return error(std::make_error_code(std::errc::bad_file_descriptor), operation, object,
                 name + " is not open for " + (for_reading ? "reading" : "writing"));
  return std::nullopt;
}

class pipe_transport final : public transport {
 public:
  pipe_transport(address where, std::size_t max_message, direction in, direction out)
      : where_(std::move(where)),
        object_(where_.to_string()),
        frames_(max_message, object_),
        in_(std::move(in)),
        out_(std::move(out)) {}

  result<void> send(std::span<const std::byte> message, deadline until) override {
    if (!until.is_never() || out_.unusable) [[unlikely]] {
      auto usable = prepare(out_, O_WRONLY);
      if (!usable) return usable;
    }
    return frames_.send(stream(out_), message, until);
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    if (!until.is_never() || in_.unusable) [[unlikely]] {
      auto usable = prepare(in_, O_RDONLY);
      if (!usable) return std::unexpected(usable.error());
    }
    return frames_.recv(stream(in_), buffer, until);
  }

  int wait_fd() const noexcept override { return in_.fd; }

  channel_info info() const noexcept override {
    return {.kind = mechanism::pipe,
            .max_message = frames_.max_message(),
            .ordered = true,
            .persistent = false,
            .cross_host = false,
            .stream = true};
  }

  const address& where() const noexcept override { return where_; }

  result<void> keep_across_exec() override {
    for (const direction* d : {&in_, &out_}) {
      if (d->fd < 0) continue;
      auto kept = set_cloexec(d->fd, false, object_);
      if (!kept) return kept;
    }
    return {};
  }

 private:
  // Kept off the never-deadline path: the error of a direction that cannot be used, and the
  // non-blocking twin, opened on the first call with a deadline.
  [[gnu::noinline]] result<void> prepare(direction& d, int access) {
    if (d.unusable) return std::unexpected(*d.unusable);
    if (d.nonblocking) return {};
    auto twin = reopen(d.fd, access | O_NONBLOCK, object_);
    if (!twin) return std::unexpected(twin.error());
    d.nonblocking = std::move(*twin);
    return {};
  }

  // Until the twin exists (never-deadline calls only), the shared descriptor stands in for it: if
  // someone else set O_NONBLOCK on that description, a blocking-path EAGAIN then polls the right
  // descriptor instead of poll(-1) sleeping forever.
  static stream_end stream(const direction& d) noexcept {
    return {.blocking = d.fd,
            .nonblocking = d.nonblocking ? d.nonblocking.get() : d.fd,
            .socket = false,
            .packets = d.packets};
  }

  address where_;
  std::string object_;
  framed_stream frames_;
  direction in_;
  direction out_;
};

// A direction over an inherited descriptor, or the error that makes the join fail.
result<direction> adopt(int fd, bool for_reading, open_mode mode, const std::string& object,
                        bool already_owned) {
  direction d;
  const std::string verb = mode == open_mode::join ? "join" : "open";
  if (auto bad = check_descriptor(fd, for_reading, verb, object)) {
    if (fd > 2) return std::unexpected(std::move(*bad));
    // A stdio descriptor the invoker did not wire to a pipe: fine until this direction is used.
    d.unusable = error(bad->code(), for_reading ? "recv" : "send", object, bad->detail());
    return d;
  }
  d.fd = fd;
  if (fd > 2 && !already_owned) d.owned.reset(fd);
  return d;
}

}  // namespace

result<transport_ptr> open_pipe(const address& where, open_mode mode,
                                const channel_options& options) {
  std::string object = where.to_string();
  if (mode == open_mode::create)
    return fail(errc::not_supported, "create", object, "use channel::pipe() to make a pipe pair");
  auto max = frame_limit(options, object);
  if (!max) return std::unexpected(max.error());
  ignore_sigpipe_once();

  auto in = adopt(where.read_fd, true, mode, object, false);
  if (!in) return std::unexpected(in.error());
  // "pipe:5,5" (one O_RDWR FIFO descriptor for both directions) is owned, and closed, once.
  auto out = adopt(where.write_fd, false, mode, object, where.write_fd == where.read_fd);
  if (!out) return std::unexpected(out.error());
  if (in->unusable && out->unusable)
    return std::unexpected(error(in->unusable->code(), mode == open_mode::join ? "join" : "open",
                                 object, in->unusable->detail() + "; " + out->unusable->detail()));
  // channel::pipe() makes both of an end's pipes in packet mode, and the kernel shows O_DIRECT
  // only on a pipe's write end: so the end's write descriptor tells the protocol of both
  // directions. An exec'd child joining "pipe:R,W" thus speaks packets; a shell's pipes are plain.
  bool packets = out->fd >= 0 && (sys([&] { return ::fcntl(out->fd, F_GETFL); }) & O_DIRECT) != 0;
  in->packets = out->packets = packets;
  return std::make_unique<pipe_transport>(where, *max, std::move(*in), std::move(*out));
}

result<std::pair<transport_ptr, transport_ptr>> make_pipe_pair(const channel_options& options) {
  auto max = frame_limit(options, "pipe:");
  if (!max) return std::unexpected(max.error());
  ignore_sigpipe_once();

  int a_to_b[2] = {-1, -1};
  int b_to_a[2] = {-1, -1};
  // Packet mode lets most messages travel without a frame header (framing.cpp).
  if (sys([&] { return ::pipe2(b_to_a, O_CLOEXEC | O_DIRECT); }) != 0)
    return fail_errno(errno, "pipe2");
  unique_fd a_in(b_to_a[0]);
  unique_fd b_out(b_to_a[1]);
  if (sys([&] { return ::pipe2(a_to_b, O_CLOEXEC | O_DIRECT); }) != 0)
    return fail_errno(errno, "pipe2");
  unique_fd b_in(a_to_b[0]);
  unique_fd a_out(a_to_b[1]);

  auto end = [&](unique_fd& in_fd, unique_fd& out_fd) {
    direction in;
    in.fd = in_fd.get();
    in.owned = std::move(in_fd);
    in.packets = true;
    direction out;
    out.fd = out_fd.get();
    out.owned = std::move(out_fd);
    out.packets = true;
    address where;
    where.kind = mechanism::pipe;
    where.read_fd = in.fd;
    where.write_fd = out.fd;
    return std::make_unique<pipe_transport>(where, *max, std::move(in), std::move(out));
  };
  transport_ptr a = end(a_in, a_out);
  transport_ptr b = end(b_in, b_out);
  return std::pair{std::move(a), std::move(b)};
}

}  // namespace ipcx::detail
