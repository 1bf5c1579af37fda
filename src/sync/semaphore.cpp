// Semaphores: sem:/name (POSIX named), unnamed process-shared (sem_init in shared memory), and
// sysv-sem:KEY (a System V set of one). See include/ipcx/semaphore.hpp for the contract.
//
// The addresses are parsed here: the core address type describes channels, and a semaphore is no
// channel. The rules and messages follow src/core/address.cpp.
#include "ipcx/semaphore.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>

#include <chrono>
#include <cstdint>
#include <utility>

#include "core/address_rules.hpp"
#include "core/syscall.hpp"

namespace ipcx {
namespace {

using detail::sys;

// Linux's SEMVMX: the largest value of a System V semaphore.
constexpr unsigned kSysvMax = 32767;

// semctl's fourth argument, which the caller must define (POSIX says so).
union semun {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

struct sem_address {
  bool sysv = false;
  std::string name;  // posix: "/name"
  std::string path;  // sysv: the ftok path, when given
  long key = 0;      // sysv: the numeric key otherwise
};

result<sem_address> parse(std::string_view text) {
  sem_address out;
  if (text.starts_with("sem:")) {
    // glibc keeps the semaphore in /dev/shm/sem.NAME: the file name, prefix included, must fit
    // NAME_MAX.
    auto name = detail::check_ipc_name(text, text.substr(4), "sem:/name", NAME_MAX - 4 + 1);
    if (!name) return std::unexpected(name.error());
    out.name = std::move(*name);
    return out;
  }
  if (text.starts_with("sysv-sem:")) {
    address key;
    auto parsed = detail::parse_sysv_key(text, text.substr(9), "sysv-sem:KEY", key);
    if (!parsed) return std::unexpected(parsed.error());
    out.sysv = true;
    out.path = std::move(key.path);
    out.key = key.key;
    return out;
  }
  return detail::malformed(text, "unknown scheme; expected sem:/name or sysv-sem:KEY");
}

result<key_t> key_of(const sem_address& where, const std::string& text) {
  if (where.path.empty()) return static_cast<key_t>(where.key);
  // 'x', as the other System V objects use: one path names the same key for every ipcx kind.
  key_t key = sys([&] { return ::ftok(where.path.c_str(), 'x'); });
  if (key == -1) return fail_errno(errno, "ftok", text);
  return key;
}

timespec monotonic(deadline until) {
  auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(until.when().time_since_epoch()).count();
  return {.tv_sec = static_cast<time_t>(ns / 1'000'000'000),
          .tv_nsec = static_cast<long>(ns % 1'000'000'000)};
}

timespec relative(deadline until) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until.remaining()).count();
  return {.tv_sec = static_cast<time_t>(ns / 1'000'000'000),
          .tv_nsec = static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

semaphore::semaphore(semaphore&& other) noexcept
    : kind_(other.kind_),
      sem_(std::exchange(other.sem_, nullptr)),
      id_(std::exchange(other.id_, -1)),
      text_(std::move(other.text_)),
      name_(std::move(other.name_)),
      remove_on_close_(std::exchange(other.remove_on_close_, false)),
      undo_(other.undo_) {}

semaphore& semaphore::operator=(semaphore&& other) noexcept {
  if (this != &other) {
    reset();
    kind_ = other.kind_;
    sem_ = std::exchange(other.sem_, nullptr);
    id_ = std::exchange(other.id_, -1);
    text_ = std::move(other.text_);
    name_ = std::move(other.name_);
    remove_on_close_ = std::exchange(other.remove_on_close_, false);
    undo_ = other.undo_;
  }
  return *this;
}

semaphore::~semaphore() { reset(); }

void semaphore::reset() noexcept {
  // Failures here have nobody to go to: sem_close/sem_unlink/IPC_RMID fail only for a semaphore
  // already gone, which is what was wanted.
  switch (kind_) {
    case kind::posix_named:
      if (sem_ != nullptr) (void)sys([&] { return ::sem_close(sem_); });
      // By name: glibc gives no identity to compare, so a successor under the same name would go
      // too. The creator owns the name; remove_on_close says it keeps it to itself.
      if (remove_on_close_) (void)sys([&] { return ::sem_unlink(name_.c_str()); });
      break;
    case kind::posix_unnamed:
      // No sem_destroy: other processes may still use the semaphore, and it lives as long as the
      // memory it is in (sem_destroy is a no-op on Linux anyway).
      break;
    case kind::sysv:
      if (id_ >= 0 && remove_on_close_) (void)sys([&] { return ::semctl(id_, 0, IPC_RMID); });
      break;
  }
  sem_ = nullptr;
  id_ = -1;
  remove_on_close_ = false;
}

result<semaphore> semaphore::create(std::string_view address, unsigned initial,
                                    const semaphore_options& options) {
  auto where = parse(address);
  if (!where) return std::unexpected(where.error());
  std::string text(address);
  if (!where->sysv) {
    if (initial > SEM_VALUE_MAX)
      return fail_errno(EINVAL, "sem_open", text,
                       "initial value " + std::to_string(initial) + " is above SEM_VALUE_MAX " +
                           std::to_string(SEM_VALUE_MAX));
    sem_t* s = sys([&] {
      return ::sem_open(where->name.c_str(), O_CREAT | O_EXCL, options.permissions & 07777,
                        initial);
    });
    if (s == SEM_FAILED) return fail_errno(errno, "sem_open", text);
    semaphore out(kind::posix_named, std::move(text));
    out.sem_ = s;
    out.name_ = where->name;
    out.remove_on_close_ = options.remove_on_close;
    return out;
  }
  if (initial > kSysvMax)
    return fail_errno(ERANGE, "semctl(SETVAL)", text,
                     "initial value " + std::to_string(initial) + " is above SEMVMX " +
                         std::to_string(kSysvMax));
  auto key = key_of(*where, text);
  if (!key) return std::unexpected(key.error());
  int id = sys([&] {
    return ::semget(*key, 1, IPC_CREAT | IPC_EXCL | static_cast<int>(options.permissions & 0777));
  });
  if (id < 0) return fail_errno(errno, "semget", text);
  // A joiner that comes between semget and SETVAL sees the value 0 that Linux gives a new set: it
  // waits (or fails a try_wait) rather than taking something that is not there yet.
  semun arg{.val = static_cast<int>(initial)};
  if (sys([&] { return ::semctl(id, 0, SETVAL, arg); }) < 0) {
    int saved = errno;
    (void)sys([&] { return ::semctl(id, 0, IPC_RMID); });  // a failed create leaves nothing
    return fail_errno(saved, "semctl(SETVAL)", text);
  }
  semaphore out(kind::sysv, std::move(text));
  out.id_ = id;
  out.remove_on_close_ = options.remove_on_close;
  out.undo_ = options.undo;
  return out;
}

result<semaphore> semaphore::join(std::string_view address, const semaphore_options& options) {
  auto where = parse(address);
  if (!where) return std::unexpected(where.error());
  std::string text(address);
  if (!where->sysv) {
    sem_t* s = sys([&] { return ::sem_open(where->name.c_str(), 0); });
    if (s == SEM_FAILED) return fail_errno(errno, "sem_open", text);
    semaphore out(kind::posix_named, std::move(text));
    out.sem_ = s;
    out.name_ = where->name;
    return out;
  }
  auto key = key_of(*where, text);
  if (!key) return std::unexpected(key.error());
  // Asking for read-write makes a process that could never wait or post fail here, with EACCES
  // (semget with no mode bits checks nothing).
  int id = sys([&] { return ::semget(*key, 0, 0600); });
  if (id < 0) return fail_errno(errno, "semget", text);
  semid_ds ds{};
  semun arg{.buf = &ds};
  if (sys([&] { return ::semctl(id, 0, IPC_STAT, arg); }) < 0)
    return fail_errno(errno, "semctl(IPC_STAT)", text);
  if (ds.sem_nsems < 1)
    return fail_errno(EINVAL, "semget", text, "the set under this key holds no semaphore");
  semaphore out(kind::sysv, std::move(text));
  out.id_ = id;
  out.undo_ = options.undo;
  return out;
}

result<semaphore> semaphore::open(std::string_view address, unsigned initial,
                                  const semaphore_options& options) {
  // Join, else create; another process may create or remove it between the two: start over, a
  // bounded number of times.
  for (int attempt = 0;; ++attempt) {
    auto joined = join(address, options);
    if (joined || joined.error() != std::errc::no_such_file_or_directory || attempt == 8)
      return joined;
    auto created = create(address, initial, options);
    if (created || created.error() != std::errc::file_exists) return created;
  }
}

result<void> semaphore::remove(std::string_view address) {
  auto where = parse(address);
  if (!where) return std::unexpected(where.error());
  std::string text(address);
  if (!where->sysv) {
    if (sys([&] { return ::sem_unlink(where->name.c_str()); }) < 0)
      return fail_errno(errno, "sem_unlink", text);
    return {};
  }
  auto key = key_of(*where, text);
  if (!key) return std::unexpected(key.error());
  int id = sys([&] { return ::semget(*key, 0, 0); });
  if (id < 0) return fail_errno(errno, "semget", text);
  if (sys([&] { return ::semctl(id, 0, IPC_RMID); }) < 0)
    return fail_errno(errno, "semctl(IPC_RMID)", text);
  return {};
}

result<semaphore> semaphore::in(std::span<std::byte> where, unsigned initial) {
  std::string text = "sem:(unnamed)";
  if (where.size() < footprint || reinterpret_cast<std::uintptr_t>(where.data()) % alignment != 0)
    return fail_errno(
        EINVAL, "sem_init", text,
        "needs " + std::to_string(footprint) + " bytes aligned to " + std::to_string(alignment) +
            ", got " + std::to_string(where.size()) + " at an address " +
            (reinterpret_cast<std::uintptr_t>(where.data()) % alignment != 0 ? "not aligned"
                                                                             : "aligned"));
  auto* s = reinterpret_cast<sem_t*>(where.data());
  // pshared = 1: the semaphore is in memory shared between processes, so its waits use the shared
  // futex ops.
  if (sys([&] { return ::sem_init(s, 1, initial); }) < 0)
    return fail_errno(errno, "sem_init", text);
  semaphore out(kind::posix_unnamed, std::move(text));
  out.sem_ = s;
  return out;
}

result<semaphore> semaphore::attach(std::span<std::byte> where) {
  std::string text = "sem:(unnamed)";
  if (where.size() < footprint || reinterpret_cast<std::uintptr_t>(where.data()) % alignment != 0)
    return fail_errno(EINVAL, "semaphore::attach", text,
                     "needs " + std::to_string(footprint) + " bytes aligned to " +
                         std::to_string(alignment) + ", got " + std::to_string(where.size()));
  semaphore out(kind::posix_unnamed, std::move(text));
  out.sem_ = reinterpret_cast<sem_t*>(where.data());
  return out;
}

result<void> semaphore::wait(deadline until) {
  if (kind_ == kind::sysv) {
    short flags = static_cast<short>(undo_ ? SEM_UNDO : 0);
    if (until.is_never()) {
      sembuf op{.sem_num = 0, .sem_op = -1, .sem_flg = flags};
      if (sys([&] { return ::semop(id_, &op, 1); }) == 0) return {};
      return fail_errno(errno, "semop", text_);
    }
    for (;;) {
      int rc = 0;
      if (until.expired()) {
        sembuf op{.sem_num = 0, .sem_op = -1, .sem_flg = static_cast<short>(flags | IPC_NOWAIT)};
        rc = sys([&] { return ::semop(id_, &op, 1); });
      } else {
        sembuf op{.sem_num = 0, .sem_op = -1, .sem_flg = flags};
        // semtimedop's timeout is relative: it is recomputed on each EINTR retry inside sys(), so
        // a signal never stretches the deadline.
        rc = sys([&] {
          timespec left = relative(until);
          return ::semtimedop(id_, &op, 1, &left);
        });
      }
      if (rc == 0) return {};
      if (errno != EAGAIN) return fail_errno(errno, "semtimedop", text_);
      if (until.expired()) return fail(errc::timed_out, "semaphore::wait", text_);
      // EAGAIN a moment before the deadline (the kernel's timer granularity): wait the rest.
    }
  }
  if (until.is_never()) {
    if (sys([&] { return ::sem_wait(sem_); }) == 0) return {};
    return fail_errno(errno, "sem_wait", text_);
  }
  if (until.expired()) {
    if (sys([&] { return ::sem_trywait(sem_); }) == 0) return {};
    if (errno == EAGAIN) return fail(errc::timed_out, "semaphore::wait", text_);
    return fail_errno(errno, "sem_trywait", text_);
  }
  // An absolute CLOCK_MONOTONIC deadline (the clock of ipcx::deadline): immune to wall-clock
  // changes, unlike sem_timedwait's CLOCK_REALTIME, and the same after an EINTR retry.
  timespec at = monotonic(until);
  if (sys([&] { return ::sem_clockwait(sem_, CLOCK_MONOTONIC, &at); }) == 0) return {};
  if (errno == ETIMEDOUT) return fail(errc::timed_out, "semaphore::wait", text_);
  return fail_errno(errno, "sem_clockwait", text_);
}

result<bool> semaphore::try_wait() {
  if (kind_ == kind::sysv) {
    sembuf op{.sem_num = 0,
              .sem_op = -1,
              .sem_flg = static_cast<short>(IPC_NOWAIT | (undo_ ? SEM_UNDO : 0))};
    if (sys([&] { return ::semop(id_, &op, 1); }) == 0) return true;
    if (errno == EAGAIN) return false;
    return fail_errno(errno, "semop", text_);
  }
  if (sys([&] { return ::sem_trywait(sem_); }) == 0) return true;
  if (errno == EAGAIN) return false;
  return fail_errno(errno, "sem_trywait", text_);
}

result<void> semaphore::post() {
  if (kind_ == kind::sysv) {
    sembuf op{.sem_num = 0, .sem_op = 1, .sem_flg = static_cast<short>(undo_ ? SEM_UNDO : 0)};
    if (sys([&] { return ::semop(id_, &op, 1); }) == 0) return {};
    return fail_errno(errno, "semop", text_);
  }
  if (sys([&] { return ::sem_post(sem_); }) == 0) return {};
  return fail_errno(errno, "sem_post", text_);
}

result<unsigned> semaphore::value() const {
  if (kind_ == kind::sysv) {
    int v = sys([&] { return ::semctl(id_, 0, GETVAL); });
    if (v < 0) return fail_errno(errno, "semctl(GETVAL)", text_);
    return static_cast<unsigned>(v);
  }
  int v = 0;
  if (sys([&] { return ::sem_getvalue(sem_, &v); }) < 0)
    return fail_errno(errno, "sem_getvalue", text_);
  // Linux reports 0, never a negative count of waiters.
  return static_cast<unsigned>(v < 0 ? 0 : v);
}

}  // namespace ipcx
