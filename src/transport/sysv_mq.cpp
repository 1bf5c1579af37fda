// sysv-mq:KEY — a System V message queue.
//
// Design: every message is {long mtype = 1; payload}. msgsnd and msgrcv need that header and the
// payload in one contiguous region, so the channel keeps one send and one receive buffer of
// sizeof(long) + max_message, allocated when it opens, and copies the payload in or out (as raw
// code does). Never-deadline calls are the plain blocking msgsnd / msgrcv; an expired deadline is
// one IPC_NOWAIT attempt; a finite deadline retries IPC_NOWAIT with a short sleep (see
// retry_until).
//
// msgrcv without MSG_NOERROR refuses (E2BIG) a message larger than the size asked and leaves it at
// the head of the queue, so errc::message_too_large here means the message truly stays in the
// queue, visible to every reader.
//
// A SysV queue does not record its maximum message: each end takes it from its options (default
// min(8192, msgmax)), and both ends should agree.
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "core/io.hpp"
#include "core/syscall.hpp"
#include "ipcx/unique_fd.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t default_max_message = 8192;
constexpr const char* msgmax_path = "/proc/sys/kernel/msgmax";
constexpr const char* msgmnb_path = "/proc/sys/kernel/msgmnb";

std::string hex(long value) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%08lx", static_cast<unsigned long>(value) & 0xffffffffUL);
  return text;
}

// SysV queues have no timed msgsnd/msgrcv and no descriptor to poll, so a finite deadline can only
// be kept by retrying with IPC_NOWAIT. The sleep starts at 50 us, so a message that comes soon is
// picked up soon, and doubles up to 2 ms, so a long wait costs little CPU; it never runs past the
// deadline. `attempt` returns -1 with errno set; -1 with errno == `busy` comes back only once the
// deadline has passed (after exactly one attempt when it had passed already).
template <typename Attempt>
ssize_t retry_until(deadline until, int busy, Attempt&& attempt) {
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    ssize_t rc = attempt();
    if (rc >= 0 || errno != busy || until.expired()) return rc;
    auto wake = std::min(deadline::clock::now() + pause, until.when());
    auto since_epoch =
        std::chrono::duration_cast<std::chrono::nanoseconds>(wake.time_since_epoch());
    // steady_clock is CLOCK_MONOTONIC; an absolute wake time keeps an EINTR retry from sleeping
    // longer than planned.
    timespec at{.tv_sec = static_cast<time_t>(since_epoch.count() / 1'000'000'000),
                .tv_nsec = static_cast<long>(since_epoch.count() % 1'000'000'000)};
    (void)sys([&] {
      int failed = ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr);
      if (failed == 0) return 0;
      errno = failed;  // clock_nanosleep returns its error rather than setting errno
      return -1;
    });
    pause = std::min<std::chrono::microseconds>(pause * 2, 2ms);
  }
}

class sysv_mq final : public transport {
 public:
  sysv_mq(address where, key_t key, int id, std::size_t max_message, bool remove_on_close)
      : where_(std::move(where)),
        text_(where_.to_string()),
        key_(key),
        id_(id),
        max_message_(max_message),
        remove_on_close_(remove_on_close),
        send_(std::make_unique_for_overwrite<long[]>(words(max_message))),
        receive_(std::make_unique_for_overwrite<long[]>(words(max_message))) {
    send_[0] = 1;  // mtype: msgsnd requires > 0, and every message has the same one (FIFO)
  }

  ~sysv_mq() override {
    // Already removed by someone else (EINVAL/EIDRM) is fine: it is gone either way.
    if (remove_on_close_) (void)sys([&] { return ::msgctl(id_, IPC_RMID, nullptr); });
  }

  result<void> send(std::span<const std::byte> message, deadline until) override {
    std::size_t size = message.size();
    if (size > max_message_)
      return fail(errc::message_too_large, "send", text_,
                  std::to_string(size) + " bytes, the channel's maximum is " +
                      std::to_string(max_message_));
    if (size > 0) std::memcpy(send_.get() + 1, message.data(), size);
    int rc = 0;
    if (until.is_never()) {
      rc = sys([&] { return ::msgsnd(id_, send_.get(), size, 0); });
    } else {
      rc = static_cast<int>(retry_until(until, EAGAIN, [&] {
        return sys([&] { return ::msgsnd(id_, send_.get(), size, IPC_NOWAIT); });
      }));
      if (rc < 0 && errno == EAGAIN) return fail(errc::timed_out, "send", text_);
    }
    if (rc == 0) return {};
    return call_error(errno, "msgsnd");
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    std::size_t want = std::min(buffer.size(), max_message_);
    ssize_t n = 0;
    if (until.is_never()) {
      n = sys([&] { return ::msgrcv(id_, receive_.get(), want, 0, 0); });
    } else {
      n = retry_until(until, ENOMSG, [&] {
        return sys([&] { return ::msgrcv(id_, receive_.get(), want, 0, IPC_NOWAIT); });
      });
      if (n < 0 && errno == ENOMSG) return fail(errc::timed_out, "recv", text_);
    }
    if (n < 0) {
      if (errno == E2BIG) {
        std::string limit = want == buffer.size()
                                ? "the buffer's " + std::to_string(want) + " bytes"
                                : "this channel's max_message " + std::to_string(want) +
                                      " (join with the sender's max_message)";
        return fail(errc::message_too_large, "recv", text_,
                    "the next message is larger than " + limit + "; it stays in the queue");
      }
      return call_error(errno, "msgrcv");
    }
    auto size = static_cast<std::size_t>(n);
    if (size > 0) std::memcpy(buffer.data(), receive_.get() + 1, size);
    return size;
  }

  channel_info info() const noexcept override {
    return {.kind = mechanism::sysv_mq,
            .max_message = max_message_,
            .ordered = true,
            .persistent = true,
            .cross_host = false,
            .stream = false};
  }

  const address& where() const noexcept override { return where_; }

 private:
  // The mtype word plus max_message bytes, in longs so the mtype is aligned.
  static std::size_t words(std::size_t max_message) {
    return 1 + (max_message + sizeof(long) - 1) / sizeof(long);
  }

  std::unexpected<error> call_error(int errno_value, const char* operation) {
    std::string queue = "the queue (key " + hex(key_) + ", msqid " + std::to_string(id_) + ")";
    // EIDRM: the queue was removed while this call slept in it.
    if (errno_value == EIDRM)
      return fail_errno(EIDRM, operation, text_,
                               queue + " was removed while this call waited");
    // EINVAL: our arguments are valid (mtype 1, size <= msgmax when the channel opened), so the
    // usual cause is a queue removed before the call; IPC_STAT tells that apart from a msgmax
    // lowered since, and both removal cases get the same code.
    if (errno_value == EINVAL) {
      msqid_ds ds{};
      if (sys([&] { return ::msgctl(id_, IPC_STAT, &ds); }) != 0)
        return fail_errno(EIDRM, operation, text_, queue + " no longer exists");
    }
    return fail_errno(errno_value, operation, text_);
  }

  address where_;
  std::string text_;  // "sysv-mq:KEY" as written in the address
  key_t key_;
  int id_;
  std::size_t max_message_;
  bool remove_on_close_;
  std::unique_ptr<long[]> send_;     // [0] the mtype, then the payload
  std::unique_ptr<long[]> receive_;  // the same layout, filled by msgrcv
};

result<key_t> key_of(const address& where) {
  if (where.path.empty()) return static_cast<key_t>(where.key);
  key_t key = sys([&] { return ::ftok(where.path.c_str(), 'x'); });
  if (key == -1) return fail_errno(errno, "ftok", where.path);
  return key;
}

// Sizes the queue this call just created: room for `capacity` messages of max_message bytes, and
// in any case for one message of max_message bytes (a larger one would block msgsnd forever).
result<void> configure(int id, const std::string& text, std::size_t max_message,
                       std::size_t capacity) {
  msqid_ds ds{};
  if (sys([&] { return ::msgctl(id, IPC_STAT, &ds); }) != 0)
    return fail_errno(errno, "msgctl(IPC_STAT)", text);
  std::size_t want = ds.msg_qbytes;
  std::string asked;
  if (capacity > 0) {
    if (max_message > 0 && capacity > std::numeric_limits<std::size_t>::max() / max_message)
      return fail_errno(EINVAL, "msgctl(IPC_SET)", text,
                               "capacity " + std::to_string(capacity) + " overflows");
    want = std::max(capacity * max_message, max_message);
    asked = "capacity " + std::to_string(capacity) + " x max_message " +
            std::to_string(max_message) + " = " + std::to_string(want) + " bytes";
  } else if (max_message > want) {
    want = max_message;
    asked = "max_message " + std::to_string(max_message) + " bytes";
  }
  if (want == ds.msg_qbytes) return {};
  ds.msg_qbytes = want;
  if (sys([&] { return ::msgctl(id, IPC_SET, &ds); }) == 0) return {};
  if (errno == EPERM) {
    auto msgmnb = read_proc_number(msgmnb_path);
    return fail_errno(EPERM, "msgctl(IPC_SET)", text,
                             asked + " is above the host's msgmnb " +
                                 (msgmnb ? std::to_string(*msgmnb) : std::string("(unknown)")) +
                                 " (" + msgmnb_path + "); more needs CAP_SYS_RESOURCE");
  }
  return fail_errno(errno, "msgctl(IPC_SET)", text);
}

}  // namespace

result<transport_ptr> open_sysv_mq(const address& where, open_mode mode,
                                   const channel_options& options) {
  std::string text = where.to_string();
  auto key = key_of(where);
  if (!key) return std::unexpected(key.error());

  auto msgmax = read_proc_number(msgmax_path);
  std::size_t max_message = options.max_message;
  if (max_message == 0) {
    max_message = default_max_message;
    if (msgmax && *msgmax > 0)
      max_message = std::min(max_message, static_cast<std::size_t>(*msgmax));
  } else if (msgmax && max_message > static_cast<std::size_t>(*msgmax)) {
    // msgsnd would refuse every message this large (EINVAL), with or without privileges.
    return fail_errno(EINVAL, "msgget", text,
                             "max_message " + std::to_string(max_message) +
                                 " is above the host's msgmax " + std::to_string(*msgmax) + " (" +
                                 msgmax_path + ")");
  }

  auto create = [&]() -> result<transport_ptr> {
    int id = sys([&] {
      return ::msgget(*key, IPC_CREAT | IPC_EXCL | static_cast<int>(options.permissions & 0777));
    });
    if (id < 0) return fail_errno(errno, "msgget", text);
    auto configured = configure(id, text, max_message, options.capacity);
    if (!configured) {
      // The queue was made by this call and cannot be used as asked: remove it, so a failed
      // create leaves nothing behind.
      (void)sys([&] { return ::msgctl(id, IPC_RMID, nullptr); });
      return std::unexpected(configured.error());
    }
    return std::make_unique<sysv_mq>(where, *key, id, max_message, options.remove_on_close);
  };
  // msgget with no mode bits checks no permission at all; asking for read and write here makes a
  // joiner that could never send or receive fail now, with EACCES, rather than at its first call.
  auto join = [&]() -> result<transport_ptr> {
    int id = sys([&] { return ::msgget(*key, 0600); });
    if (id < 0) return fail_errno(errno, "msgget", text);
    return std::make_unique<sysv_mq>(where, *key, id, max_message, false);
  };

  if (mode == open_mode::create) return create();
  if (mode == open_mode::join) return join();
  // open: join, else create. Another process can create or remove the queue between the two
  // calls (EEXIST after ENOENT, or ENOENT after EEXIST): start over, a bounded number of times.
  for (int attempt = 0;; ++attempt) {
    auto joined = join();
    if (joined || joined.error() != std::errc::no_such_file_or_directory || attempt == 8)
      return joined;
    auto created = create();
    if (created || created.error() != std::errc::file_exists) return created;
  }
}

result<void> remove_sysv_mq(const address& where) {
  std::string text = where.to_string();
  auto key = key_of(where);
  if (!key) return std::unexpected(key.error());
  int id = sys([&] { return ::msgget(*key, 0); });
  if (id < 0) return fail_errno(errno, "msgget", text);
  if (sys([&] { return ::msgctl(id, IPC_RMID, nullptr); }) != 0)
    return fail_errno(errno, "msgctl(IPC_RMID)", text);
  return {};
}

}  // namespace ipcx::detail
