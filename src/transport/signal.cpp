// signal:PID / signal:self: tiny messages carried by a real-time signal's 64-bit value.
//
// A message is at most 7 bytes: the signal's value (sigval, 64 bits) holds the message's length in
// its top byte (bits 56-63) and the message's bytes below it, byte i in bits 8i..8i+7. info()
// reports max_message = 7. Real-time signals of one number queue in FIFO order, so messages arrive
// in the order they were sent.
//
// Ends:
// - signal:self, or signal:PID naming this process, is the receiving end (create, join and open
//   alike); where() reports signal:<getpid()>. It can also send to itself.
// - signal:PID of another process is a sending end: join (and open) check that the process exists
//   (ESRCH, "no such process", naming it; EPERM when this process may not signal it) and that it
//   is listening, i.e. every one of its threads blocks the signal or it has a handler, read from
//   /proc/PID/task/*/status (SigBlk, SigCgt). A process that is not listening is refused with
//   ECONNREFUSED rather than killed by a real-time signal it does not expect. create on another
//   pid is errc::not_supported: only the receiving process can create its end. recv on a sending
//   end is errc::not_supported.
//
// Receiving: creating the first receiving end blocks the signal in the calling thread
// (pthread_sigmask) and reads it from a signalfd. The signal must stay blocked in EVERY thread of
// the process, or the kernel may deliver it to a thread that does not block it, whose default
// action ends the process: create the receiving channel in the main thread before starting other
// threads (they inherit the mask), or block SIGRTMIN+4 in each thread; create checks every thread
// (/proc/self/task) and fails with EINVAL while one does not (best effort: a thread still being
// started has every signal blocked until its start routine runs). Signals whose si_code is not
// SI_QUEUE (kill, tgkill, the kernel) carry no message and are skipped. Several receiving channels
// in one process share the signal (any of them may receive a given message); the mask is restored
// when the last one closes.
//
// Closing the last receiving end: messages still queued are drained (read with the non-blocking
// signalfd and dropped, as a socket's unread data is when it closes), so they neither linger nor
// reach a later receiving channel. Then, only if ipcx blocked the signal, it is unblocked again,
// and before that its action is set to SIG_IGN if it was still the default: a sender that joined
// earlier may still send, and with the default action its next signal would terminate this
// process. (Setting SIG_IGN also discards anything that arrived after the drain.) The SIG_IGN
// stays; join() then refuses this process (an ignored signal is neither blocked nor caught) until a
// receiving channel blocks it again.
//
// Sending uses a pidfd (pidfd_open at join, pidfd_send_signal with si_code SI_QUEUE, exactly the
// siginfo sigqueue builds) rather than sigqueue(pid): a pid can be reused after its process exits,
// a pidfd cannot, so a message never reaches an unrelated process; a send to a process that has
// exited fails with errc::peer_dead (once it has been reaped: the kernel accepts and discards
// signals to a zombie, and nothing cheaper than a poll per send could tell). It is one system call,
// like sigqueue without glibc's getpid and getuid calls (cached here).
//
// A full queue: the receiver's pending real-time signals are limited by its RLIMIT_SIGPENDING
// (counted per real user id). The kernel then refuses the signal with EAGAIN; it is never dropped
// silently. With a deadline the send is retried after short sleeps (50 us doubling to 10 ms)
// until the deadline, then fails with errc::timed_out ("the receiver's signal queue is full");
// without one it is retried the same way until there is room. Sleeping is the only way: nothing
// signals that a queue has room again.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/io.hpp"
#include "core/syscall.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

using namespace std::chrono_literals;

// The signal ipcx carries messages on: SIGRTMIN + 4. Real-time, so it queues with a value and in
// order; +4 leaves SIGRTMIN..SIGRTMIN+3 to programs that pick the first real-time signals by habit.
// A function because glibc's SIGRTMIN is not a constant (it reserves the first few for itself).
constexpr int signal_offset = 4;
int message_signal() noexcept { return SIGRTMIN + signal_offset; }
constexpr const char* signal_name = "SIGRTMIN+4";

constexpr std::size_t max_payload = 7;

std::uint64_t encode(std::span<const std::byte> message) noexcept {
  std::uint64_t value = static_cast<std::uint64_t>(message.size()) << 56;
  for (std::size_t i = 0; i < message.size(); ++i)
    value |= static_cast<std::uint64_t>(message[i]) << (8 * i);
  return value;
}

std::size_t encoded_length(std::uint64_t value) noexcept { return value >> 56; }

void decode(std::uint64_t value, std::span<std::byte> out) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::byte((value >> (8 * i)) & 0xffu);
}

// pidfd_open and pidfd_send_signal through syscall(2): glibc 2.36's <sys/pidfd.h> declares them
// without extern "C" (fixed in 2.37), so C++ cannot link its wrappers, and older glibc has none.
int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }
int pidfd_send_signal(int pidfd, int signo, siginfo_t* info) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, info, 0u));
}

std::unexpected<error> fail_code(std::errc code, std::string operation, std::string object,
                                 std::string detail) {
  return std::unexpected(error(std::make_error_code(code), std::move(operation), std::move(object),
                               std::move(detail)));
}

// What the receiving ends of this process share: how many there are, and the signal mask they
// found, restored when the last one closes.
struct receivers {
  std::mutex mutex;
  int count = 0;
  bool was_blocked = false;  // the signal was blocked before ipcx blocked it
};

receivers& shared_receivers() {
  static receivers instance;
  return instance;
}

sigset_t message_set() {
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, message_signal());
  return set;
}

class signal_channel final : public transport {
 public:
  // A receiving end (blocking and non-blocking signalfds) or a sending end (no signalfds).
  signal_channel(address where, std::size_t max_message, unique_fd pidfd, pid_t target,
                 unique_fd blocking, unique_fd nonblocking)
      : where_(std::move(where)),
        text_(where_.to_string()),
        max_message_(max_message),
        pidfd_(std::move(pidfd)),
        target_(target),
        blocking_(std::move(blocking)),
        nonblocking_(std::move(nonblocking)) {
    // Built once: a send only sets the value. Named as sigqueue names the sender; getpid and
    // getuid are system calls in glibc, and fork does not carry channels usefully anyway.
    std::memset(&info_, 0, sizeof info_);
    info_.si_signo = message_signal();
    info_.si_code = SI_QUEUE;  // what sigqueue sends; receivers skip anything else
    info_.si_pid = ::getpid();
    info_.si_uid = ::getuid();
  }

  ~signal_channel() override;

  result<void> send(std::span<const std::byte> message, deadline until) override;
  result<std::size_t> recv(std::span<std::byte> out, deadline until) override;
  int wait_fd() const noexcept override { return nonblocking_.get(); }
  channel_info info() const noexcept override {
    return {.kind = mechanism::signal,
            .max_message = max_message_,
            .ordered = true,
            .persistent = false,
            .cross_host = false,
            .stream = false};
  }
  const address& where() const noexcept override { return where_; }

 private:
  bool receiving() const noexcept { return static_cast<bool>(blocking_); }
  // Hands out a message that arrived earlier but did not fit.
  result<std::size_t> deliver(std::uint64_t value, std::span<std::byte> out);

  address where_;
  std::string text_;  // where_ as text, for errors
  std::size_t max_message_;
  unique_fd pidfd_;  // the process messages are sent to (this one, for a receiving end)
  pid_t target_;
  siginfo_t info_;         // what every send passes to pidfd_send_signal, but for the value
  unique_fd blocking_;     // signalfd for never-deadline recv: one blocking read per message
  unique_fd nonblocking_;  // SFD_NONBLOCK twin for deadlines, wait_fd() and the final drain
  std::optional<std::uint64_t> pending_;  // dequeued, but larger than the caller's buffer
};

signal_channel::~signal_channel() {
  if (!receiving()) return;
  auto& shared = shared_receivers();
  std::lock_guard lock(shared.mutex);
  if (--shared.count > 0) return;  // another receiving end still listens
  signalfd_siginfo info;
  while (sys([&] { return ::read(nonblocking_.get(), &info, sizeof info); }) ==
         static_cast<ssize_t>(sizeof info)) {
  }
  if (shared.was_blocked) return;
  struct sigaction current {};
  if (::sigaction(message_signal(), nullptr, &current) == 0 && current.sa_handler == SIG_DFL &&
      (current.sa_flags & SA_SIGINFO) == 0) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(message_signal(), &ignore, nullptr);
  }
  sigset_t set = message_set();
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

result<void> signal_channel::send(std::span<const std::byte> message, deadline until) {
  if (message.size() > max_message_)
    return fail(errc::message_too_large, "send", text_,
                std::to_string(message.size()) + " bytes, a signal carries at most " +
                    std::to_string(max_message_));
  info_.si_value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(encode(message)));
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    if (sys([&] { return pidfd_send_signal(pidfd_.get(), info_.si_signo, &info_); }) == 0)
      return {};
    if (errno == ESRCH)
      return fail(errc::peer_dead, "send", text_,
                  "process " + std::to_string(target_) + " has exited");
    if (errno != EAGAIN) return fail_errno(errno, "pidfd_send_signal", text_);
    // EAGAIN: the receiver's queue of pending signals is full (RLIMIT_SIGPENDING).
    if (until.expired())
      return fail(errc::timed_out, "send", text_,
                  "the receiver's signal queue is full (RLIMIT_SIGPENDING)");
    auto wait = until.is_never() ? deadline::clock::duration(pause)
                                 : std::min<deadline::clock::duration>(pause, until.remaining());
    std::this_thread::sleep_for(wait);
    pause = std::min(pause * 2, std::chrono::microseconds(10'000));
  }
}

result<std::size_t> signal_channel::deliver(std::uint64_t value, std::span<std::byte> out) {
  std::size_t length = encoded_length(value);
  if (length > out.size()) {
    pending_ = value;  // already dequeued from the kernel: kept here for the next recv
    return fail(errc::message_too_large, "recv", text_,
                "the message has " + std::to_string(length) + " bytes, the buffer " +
                    std::to_string(out.size()));
  }
  pending_.reset();
  decode(value, out.first(length));
  return length;
}

result<std::size_t> signal_channel::recv(std::span<std::byte> out, deadline until) {
  if (!receiving())
    return fail(errc::not_supported, "recv", text_,
                "a channel to another process only sends; receive on signal:self");
  if (pending_) return deliver(*pending_, out);
  for (;;) {
    signalfd_siginfo info;
    ssize_t n;
    if (until.is_never()) {
      n = sys([&] { return ::read(blocking_.get(), &info, sizeof info); });
    } else {
      n = sys([&] { return ::read(nonblocking_.get(), &info, sizeof info); });
      if (n < 0 && errno == EAGAIN) {
        if (until.expired()) return fail(errc::timed_out, "recv", text_);
        auto ready = wait_for(nonblocking_.get(), POLLIN, until, text_);
        if (!ready) return std::unexpected(ready.error());
        if (!*ready) return fail(errc::timed_out, "recv", text_);
        continue;
      }
    }
    if (n < 0) return fail_errno(errno, "read(signalfd)", text_);
    if (n != static_cast<ssize_t>(sizeof info))
      return fail(errc::bad_frame, "read(signalfd)", text_,
                  "short read of " + std::to_string(n) + " bytes");
    // kill(), tgkill() and the kernel send no value: not a message.
    if (info.ssi_code != SI_QUEUE) continue;
    std::uint64_t value = info.ssi_ptr;
    if (encoded_length(value) > max_payload)
      return fail(errc::bad_frame, "recv", text_,
                  "a signal from process " + std::to_string(info.ssi_pid) + " claims " +
                      std::to_string(encoded_length(value)) + " bytes; a message has at most " +
                      std::to_string(max_payload));
    return deliver(value, out);
  }
}

// Reads a small file (a /proc status) whole.
result<std::string> read_small_file(const std::string& path) {
  unique_fd fd(sys([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }));
  if (!fd) return fail_errno(errno, "open", path);
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = sys([&] { return ::read(fd.get(), buffer, sizeof buffer); });
    if (n < 0) return fail_errno(errno, "read", path);
    if (n == 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

// The value of a "Name:\tvalue" line of a /proc status file, empty if there is none.
std::string_view status_field(std::string_view status, std::string_view name) {
  for (std::size_t at = 0; at < status.size();) {
    auto end = status.find('\n', at);
    if (end == std::string_view::npos) end = status.size();
    auto line = status.substr(at, end - at);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':') {
      auto value = line.substr(name.size() + 1);
      while (!value.empty() && (value.front() == '\t' || value.front() == ' '))
        value.remove_prefix(1);
      return value;
    }
    at = end + 1;
  }
  return {};
}

// Whether the signal's bit is set in a hexadecimal mask such as SigBlk's.
bool mask_has_signal(std::string_view hex, int signo) {
  int bit = signo - 1;
  auto digit_index = static_cast<std::size_t>(bit / 4);
  if (digit_index >= hex.size()) return false;
  char c = hex[hex.size() - 1 - digit_index];
  int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
  return ((digit >> (bit % 4)) & 1) != 0;
}

bool is_zombie(std::string_view status) {
  auto state = status_field(status, "State");
  return !state.empty() && (state.front() == 'Z' || state.front() == 'X');
}

// How a process treats the message signal, from /proc/PID/status and /proc/PID/task/*/status.
struct disposition {
  bool caught = false;                   // it has a handler (handlers are per process)
  std::optional<std::string> unblocked;  // a live thread that does not block it, if any
};

// Reads the disposition of the process `pidfd` refers to. A process with no live thread has
// exited (zombie threads, such as a main thread that called pthread_exit, receive nothing).
result<disposition> inspect(pid_t pid, int pidfd, const std::string& object) {
  std::string proc = "/proc/" + std::to_string(pid);
  auto gone = [&] {
    return fail_code(std::errc::no_such_process, "join", object,
                     "process " + std::to_string(pid) + " has exited");
  };
  // When /proc cannot be read, the process either exited meanwhile or /proc is not this pid
  // namespace's: signal 0 through the pidfd tells which.
  auto unreadable = [&](const error& cause) -> std::unexpected<error> {
    if (pidfd_send_signal(pidfd, 0, nullptr) != 0 && errno == ESRCH) return gone();
    return std::unexpected(cause);
  };
  int signo = message_signal();
  disposition out;
  auto main_status = read_small_file(proc + "/status");
  if (!main_status) return unreadable(main_status.error());
  out.caught = mask_has_signal(status_field(*main_status, "SigCgt"), signo);

  std::string task_dir = proc + "/task";
  DIR* dir = ::opendir(task_dir.c_str());  // O_CLOEXEC in glibc
  if (dir == nullptr) return unreadable(error::from_errno(errno, "opendir", task_dir));
  bool alive = false;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    auto status = read_small_file(task_dir + "/" + entry->d_name + "/status");
    if (!status || is_zombie(*status)) continue;  // the thread exited meanwhile, or already had
    alive = true;
    if (!mask_has_signal(status_field(*status, "SigBlk"), signo)) {
      out.unblocked = entry->d_name;
      break;
    }
  }
  ::closedir(dir);
  if (!alive) return gone();
  return out;
}

// Checks that process `pid` receives the message signal: caught, or blocked in every thread
// (the kernel gives a process-directed signal to any thread that does not block it, and the
// default action would end the process).
result<void> check_listening(pid_t pid, int pidfd, const std::string& object) {
  auto seen = inspect(pid, pidfd, object);
  if (!seen) return std::unexpected(seen.error());
  if (seen->caught || !seen->unblocked) return {};
  std::string detail =
      "process " + std::to_string(pid) + " is not receiving signal " + signal_name + " (";
  if (*seen->unblocked != std::to_string(pid)) detail += "its thread " + *seen->unblocked + " ";
  detail += "neither blocks nor catches it: it has no signal:self channel)";
  return fail_code(std::errc::connection_refused, "join", object, std::move(detail));
}

result<transport_ptr> open_receiver(std::size_t max_message) {
  address where;
  where.kind = mechanism::signal;
  where.pid = ::getpid();
  std::string object = where.to_string();
  sigset_t set = message_set();

  auto& shared = shared_receivers();
  std::lock_guard lock(shared.mutex);
  // Blocked before the signalfds exist, so nothing arriving meanwhile meets the default action.
  // Blocked again for a second receiving end, in case it is made in another thread.
  sigset_t previous;
  if (int rc = ::pthread_sigmask(SIG_BLOCK, &set, &previous); rc != 0)
    return fail_errno(rc, "pthread_sigmask", object);
  bool was_blocked = ::sigismember(&previous, message_signal()) == 1;
  auto undo = [&](std::unexpected<error> failure) -> result<transport_ptr> {
    if (shared.count == 0 && !was_blocked) ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return failure;
  };

  unique_fd blocking(sys([&] { return ::signalfd(-1, &set, SFD_CLOEXEC); }));
  if (!blocking) return undo(fail_errno(errno, "signalfd", object));
  unique_fd nonblocking(sys([&] { return ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK); }));
  if (!nonblocking) return undo(fail_errno(errno, "signalfd", object));
  // A channel on self sends to this process as any sender would.
  unique_fd pidfd(sys([&] { return pidfd_open(where.pid); }));
  if (!pidfd) return undo(fail_errno(errno, "pidfd_open", object));
  // This thread now blocks the signal; a thread started earlier may not, and the kernel could
  // hand it a message, ending the process (or, with a handler, losing the message). Refuse
  // rather than leave that trap. Without a readable /proc the check is skipped.
  if (auto seen = inspect(where.pid, pidfd.get(), object); seen && seen->unblocked)
    return undo(fail_code(std::errc::invalid_argument, "create", object,
                          "thread " + *seen->unblocked + " of this process does not block " +
                              signal_name +
                              ": create the receiving channel before starting "
                              "threads, or block the signal in every thread"));

  if (shared.count++ == 0) shared.was_blocked = was_blocked;
  return transport_ptr(new signal_channel(where, max_message, std::move(pidfd), where.pid,
                                          std::move(blocking), std::move(nonblocking)));
}

result<transport_ptr> open_sender(const address& where, std::size_t max_message) {
  std::string object = where.to_string();
  pid_t pid = where.pid;
  // The pidfd first: the checks below then concern the very process messages will go to.
  unique_fd pidfd(sys([&] { return pidfd_open(pid); }));
  if (!pidfd) {
    if (errno == ESRCH)
      return fail_code(std::errc::no_such_process, "pidfd_open", object,
                       "no process " + std::to_string(pid));
    return fail_errno(errno, "pidfd_open", object);
  }
  // Signal 0: the permission check of a real send (EPERM), without sending anything.
  if (sys([&] { return pidfd_send_signal(pidfd.get(), 0, nullptr); }) != 0) {
    if (errno == ESRCH)
      return fail_code(std::errc::no_such_process, "pidfd_send_signal", object,
                       "process " + std::to_string(pid) + " has exited");
    if (errno == EPERM)
      return fail_code(std::errc::operation_not_permitted, "pidfd_send_signal", object,
                       "this process may not signal process " + std::to_string(pid));
    return fail_errno(errno, "pidfd_send_signal", object);
  }
  auto listening = check_listening(pid, pidfd.get(), object);
  if (!listening) return std::unexpected(listening.error());
  return transport_ptr(
      new signal_channel(where, max_message, std::move(pidfd), pid, unique_fd(), unique_fd()));
}

}  // namespace

result<transport_ptr> open_signal(const address& where, open_mode mode,
                                  const channel_options& options) {
  std::size_t max_message = options.max_message != 0 ? options.max_message : max_payload;
  if (max_message > max_payload)
    return fail_code(
        std::errc::invalid_argument, "open", where.to_string(),
        "max_message " + std::to_string(max_message) + ": a signal carries at most 7 bytes");
  bool self = where.pid == 0 || where.pid == ::getpid();
  if (self) return open_receiver(max_message);
  if (mode == open_mode::create)
    return fail(errc::not_supported, "create", where.to_string(),
                "only the receiving process can create its end; join signal:" +
                    std::to_string(where.pid) + " to send to it");
  return open_sender(where, max_message);
}

}  // namespace ipcx::detail
