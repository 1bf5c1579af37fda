// file:/path: an append-only, persistent log of records that readers follow.
//
// Every message is one record: a 4-byte little-endian payload length, the 4-byte little-endian
// CRC32C of the payload, then the payload. The log outlives every process that wrote or read it;
// a new channel reads it from the first record, so it sees everything ever written.
//
// create() makes the file (O_CREAT|O_EXCL|O_NOFOLLOW, options.permissions, EEXIST if it exists);
// join() opens an existing regular file (ENOENT if missing, ELOOP for a symbolic link, ENOTSUP
// for anything but a regular file); open() does either. A process that may read the log but not
// write it joins read-only: it follows the log, and its send fails with EACCES.
//
// Design:
// - Writers. send() takes an exclusive OFD lock over the whole file (F_OFD_SETLKW, l_start 0,
//   l_len 0), appends header and payload in ONE writev on an O_APPEND descriptor, and unlocks.
//   The lock is what lets a reader tell a record still being written from one whose writer died
//   (below); O_APPEND alone would already keep writers from interleaving. With a deadline the
//   lock is tried with F_OFD_SETLK and retried after short sleeps (100 us doubling to 5 ms) until
//   the deadline: there is no timed wait for a file lock. A short write (disk full, file size
//   limit) is continued under the lock and, if it cannot be completed, the partial record is cut
//   off again with ftruncate, so a failed send leaves no torn record behind.
// - Readers. Each channel keeps its own read offset, starting at 0. It preads as much of the file
//   as its buffer holds (64 KiB, grown to the largest record), so a burst of records costs one
//   system call, and returns records from the buffer. A header whose length is above max_message
//   or whose checksum does not match its payload is errc::corrupt_record with the offset in the
//   detail; it is never returned and the offset stays on it (every later recv reports it again).
// - Waiting for more. The inotify descriptor is made with the channel; its watch (IN_MODIFY) is
//   armed at the channel's first recv or wait_fd(), before its first read, so a write that lands
//   after a read saw the end of the file always leaves an event behind: no wake-up is lost and
//   nothing sleeps on a timer. (Armed late because a watch costs every write to the file an
//   event for it: a channel that only sends should not watch its own writes.) Once a read since the
//   last drain of the event queue has reached the end of the file, recv waits for an event before
//   reading again, so a follower costs one inotify read and one pread per record, as the plain
//   code. The never-deadline path is a plain blocking read() of the inotify descriptor; with a
//   deadline, poll() and then read(). One read drains every queued event; a stale event only costs
//   one extra pread that finds nothing. One blocking inotify descriptor serves both paths (no
//   IN_NONBLOCK twin): the read after poll() cannot block, since a channel is used by one thread
//   at a time and only the channel reads its descriptor.
// - A torn tail (the file ends inside a record) is a writer in the middle of its write, or a
//   writer that died. The reader takes a shared OFD lock (F_RDLCK) and releases it at once: once
//   it gets it, no writer is in the middle of a write, so it re-reads the record from its start;
//   still incomplete means torn: errc::corrupt_record "torn record at offset N". Never-deadline
//   calls wait for the lock in F_OFD_SETLKW, which also wakes when a writer dies holding it (its
//   descriptors close); deadline calls try F_OFD_SETLK and wait between tries on inotify (a
//   normal write finishing wakes them at once) for at most 1 ms doubling to 50 ms, which catches
//   a writer that died. Bytes of an incomplete record are never kept across a wait, because a
//   failed writer truncates them away and the next record takes their place.
//
// Cost against plain code that locks, pwrites the bare payload, unlocks, and follows with inotify
// and pread (bench/endpoints.hpp): the same system calls, less the pread that finds the end of the
// file before each wait; plus a CRC32C on each side and a copy out of the read buffer; plus the
// 8 header bytes, which page-sized messages feel: a 4 KiB payload makes a 4104-byte record, so
// every write spans two pages and the kernel zeroes the unwritten rest of each page a write starts
// (block_write_begin), and every read copies from two pages. Records are not padded to keep
// payloads page-aligned: a payload filling its page leaves no room for the next header, so every
// record would take two pages, which measured slower than the zeroing. Reading header and payload
// with preadv straight into the caller's buffer measured slower than pread and a copy. Same-core
// 4 KiB round trips here: the 8 bytes alone cost the plain code ~10%, padding to whole pages ~25%;
// CRC32C takes ~0.2 us a side with the SSE4.2 code.
//
// info(): persistent and ordered, not a stream. wait_fd(): the inotify descriptor (calling it arms
// the watch); it polls readable after the file changed (spuriously at times: try_recv then finds
// nothing).
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/crc32c.hpp"
#include "core/io.hpp"
#include "core/syscall.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t header_size = 8;
constexpr std::size_t default_max_message = std::size_t{1} << 20;
// The read buffer's first size; it grows only when one record does not fit.
constexpr std::size_t initial_buffer = 64 * 1024;

std::uint32_t load_le32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint32_t>(p[i]);
  return v;
}

void store_le32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xffu);
}

std::unexpected<error> fail_code(std::errc code, std::string operation, std::string object,
                                 std::string detail) {
  return std::unexpected(error(std::make_error_code(code), std::move(operation), std::move(object),
                               std::move(detail)));
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// One whole-file OFD lock operation: `cmd` F_OFD_SETLK/F_OFD_SETLKW, `type` F_WRLCK, F_RDLCK or
// F_UNLCK. OFD locks belong to the open file description, so two channels in one process exclude
// each other as two processes do, and a lock goes away when its holder's descriptor closes.
int lock_file(int fd, int cmd, short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // to the end of the file, however far it grows
  return sys([&] { return ::fcntl(fd, cmd, &lock); });
}

// The sleep between tries of a lock another process holds, bounded by the deadline.
void back_off(std::chrono::microseconds& pause, std::chrono::microseconds limit, deadline until) {
  auto wait = std::min<deadline::clock::duration>(pause, until.remaining());
  std::this_thread::sleep_for(wait);
  pause = std::min(pause * 2, limit);
}

class file_log final : public transport {
 public:
  file_log(address where, std::size_t max_message, unique_fd fd, bool writable, unique_fd inotify,
           bool remove_on_close, dev_t dev, ino_t ino)
      : where_(std::move(where)),
        max_message_(max_message),
        fd_(std::move(fd)),
        writable_(writable),
        inotify_(std::move(inotify)),
        remove_on_close_(remove_on_close),
        dev_(dev),
        ino_(ino) {}

  ~file_log() override {
    if (!remove_on_close_) return;
    // Unlink only the file this channel created: if the path now names another file (removed and
    // made again by someone else), that one is not ours to delete.
    struct stat st {};
    if (sys([&] { return ::lstat(where_.path.c_str(), &st); }) == 0 && st.st_dev == dev_ &&
        st.st_ino == ino_)
      (void)sys([&] { return ::unlink(where_.path.c_str()); });
  }

  result<void> send(std::span<const std::byte> message, deadline until) override;
  result<std::size_t> recv(std::span<std::byte> out, deadline until) override;
  // Arms the watch, which makes the descriptor meaningful; -1 if that fails (no watches left).
  int wait_fd() const noexcept override { return arm() ? inotify_.get() : -1; }
  channel_info info() const noexcept override {
    return {.kind = mechanism::file,
            .max_message = max_message_,
            .ordered = true,
            .persistent = true,
            .cross_host = false,
            .stream = false};
  }
  const address& where() const noexcept override { return where_; }

 private:
  const std::string& object() const noexcept { return where_.path; }

  result<void> lock_for_writing(deadline until);
  result<void> append(std::span<const iovec> record, std::size_t total);
  // Parses the record at the read offset. A value: the record's size, copied into `out`. No
  // value: `need` bytes (from the record's start) must be buffered first.
  result<std::optional<std::size_t>> take_record(std::span<std::byte> out, std::size_t& need);
  // Reads more of the file after what is buffered; 0 at the end of the file.
  result<std::size_t> fill(std::size_t need);
  // Waits until no writer holds the lock. False when the deadline passed first.
  result<bool> wait_for_writers(deadline until);
  // Adds the inotify watch, once (wait_fd() is const: the watch is not part of the value).
  result<void> arm() const;
  // Waits for an inotify event and drains the queue. False when the deadline passed first.
  result<bool> wait_for_change(deadline until);
  result<void> drain_events();

  address where_;
  std::size_t max_message_;
  unique_fd fd_;       // O_RDWR | O_APPEND: writes append, preads read anywhere
  bool writable_;      // false: opened O_RDONLY, as a follower without write permission
  unique_fd inotify_;  // IN_MODIFY on this very file (watched through /proc/self/fd)
  mutable bool armed_ = false;
  bool remove_on_close_;
  dev_t dev_;
  ino_t ino_;

  // Reader state: buffer_[begin_, end_) holds the file's bytes from offset_ on.
  std::vector<std::byte> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t offset_ = 0;  // file offset of the next record, the one at buffer_[begin_]
  bool seen_end_ = false;     // a pread since the last inotify drain reached the end of the file
};

result<void> file_log::lock_for_writing(deadline until) {
  if (until.is_never()) {
    if (lock_file(fd_.get(), F_OFD_SETLKW, F_WRLCK) != 0)
      return fail_errno(errno, "fcntl(F_OFD_SETLKW)", object());
    return {};
  }
  auto pause = std::chrono::microseconds(100);
  for (;;) {
    if (lock_file(fd_.get(), F_OFD_SETLK, F_WRLCK) == 0) return {};
    // EAGAIN or EACCES: another channel holds a lock (POSIX allows either errno).
    if (errno != EAGAIN && errno != EACCES)
      return fail_errno(errno, "fcntl(F_OFD_SETLK)", object());
    if (until.expired())
      return fail(errc::timed_out, "send", object(), "another writer holds the log's lock");
    back_off(pause, 5ms, until);
  }
}

result<void> file_log::append(std::span<const iovec> record, std::size_t total) {
  iovec iov[2];
  std::copy(record.begin(), record.end(), iov);
  iovec* next = iov;
  int count = static_cast<int>(record.size());
  std::size_t written = 0;
  for (;;) {
    ssize_t n = sys([&] { return ::writev(fd_.get(), next, count); });
    if (n < 0 || (n == 0 && written < total)) {
      int saved = n < 0 ? errno : EIO;
      if (written > 0) {
        // Cut the partial record off (the lock is still held, so nobody appended after it);
        // readers never keep an incomplete record's bytes, so none has taken it as data.
        struct stat st {};
        if (sys([&] { return ::fstat(fd_.get(), &st); }) == 0 &&
            st.st_size >= static_cast<off_t>(written))
          (void)sys(
              [&] { return ::ftruncate(fd_.get(), st.st_size - static_cast<off_t>(written)); });
      }
      return fail_errno(saved, "writev", object());
    }
    written += static_cast<std::size_t>(n);
    if (written == total) return {};
    // A short write to a regular file (disk nearly full, RLIMIT_FSIZE): append the rest.
    auto left = static_cast<std::size_t>(n);
    while (count > 0 && left >= next->iov_len) {
      left -= next->iov_len;
      ++next;
      --count;
    }
    next->iov_base = static_cast<std::byte*>(next->iov_base) + left;
    next->iov_len -= left;
  }
}

result<void> file_log::send(std::span<const std::byte> message, deadline until) {
  if (!writable_)
    return fail_code(std::errc::permission_denied, "send", object(),
                     "the log was joined read-only: this process may not write it");
  if (message.size() > max_message_)
    return fail(errc::message_too_large, "send", object(),
                std::to_string(message.size()) + " bytes, the log's maximum is " +
                    std::to_string(max_message_));
  std::byte header[header_size];
  store_le32(header, static_cast<std::uint32_t>(message.size()));
  store_le32(header + 4, crc32c(message));
  iovec record[2] = {{header, header_size},
                     {const_cast<std::byte*>(message.data()), message.size()}};
  auto locked = lock_for_writing(until);
  if (!locked) return locked;
  auto appended = append(std::span(record, message.empty() ? 1 : 2), header_size + message.size());
  // Unlocking a lock this descriptor holds cannot fail for any reason but a bad descriptor.
  if (lock_file(fd_.get(), F_OFD_SETLK, F_UNLCK) != 0 && appended)
    return fail_errno(errno, "fcntl(F_OFD_SETLK, F_UNLCK)", object());
  return appended;
}

result<std::optional<std::size_t>> file_log::take_record(std::span<std::byte> out,
                                                         std::size_t& need) {
  std::size_t available = end_ - begin_;
  if (available < header_size) {
    need = header_size;
    return std::nullopt;
  }
  const std::byte* record = buffer_.data() + begin_;
  std::size_t length = load_le32(record);
  if (length > max_message_)
    return fail(errc::corrupt_record, "recv", object(),
                "the record at offset " + std::to_string(offset_) + " claims " +
                    std::to_string(length) + " bytes, more than the maximum " +
                    std::to_string(max_message_));
  if (available < header_size + length) {
    need = header_size + length;
    return std::nullopt;
  }
  auto payload = std::span(record + header_size, length);
  if (crc32c(payload) != load_le32(record + 4))
    return fail(errc::corrupt_record, "recv", object(),
                "checksum mismatch in the record at offset " + std::to_string(offset_));
  if (length > out.size())
    return fail(errc::message_too_large, "recv", object(),
                "the record at offset " + std::to_string(offset_) + " has " +
                    std::to_string(length) + " bytes, the buffer " + std::to_string(out.size()));
  if (length > 0) std::memcpy(out.data(), payload.data(), length);
  begin_ += header_size + length;
  offset_ += header_size + length;
  return std::optional<std::size_t>(length);
}

result<std::size_t> file_log::fill(std::size_t need) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (buffer_.size() - begin_ < need || end_ == buffer_.size()) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // Allocated at the first recv (a channel that only writes never needs it), and grown only for a
  // record larger than any before.
  if (buffer_.size() < std::max(need, initial_buffer))
    buffer_.resize(std::max(need, initial_buffer));
  auto at = static_cast<off_t>(offset_ + (end_ - begin_));
  std::size_t room = buffer_.size() - end_;
  ssize_t n = sys([&] { return ::pread(fd_.get(), buffer_.data() + end_, room, at); });
  if (n < 0) return fail_errno(errno, "pread", object());
  end_ += static_cast<std::size_t>(n);
  // A regular file reads short only at its end (as it was at the moment of the read).
  seen_end_ = static_cast<std::size_t>(n) < room;
  return static_cast<std::size_t>(n);
}

result<void> file_log::arm() const {
  if (armed_) return {};
  // Watched through the descriptor, not the path: the watch is on the file this channel opened
  // even if the path has been renamed or replaced meanwhile.
  std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
  if (sys([&] { return ::inotify_add_watch(inotify_.get(), self.c_str(), IN_MODIFY); }) < 0)
    return fail_errno(errno, "inotify_add_watch", object());
  armed_ = true;
  return {};
}

result<void> file_log::drain_events() {
  // Events on one watched file carry no name, but room for one keeps the read valid either way.
  alignas(inotify_event) std::byte events[64 * (sizeof(inotify_event) + 16)];
  if (sys([&] { return ::read(inotify_.get(), events, sizeof events); }) < 0)
    return fail_errno(errno, "read(inotify)", object());
  seen_end_ = false;  // a write may have come before this drain: the file must be read again
  return {};
}

result<bool> file_log::wait_for_change(deadline until) {
  if (!until.is_never()) {
    auto ready = wait_for(inotify_.get(), POLLIN, until, object());
    if (!ready) return std::unexpected(ready.error());
    if (!*ready) return false;
  }
  auto drained = drain_events();  // blocks here, on the never-deadline path
  if (!drained) return std::unexpected(drained.error());
  return true;
}

result<bool> file_log::wait_for_writers(deadline until) {
  if (until.is_never()) {
    if (lock_file(fd_.get(), F_OFD_SETLKW, F_RDLCK) != 0)
      return fail_errno(errno, "fcntl(F_OFD_SETLKW, F_RDLCK)", object());
  } else {
    auto pause = std::chrono::microseconds(1000);
    for (;;) {
      if (lock_file(fd_.get(), F_OFD_SETLK, F_RDLCK) == 0) break;
      if (errno != EAGAIN && errno != EACCES)
        return fail_errno(errno, "fcntl(F_OFD_SETLK, F_RDLCK)", object());
      if (until.expired()) return false;
      // A writer finishing its record wakes this at once; one that died is noticed at the next
      // try, since a lock release makes no inotify event.
      auto step = deadline::at(std::min(until.when(), deadline::clock::now() + pause));
      auto changed = wait_for_change(step);
      if (!changed) return std::unexpected(changed.error());
      pause = std::min(pause * 2, std::chrono::microseconds(50'000));
    }
  }
  if (lock_file(fd_.get(), F_OFD_SETLK, F_UNLCK) != 0)
    return fail_errno(errno, "fcntl(F_OFD_SETLK, F_UNLCK)", object());
  return true;
}

result<std::size_t> file_log::recv(std::span<std::byte> out, deadline until) {
  if (!armed_) {
    auto armed = arm();  // before the first read: see "Waiting for more"
    if (!armed) return std::unexpected(armed.error());
  }
  // Set once no writer was seen holding the lock after the incomplete tail was read.
  bool writers_idle = false;
  for (;;) {
    std::size_t need = 0;
    auto taken = take_record(out, need);
    if (!taken) return std::unexpected(taken.error());
    if (*taken) return **taken;
    if (begin_ == end_ && seen_end_) {
      // Nothing buffered, and a read since the last drain of the inotify queue found the end of
      // the file. The watch was armed before any read, so whatever was appended since that read
      // has left an event: wait for it first, then read (one inotify read and one pread per
      // record, as plain code does), and never sleep past a record.
      writers_idle = false;
      auto changed = wait_for_change(until);
      if (!changed) return std::unexpected(changed.error());
      if (!*changed) return fail(errc::timed_out, "recv", object());
      continue;
    }
    auto got = fill(need);
    if (!got) return std::unexpected(got.error());
    if (*got > 0 || end_ == begin_) continue;  // parse what came, or wait at the end of the file
    // The file ends inside the record at offset_.
    if (writers_idle)
      return fail(errc::corrupt_record, "recv", object(),
                  "torn record at offset " + std::to_string(offset_));
    auto idle = wait_for_writers(until);
    if (!idle) return std::unexpected(idle.error());
    if (!*idle)
      return fail(errc::timed_out, "recv", object(),
                  "a writer is still writing the record at offset " + std::to_string(offset_));
    writers_idle = true;
    // Re-read the record from its start, as it is now that no write is running (the pread must
    // happen even though no inotify event may be queued).
    end_ = begin_;
    seen_end_ = false;
  }
}

// Opens the log at `path`: `flags` O_CREAT|O_EXCL to create it, 0 to join it.
result<transport_ptr> open_log(const address& where, int flags, const channel_options& options,
                               std::size_t max_message) {
  const std::string& path = where.path;
  bool creating = (flags & O_CREAT) != 0;
  // O_NONBLOCK only for the open itself: should the path name a device, opening it must not
  // wait (for a modem's carrier, say). It is cleared once the file is known to be regular.
  constexpr int common = O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  unique_fd fd(sys([&] {
    return ::open(path.c_str(), flags | O_RDWR | O_APPEND | common, options.permissions);
  }));
  bool writable = true;
  if (!fd && errno == EACCES && !creating) {
    // A log others may read but not write (0640, say) is still followed, read-only.
    fd.reset(sys([&] { return ::open(path.c_str(), O_RDONLY | common); }));
    writable = false;
  }
  if (!fd) {
    if (errno == ELOOP)
      return fail_code(std::errc::too_many_symbolic_link_levels, "open", path,
                       "the path is a symbolic link; logs are not reached through links");
    return fail_errno(errno, "open", path);
  }
  // Whatever fails from here on, a file this call created is removed again.
  auto undo = [&](std::unexpected<error> failure) -> result<transport_ptr> {
    if (creating) (void)sys([&] { return ::unlink(path.c_str()); });
    return failure;
  };
  struct stat st {};
  if (sys([&] { return ::fstat(fd.get(), &st); }) != 0)
    return undo(fail_errno(errno, "fstat", path));
  if (!S_ISREG(st.st_mode))
    return fail_code(std::errc::not_supported, "open", path,
                     std::string("the path is ") + file_kind(st.st_mode) + ", not a log file");
  auto blocking = set_nonblocking(fd.get(), false, path);
  if (!blocking) return undo(std::unexpected(blocking.error()));

  unique_fd inotify(sys([] { return ::inotify_init1(IN_CLOEXEC); }));
  if (!inotify) return undo(fail_errno(errno, "inotify_init1", path));

  return transport_ptr(new file_log(where, max_message, std::move(fd), writable, std::move(inotify),
                                    creating && options.remove_on_close, st.st_dev, st.st_ino));
}

}  // namespace

result<transport_ptr> open_file_log(const address& where, open_mode mode,
                                    const channel_options& options) {
  std::size_t max_message = options.max_message != 0 ? options.max_message : default_max_message;
  // The length field is 32 bits, and a record must fit in one pread buffer.
  if (max_message > std::numeric_limits<std::uint32_t>::max() - header_size)
    return fail_code(std::errc::invalid_argument, "open", where.path,
                     "max_message " + std::to_string(max_message) +
                         " does not fit the record header's 32-bit length");
  switch (mode) {
    case open_mode::create:
      return open_log(where, O_CREAT | O_EXCL, options, max_message);
    case open_mode::join:
      return open_log(where, 0, options, max_message);
    case open_mode::open:
      break;
  }
  // Join, else create; the loop covers another process creating or removing it in between.
  for (int attempt = 0;; ++attempt) {
    auto joined = open_log(where, 0, options, max_message);
    if (joined || joined.error() != std::errc::no_such_file_or_directory || attempt == 8)
      return joined;
    auto created = open_log(where, O_CREAT | O_EXCL, options, max_message);
    if (created || created.error() != std::errc::file_exists) return created;
  }
}

result<void> remove_file_log(const address& where) {
  const std::string& path = where.path;
  struct stat st {};
  if (sys([&] { return ::lstat(path.c_str(), &st); }) != 0) return fail_errno(errno, "lstat", path);
  // Only a regular file can be a log: remove must not delete a FIFO or socket by mistake.
  if (!S_ISREG(st.st_mode))
    return fail_code(std::errc::not_supported, "unlink", path,
                     std::string("the path is ") + file_kind(st.st_mode) + ", not a log file");
  if (sys([&] { return ::unlink(path.c_str()); }) != 0) return fail_errno(errno, "unlink", path);
  return {};
}

}  // namespace ipcx::detail
