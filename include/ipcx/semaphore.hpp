// ipcx/semaphore.hpp — counting semaphores shared between processes.
//
// Use one to count free slots or ready items between processes, or as a lock a dead holder gives
// back (System V with SEM_UNDO). Three kinds:
//
// | made by                                  | object                                             |
// |------------------------------------------|----------------------------------------------------|
// | create("sem:/name", initial)             | POSIX named semaphore (sem_open; /dev/shm/sem.name)|
// | create("sysv-sem:KEY", initial)          | System V set of one semaphore; KEY a number or an  |
// |                                          | absolute path (ftok)                               |
// | in(bytes, initial) / attach(bytes)       | POSIX unnamed, process-shared, inside memory you   |
// |                                          | share (a shared_memory segment)                    |
//
//   auto items = ipcx::semaphore::create("sem:/items", 0);     // EEXIST if it exists
//   items->post();
//   // in another process:
//   auto items = ipcx::semaphore::join("sem:/items");         // ENOENT if missing
//   if (auto got = items->wait(100ms); !got && got.error() == ipcx::errc::timed_out) ...
//
// wait() blocks in the plain call (sem_wait / semop) when there is no deadline, uses the kernel's
// timed wait (sem_clockwait on CLOCK_MONOTONIC / semtimedop) for a finite one, and makes one
// non-blocking attempt for an expired one; it fails with errc::timed_out at the deadline. EINTR is
// retried without stretching the deadline.
//
// System V and SEM_UNDO: by default (semaphore_options::undo) every wait and post of a sysv-sem
// is recorded, and the kernel reverts a process's record when it exits, even by SIGKILL: a holder
// that dies releases the lock. That is right for a lock (each process waits, then posts). It is
// wrong for a signalling semaphore where one process posts and another waits: when the poster
// exits the kernel takes its posts back (down to 0). Set undo = false for that use.
//
// Named semaphores are created with options.permissions less the umask (sem_open's own rule; the
// System V kinds take the mode as given) and persist until remove() unless remove_on_close.
// An unnamed semaphore lives as long as its memory; nothing is removed when the object goes.
// Its bytes are shared memory: a peer that scribbles on them gets wrong counts, not a crash (the
// glibc sem_t is a counter and a waiter count, waited on with a futex).
//
// Thread safety: wait, try_wait, post and value may be called from any number of threads at once.
#pragma once

#include <semaphore.h>
#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"

namespace ipcx {

struct semaphore_options {
  mode_t permissions = 0600;     // for a semaphore this call creates
  bool remove_on_close = false;  // the creator removes the named semaphore when it closes
  bool undo = true;              // sysv-sem: SEM_UNDO on wait and post (see above)
};

class semaphore {
 public:
  // Bytes (and alignment) that in() needs.
  static constexpr std::size_t footprint = sizeof(sem_t);
  static constexpr std::size_t alignment = alignof(sem_t);

  // A new named semaphore with value `initial`. EEXIST if it exists; EINVAL/ERANGE if `initial`
  // is above the kind's maximum (SEM_VALUE_MAX, or SEMVMX 32767 for System V).
  [[nodiscard]] static result<semaphore> create(std::string_view address, unsigned initial,
                                                const semaphore_options& options = {});
  // An existing named semaphore. ENOENT if missing; EACCES without read-write permission.
  [[nodiscard]] static result<semaphore> join(std::string_view address,
                                              const semaphore_options& options = {});
  // join, or create with `initial` when missing.
  [[nodiscard]] static result<semaphore> open(std::string_view address, unsigned initial,
                                              const semaphore_options& options = {});
  // Removes a named semaphore. Processes that hold it keep using it (POSIX); a System V semaphore
  // goes at once and its waiters fail with EIDRM. ENOENT if there is none.
  [[nodiscard]] static result<void> remove(std::string_view address);

  // Initialises an unnamed process-shared semaphore in `where` (footprint bytes, aligned), once,
  // by one process, before anyone attaches. EINVAL for a short or misaligned span.
  [[nodiscard]] static result<semaphore> in(std::span<std::byte> where, unsigned initial);
  // Uses the semaphore that in() initialised in `where` (in this or another process's mapping of
  // the same memory). Nothing in an opaque sem_t can be checked: attach trusts that in() ran.
  [[nodiscard]] static result<semaphore> attach(std::span<std::byte> where);

  // Decrements, blocking while the value is 0, until the deadline (errc::timed_out).
  // EIDRM if a System V semaphore is removed while waiting.
  [[nodiscard]] result<void> wait(deadline until = {});
  // Decrements if the value is above 0: true; false without blocking otherwise.
  [[nodiscard]] result<bool> try_wait();
  // Increments, waking one waiter. EOVERFLOW / ERANGE at the kind's maximum.
  [[nodiscard]] result<void> post();
  // The value now (already stale when it returns: for tests and diagnostics).
  [[nodiscard]] result<unsigned> value() const;

  // "sem:/name", "sysv-sem:KEY" as given, or "sem:(unnamed)".
  const std::string& address() const noexcept { return text_; }

  semaphore(semaphore&& other) noexcept;
  semaphore& operator=(semaphore&& other) noexcept;
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  ~semaphore();

 private:
  enum class kind { posix_named, posix_unnamed, sysv };
  semaphore(kind k, std::string text) noexcept : kind_(k), text_(std::move(text)) {}
  void reset() noexcept;

  kind kind_ = kind::posix_unnamed;
  sem_t* sem_ = nullptr;  // posix: from sem_open, or inside the caller's memory
  int id_ = -1;           // sysv: the semid
  std::string text_;      // the address, for errors
  std::string name_;      // posix named: "/name", for remove_on_close
  bool remove_on_close_ = false;
  bool undo_ = true;
};

}  // namespace ipcx
