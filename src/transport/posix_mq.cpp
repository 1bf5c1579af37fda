// mq:/name — a POSIX message queue.
//
// Design: the queue is opened twice. The blocking descriptor serves never-deadline calls (one plain
// mq_send / mq_receive, as raw code would make) and finite deadlines (mq_timedsend /
// mq_timedreceive); the O_NONBLOCK descriptor serves expired deadlines (one attempt). Opening twice
// costs one open at setup and saves an mq_setattr per call. Every message has priority 0, so
// the queue is FIFO.
//
// mq_receive refuses a buffer smaller than the queue's mq_msgsize (EMSGSIZE) and the kernel cannot
// peek, so a caller's buffer smaller than mq_msgsize is served from the channel's own buffer. A
// message that does not fit the caller's buffer then stays pending *in this channel* (not in the
// queue): the next recv on this channel returns it first. Other processes reading the queue do not
// see it.
#include <fcntl.h>
#include <mqueue.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "core/io.hpp"
#include "core/syscall.hpp"
#include "ipcx/unique_fd.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

constexpr std::size_t default_msgsize = 8192;
constexpr long default_maxmsg = 10;
// The kernel's limits for a process with CAP_SYS_RESOURCE (HARD_MSGMAX, HARD_MSGSIZEMAX).
constexpr long hard_maxmsg = 65536;
constexpr long hard_msgsize = 16L * 1024 * 1024;

constexpr const char* msg_max_path = "/proc/sys/fs/mqueue/msg_max";
constexpr const char* msgsize_max_path = "/proc/sys/fs/mqueue/msgsize_max";
constexpr const char* msg_default_path = "/proc/sys/fs/mqueue/msg_default";
constexpr const char* queues_max_path = "/proc/sys/fs/mqueue/queues_max";

std::string limit_text(const std::optional<long>& value) {
  return value ? std::to_string(*value) : std::string("unknown");
}

// Says which host limit refused the queue's attributes, and the value asked.
std::unexpected<error> attr_error(int errno_value, const std::string& name, const mq_attr& attr) {
  std::string detail;
  if (errno_value == EINVAL) {
    auto msg_max = read_proc_number(msg_max_path);
    auto msgsize_max = read_proc_number(msgsize_max_path);
    if (!msgsize_max || attr.mq_msgsize > *msgsize_max)
      detail = "max_message " + std::to_string(attr.mq_msgsize) +
               " is above the host's msgsize_max " + limit_text(msgsize_max) + " (" +
               msgsize_max_path + ")";
    if (!msg_max || attr.mq_maxmsg > *msg_max) {
      if (!detail.empty()) detail += "; ";
      detail += "capacity " + std::to_string(attr.mq_maxmsg) + " is above the host's msg_max " +
                limit_text(msg_max) + " (" + msg_max_path + ")";
    }
    if (detail.empty())
      detail = "max_message " + std::to_string(attr.mq_msgsize) + ", capacity " +
               std::to_string(attr.mq_maxmsg) + " refused";
    detail += "; with CAP_SYS_RESOURCE the kernel allows up to " + std::to_string(hard_msgsize) +
              " bytes and " + std::to_string(hard_maxmsg) + " messages";
  } else if (errno_value == EMFILE) {
    // The kernel reports RLIMIT_MSGQUEUE as EMFILE, which reads like a descriptor shortage.
    detail = "too many descriptors, or " + std::to_string(attr.mq_maxmsg) + " messages of " +
             std::to_string(attr.mq_msgsize) +
             " bytes pass this user's RLIMIT_MSGQUEUE (ulimit -q)";
  } else if (errno_value == ENOSPC) {
    detail = "the host's queues_max " + limit_text(read_proc_number(queues_max_path)) + " (" +
             queues_max_path + ") is reached";
  } else {
    return fail_errno(errno_value, "mq_open", name);
  }
  return fail_errno(errno_value, "mq_open", name, std::move(detail));
}

// mqd_t is a descriptor on Linux and mq_close is close(2), so unique_fd owns it.
result<unique_fd> mq_open_fd(const std::string& name, int flags, mode_t mode = 0,
                             mq_attr* attr = nullptr) {
  // Queue descriptors are always close-on-exec on Linux; O_CLOEXEC says so at the call site.
  int fd = (flags & O_CREAT) != 0
               ? sys([&] { return ::mq_open(name.c_str(), flags | O_CLOEXEC, mode, attr); })
               : sys([&] { return ::mq_open(name.c_str(), flags | O_CLOEXEC); });
  if (fd < 0) {
    if (attr != nullptr) return attr_error(errno, name, *attr);
    return fail_errno(errno, "mq_open", name);
  }
  return unique_fd(fd);
}

class posix_mq final : public transport {
 public:
  posix_mq(address where, unique_fd blocking, unique_fd nonblocking, std::size_t max_message,
           bool remove_on_close)
      : where_(std::move(where)),
        text_(where_.to_string()),
        blocking_(std::move(blocking)),
        nonblocking_(std::move(nonblocking)),
        max_message_(max_message),
        remove_on_close_(remove_on_close) {}

  ~posix_mq() override {
    // A queue already removed by someone else is fine: it is gone either way.
    if (remove_on_close_) (void)sys([&] { return ::mq_unlink(where_.path.c_str()); });
  }

  result<void> send(std::span<const std::byte> message, deadline until) override {
    if (message.size() > max_message_)
      return fail(errc::message_too_large, "send", text_,
                  std::to_string(message.size()) + " bytes, the queue's mq_msgsize is " +
                      std::to_string(max_message_));
    // An empty message may come with a null data pointer, which glibc declares nonnull.
    static constexpr char empty = 0;
    const char* data = message.empty() ? &empty : reinterpret_cast<const char*>(message.data());
    if (until.is_never()) {
      if (sys([&] { return ::mq_send(blocking_.get(), data, message.size(), 0); }) == 0) return {};
      return fail_errno(errno, "mq_send", where_.path);
    }
    if (until.expired()) {
      if (sys([&] { return ::mq_send(nonblocking_.get(), data, message.size(), 0); }) == 0)
        return {};
      if (errno == EAGAIN) return fail(errc::timed_out, "send", text_);
      return fail_errno(errno, "mq_send", where_.path);
    }
    for (;;) {
      timespec at = until.realtime();
      if (sys([&] { return ::mq_timedsend(blocking_.get(), data, message.size(), 0, &at); }) == 0)
        return {};
      if (errno != ETIMEDOUT) return fail_errno(errno, "mq_timedsend", where_.path);
      // The kernel waits on CLOCK_REALTIME, the deadline is steady: a clock step can end the wait
      // early, so only the steady clock decides that the deadline has passed.
      if (until.expired()) return fail(errc::timed_out, "send", text_);
    }
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    if (pending_) return take_pending(buffer);
    // The benchmarked path: the caller's buffer can hold any message of this queue, so exactly one
    // mq_receive lands the message in place.
    if (buffer.size() >= max_message_) return receive(buffer.data(), buffer.size(), until);

    if (!own_) own_ = std::make_unique_for_overwrite<std::byte[]>(max_message_);
    auto got = receive(own_.get(), max_message_, until);
    if (!got) return got;
    pending_ = *got;
    return take_pending(buffer);
  }

  // Polls readable when the queue holds a message. A message pending in this channel (after
  // errc::message_too_large) is not signalled: the caller already knows it is there.
  int wait_fd() const noexcept override { return blocking_.get(); }

  channel_info info() const noexcept override {
    return {.kind = mechanism::mq,
            .max_message = max_message_,
            .ordered = true,
            .persistent = true,
            .cross_host = false,
            .stream = false};
  }

  const address& where() const noexcept override { return where_; }

 private:
  result<std::size_t> receive(std::byte* data, std::size_t size, deadline until) {
    char* out = reinterpret_cast<char*>(data);
    if (until.is_never()) {
      ssize_t n = sys([&] { return ::mq_receive(blocking_.get(), out, size, nullptr); });
      if (n >= 0) return static_cast<std::size_t>(n);
      return fail_errno(errno, "mq_receive", where_.path);
    }
    if (until.expired()) {
      ssize_t n = sys([&] { return ::mq_receive(nonblocking_.get(), out, size, nullptr); });
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EAGAIN) return fail(errc::timed_out, "recv", text_);
      return fail_errno(errno, "mq_receive", where_.path);
    }
    for (;;) {
      timespec at = until.realtime();
      ssize_t n = sys([&] { return ::mq_timedreceive(blocking_.get(), out, size, nullptr, &at); });
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != ETIMEDOUT) return fail_errno(errno, "mq_timedreceive", where_.path);
      // As in send: the steady clock, not the kernel's realtime wait, decides expiry.
      if (until.expired()) return fail(errc::timed_out, "recv", text_);
    }
  }

  // Hands out the message held in own_ if it fits; otherwise it stays pending in this channel.
  result<std::size_t> take_pending(std::span<std::byte> buffer) {
    std::size_t size = *pending_;
    if (size > buffer.size())
      return fail(errc::message_too_large, "recv", text_,
                  "the message has " + std::to_string(size) + " bytes, the buffer " +
                      std::to_string(buffer.size()) + "; it stays pending in this channel");
    if (size > 0) std::memcpy(buffer.data(), own_.get(), size);
    pending_.reset();
    return size;
  }

  address where_;
  std::string text_;  // "mq:/name", for errors that are ipcx's rather than a system call's
  unique_fd blocking_;
  unique_fd nonblocking_;
  std::size_t max_message_;  // the queue's mq_msgsize
  bool remove_on_close_;
  std::unique_ptr<std::byte[]> own_;    // mq_msgsize bytes, allocated on the first short buffer
  std::optional<std::size_t> pending_;  // size of the message waiting in own_
};

result<transport_ptr> finish(const address& where, unique_fd blocking, bool created,
                             const channel_options& options) {
  // The second descriptor is a new open file description of the same queue, reached through
  // /proc/self/fd rather than by name: a lookup by name could meet another queue if this one were
  // unlinked and replaced in between.
  auto nonblocking = reopen(blocking.get(), O_RDWR | O_NONBLOCK, where.path);
  mq_attr attr{};
  int rc = nonblocking ? sys([&] { return ::mq_getattr(blocking.get(), &attr); }) : 0;
  if (!nonblocking || rc != 0) {
    auto failure =
        nonblocking ? error::from_errno(errno, "mq_getattr", where.path) : nonblocking.error();
    // A queue this call created and cannot use is removed again, so a failed create leaves
    // nothing behind. This runs only when descriptors run out or /proc is missing.
    if (created) (void)sys([&] { return ::mq_unlink(where.path.c_str()); });
    return std::unexpected(std::move(failure));
  }
  return std::make_unique<posix_mq>(where, std::move(blocking), std::move(*nonblocking),
                                    static_cast<std::size_t>(attr.mq_msgsize),
                                    created && options.remove_on_close);
}

result<unique_fd> create_queue(const std::string& name, const channel_options& options) {
  mq_attr attr{};
  if (options.capacity > 0) {
    attr.mq_maxmsg = static_cast<long>(options.capacity);
  } else {
    attr.mq_maxmsg = read_proc_number(msg_default_path).value_or(default_maxmsg);
    if (auto msg_max = read_proc_number(msg_max_path); msg_max && attr.mq_maxmsg > *msg_max)
      attr.mq_maxmsg = *msg_max;
  }
  if (options.max_message > 0) {
    attr.mq_msgsize = static_cast<long>(options.max_message);
  } else {
    attr.mq_msgsize = static_cast<long>(default_msgsize);
    if (auto msgsize_max = read_proc_number(msgsize_max_path);
        msgsize_max && attr.mq_msgsize > *msgsize_max)
      attr.mq_msgsize = *msgsize_max;
  }
  return mq_open_fd(name, O_RDWR | O_CREAT | O_EXCL, options.permissions, &attr);
}

}  // namespace

result<transport_ptr> open_posix_mq(const address& where, open_mode mode,
                                    const channel_options& options) {
  const std::string& name = where.path;
  if (mode == open_mode::create) {
    auto fd = create_queue(name, options);
    if (!fd) return std::unexpected(fd.error());
    return finish(where, std::move(*fd), true, options);
  }
  if (mode == open_mode::join) {
    auto fd = mq_open_fd(name, O_RDWR);
    if (!fd) return std::unexpected(fd.error());
    return finish(where, std::move(*fd), false, options);
  }
  // open: join, else create. Another process can create or remove the queue between the two
  // calls (EEXIST after ENOENT, or ENOENT after EEXIST): start over, a bounded number of times.
  for (int attempt = 0;; ++attempt) {
    auto joined = mq_open_fd(name, O_RDWR);
    if (joined) return finish(where, std::move(*joined), false, options);
    if (joined.error() != std::errc::no_such_file_or_directory || attempt == 8)
      return std::unexpected(joined.error());
    auto created = create_queue(name, options);
    if (created) return finish(where, std::move(*created), true, options);
    if (created.error() != std::errc::file_exists) return std::unexpected(created.error());
  }
}

result<void> remove_posix_mq(const address& where) {
  if (sys([&] { return ::mq_unlink(where.path.c_str()); }) != 0)
    return fail_errno(errno, "mq_unlink", where.path);
  return {};
}

}  // namespace ipcx::detail
