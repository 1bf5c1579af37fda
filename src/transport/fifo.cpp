// fifo:/path: a named pipe carrying messages as packets (O_DIRECT: see src/core/framing.cpp).
//
// create() makes the FIFO (mkfifo, options.permissions, fails with EEXIST); join() requires an
// existing FIFO; open() does either. A FIFO carries one direction. The creator is taken to be the
// receiver, as with a queue: create() opens the read end at once, so senders can write (up to the
// pipe's buffer) before its first recv. A joiner opens an end only when it first uses it: its first
// send opens the write end, its first recv (or wait_fd()) the read end. A joining sender therefore
// holds no read end of its own, which would hide whether a receiver exists (no waiting for one, no
// EPIPE when it goes). The flip side: a creator that sends holds a read end, so its sends do not
// wait for a receiver; to send into a FIFO someone else reads, join it.
//
// Design:
// - Opening the write end waits for a receiver. With a deadline it retries
//   open(O_WRONLY|O_NONBLOCK), which fails with ENXIO while nobody reads, every 2 ms (connection
//   set-up only, never the message path) and then fails with errc::timed_out, "no reader has the
//   FIFO open". Without a deadline a plain blocking open waits in the kernel.
// - Each end is a blocking descriptor, used by never-deadline calls in one plain read/write, and
//   a private O_NONBLOCK twin of it (reopened through /proc/self/fd) for calls with a deadline.
//   The blocking one is opened O_NONBLOCK and then cleared, since a blocking open of a read end
//   would wait for a writer.
// - Linux reads 0 from a FIFO whose first writer has not arrived, which is not the end of the
//   stream. Until data has arrived, recv polls the read end first: poll reports POLLHUP only once
//   a writer opened after this read end has come and gone (the kernel records the writer count at
//   a non-blocking open). After that, reads are plain; read returning 0 (all writers left) is
//   errc::end_of_stream, and stays so until a writer appears again.
// - Every open uses O_NOFOLLOW and is bracketed by lstat and fstat: a symbolic link at the path is
//   refused with ELOOP, anything else that is not a FIFO with ENOTSUP, and nothing but a FIFO is
//   ever opened (opening a device can have effects).
// - join() checks that this process may read or write the FIFO (faccessat), so a receiver without
//   permission fails at join with EACCES naming the path, not at its first recv.
//
// wait_fd(): the read end, opened by the call if the channel is a joiner that has not received yet
// (polling makes it a receiver). Until a writer has come, it polls neither readable nor hung up.
//
// Several writers may share one FIFO; the kernel keeps a write of at most PIPE_BUF bytes whole,
// so their messages do not interleave while they are at most PIPE_BUF bytes (PIPE_BUF - 1 for a
// message starting with the escape byte 0xA5).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "core/framing.hpp"
#include "core/io.hpp"
#include "core/syscall.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

const char* file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a FIFO";
}

// The error for a path that exists but is not a FIFO: ELOOP for a symbolic link (what O_NOFOLLOW
// would report), ENOTSUP otherwise.
std::unexpected<error> not_a_fifo(mode_t mode, std::string operation, const std::string& path) {
  if (S_ISLNK(mode))
    return std::unexpected(error(std::make_error_code(std::errc::too_many_symbolic_link_levels),
                                 std::move(operation), path,
                                 "the path is a symbolic link; FIFOs are not reached through "
                                 "links"));
  return std::unexpected(error(std::make_error_code(std::errc::not_supported), std::move(operation),
                               path,
                               std::string("the path is ") + file_kind(mode) + ", not a FIFO"));
}

// lstat: ENOENT when missing, an error when it is not a FIFO.
result<void> expect_fifo(const std::string& path, const std::string& operation) {
  struct stat st {};
  if (sys([&] { return ::lstat(path.c_str(), &st); }) != 0) return fail_errno(errno, "lstat", path);
  if (!S_ISFIFO(st.st_mode)) return not_a_fifo(st.st_mode, operation, path);
  return {};
}

// Opens the FIFO at `path` with `flags` (plus O_NOFOLLOW | O_CLOEXEC), refusing anything else.
result<unique_fd> open_fifo_path(const std::string& path, int flags) {
  auto checked = expect_fifo(path, "open");
  if (!checked) return std::unexpected(checked.error());
  unique_fd fd(sys([&] { return ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC); }));
  if (!fd) return fail_errno(errno, "open", path);
  // The path may have been replaced between lstat and open.
  struct stat st {};
  if (sys([&] { return ::fstat(fd.get(), &st); }) != 0) return fail_errno(errno, "fstat", path);
  if (!S_ISFIFO(st.st_mode)) return not_a_fifo(st.st_mode, "open", path);
  return fd;
}

result<std::size_t> frame_limit(const channel_options& options, const std::string& object) {
  std::size_t max = options.max_message ? options.max_message : framed_stream::default_max_message;
  // The frame header holds a 32-bit length.
  if (max > UINT32_MAX)
    return std::unexpected(
        error(std::make_error_code(std::errc::invalid_argument), "fifo", object,
              "max_message " + std::to_string(max) + " exceeds the 32-bit frame length"));
  return max;
}

class fifo_transport final : public transport {
 public:
  fifo_transport(address where, std::size_t max_message, bool remove_on_close)
      : where_(std::move(where)),
        object_(where_.to_string()),
        frames_(max_message, object_),
        remove_on_close_(remove_on_close) {}

  ~fifo_transport() override {
    if (!remove_on_close_) return;
    // Only what is still a FIFO: someone may have replaced it since.
    struct stat st {};
    const char* path = where_.path.c_str();
    if (sys([&] { return ::lstat(path, &st); }) == 0 && S_ISFIFO(st.st_mode))
      (void)sys([&] { return ::unlink(path); });
  }

  result<void> send(std::span<const std::byte> message, deadline until) override {
    if (!write_) [[unlikely]] {
      // Refused before waiting for a reader; framed_stream checks it again on every send.
      if (message.size() > frames_.max_message())
        return fail(errc::message_too_large, "send", object_,
                    std::to_string(message.size()) + " bytes, the channel's maximum is " +
                        std::to_string(frames_.max_message()));
      auto opened = open_write_end(until);
      if (!opened) return opened;
    }
    if (!until.is_never() && !write_nonblocking_) {
      auto twin = write_twin();
      if (!twin) return twin;
    }
    return frames_.send(
        {.blocking = write_.get(),
         .nonblocking = write_nonblocking_ ? write_nonblocking_.get() : write_.get(),
         .socket = false,
         .packets = true},
        message, until);
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    if (!read_) [[unlikely]] {
      auto opened = open_read_end();
      if (!opened) return std::unexpected(opened.error());
    }
    if (!data_seen_) [[unlikely]] {
      // Polls the blocking descriptor: it was opened first, so it reports POLLHUP for any writer
      // that came after this read end (see the Design note).
      auto ready =
          until.expired() ? poll_now(read_.get()) : wait_for(read_.get(), POLLIN, until, object_);
      if (!ready) return std::unexpected(ready.error());
      if (!*ready) return fail(errc::timed_out, "recv", object_);
      data_seen_ = true;
    }
    return frames_.recv(
        {.blocking = read_.get(),
         .nonblocking = read_nonblocking_.get(),
         .socket = false,
         .packets = true},
        buffer, until);
  }

  int wait_fd() const noexcept override {
    if (!read_ && !open_read_end()) return -1;
    return read_.get();
  }

  channel_info info() const noexcept override {
    return {.kind = mechanism::fifo,
            .max_message = frames_.max_message(),
            .ordered = true,
            .persistent = false,
            .cross_host = false,
            .stream = true};
  }

  const address& where() const noexcept override { return where_; }

  // const because wait_fd() opens the read end too: polling is what makes a channel a receiver.
  result<void> open_read_end() const {
    // O_NONBLOCK: a blocking open for reading waits for a writer.
    auto fd = open_fifo_path(where_.path, O_RDONLY | O_NONBLOCK);
    if (!fd) return std::unexpected(fd.error());
    auto cleared = set_nonblocking(fd->get(), false, where_.path);
    if (!cleared) return cleared;
    auto twin = reopen(fd->get(), O_RDONLY | O_NONBLOCK, where_.path);
    if (!twin) return std::unexpected(twin.error());
    read_ = std::move(*fd);
    read_nonblocking_ = std::move(*twin);
    return {};
  }

 private:
  // An expired deadline's one attempt: a zero-timeout poll.
  result<bool> poll_now(int fd) const {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    int rc = sys([&] { return ::poll(&p, 1, 0); });
    if (rc < 0) return fail_errno(errno, "poll", object_);
    return rc > 0;
  }

  result<void> open_write_end(deadline until) {
    if (until.is_never()) {
      // Blocks in the kernel until a reader opens the FIFO.
      auto fd = open_fifo_path(where_.path, O_WRONLY);
      if (!fd) return std::unexpected(fd.error());
      return adopt_write_end(std::move(*fd));
    }
    for (;;) {
      auto fd = open_fifo_path(where_.path, O_WRONLY | O_NONBLOCK);
      if (fd) {
        auto cleared = set_nonblocking(fd->get(), false, where_.path);
        if (!cleared) return cleared;
        return adopt_write_end(std::move(*fd));
      }
      // ENXIO: nobody has the FIFO open for reading yet.
      if (fd.error() != std::errc::no_such_device_or_address) return std::unexpected(fd.error());
      if (until.expired())
        return fail(errc::timed_out, "send", object_, "no reader has the FIFO open");
      auto pause =
          std::min<deadline::clock::duration>(std::chrono::milliseconds(2), until.remaining());
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(pause).count();
      timespec ts{.tv_sec = 0, .tv_nsec = static_cast<long>(ns)};
      (void)sys([&] { return ::nanosleep(&ts, nullptr); });
    }
  }

  // FIFO channels speak packet mode (framing.cpp): the writer's O_DIRECT makes each write a packet.
  // open() refuses O_DIRECT on a FIFO, fcntl accepts it.
  result<void> adopt_write_end(unique_fd fd) {
    auto packets = set_flag(fd.get(), O_DIRECT, where_.path);
    if (!packets) return packets;
    write_ = std::move(fd);
    return {};
  }

  result<void> write_twin() {
    auto twin = reopen(write_.get(), O_WRONLY | O_NONBLOCK, where_.path);
    if (!twin) {
      // A non-blocking open for writing fails with ENXIO when no reader is left; a write would
      // fail with EPIPE, which is what the caller should see.
      if (twin.error() == std::errc::no_such_device_or_address)
        return std::unexpected(error(std::make_error_code(std::errc::broken_pipe), "send", object_,
                                     "no reader has the FIFO open"));
      return std::unexpected(twin.error());
    }
    write_nonblocking_ = std::move(*twin);
    return {};
  }

  address where_;
  std::string object_;
  framed_stream frames_;
  bool remove_on_close_;
  mutable unique_fd read_;              // blocking; also wait_fd()
  mutable unique_fd read_nonblocking_;  // for recv with a deadline
  unique_fd write_;                     // blocking
  unique_fd write_nonblocking_;         // for send with a deadline, opened on first need
  bool data_seen_ = false;              // poll before the first read (see the Design note)
};

// Fails with EACCES unless this process may read or write the FIFO. Which direction it will use
// is unknown until the first send or recv, whose open reports a missing permission precisely.
result<void> check_access(const std::string& path) {
  for (int mode : {R_OK, W_OK}) {
    if (sys([&] { return ::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS); }) == 0) return {};
    if (errno != EACCES) return fail_errno(errno, "faccessat", path);
  }
  return std::unexpected(
      error(std::make_error_code(std::errc::permission_denied), "faccessat", path,
            "the FIFO is neither readable nor writable by uid " + std::to_string(::geteuid())));
}

}  // namespace

result<transport_ptr> open_fifo(const address& where, open_mode mode,
                                const channel_options& options) {
  auto max = frame_limit(options, where.to_string());
  if (!max) return std::unexpected(max.error());
  ignore_sigpipe_once();
  const std::string& path = where.path;

  // open: create, or join what exists. The loop covers a FIFO removed between the two.
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (mode != open_mode::join) {
      if (sys([&] { return ::mkfifo(path.c_str(), options.permissions); }) == 0) {
        auto made = std::make_unique<fifo_transport>(where, *max, options.remove_on_close);
        auto reading = made->open_read_end();
        if (!reading) {
          // A failed create leaves nothing behind.
          (void)sys([&] { return ::unlink(path.c_str()); });
          return std::unexpected(reading.error());
        }
        return made;
      }
      if (errno != EEXIST || mode == open_mode::create) return fail_errno(errno, "mkfifo", path);
    }
    auto checked = expect_fifo(path, "join");
    if (!checked) {
      if (mode == open_mode::open && checked.error() == std::errc::no_such_file_or_directory)
        continue;
      return std::unexpected(checked.error());
    }
    auto allowed = check_access(path);
    if (!allowed) return std::unexpected(allowed.error());
    // Only the creator removes the FIFO on close.
    return std::make_unique<fifo_transport>(where, *max, false);
  }
  return fail_errno(ENOENT, "open", path);
}

result<void> remove_fifo(const address& where) {
  const std::string& path = where.path;
  auto checked = expect_fifo(path, "remove");
  if (!checked) return checked;
  if (sys([&] { return ::unlink(path.c_str()); }) != 0) return fail_errno(errno, "unlink", path);
  return {};
}

}  // namespace ipcx::detail
