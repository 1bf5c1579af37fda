// ipcx/shared_memory.hpp — a shared-memory segment: bytes that several processes map at once.
//
// Use it when processes should read and write one region directly (the ipcx ring lives in one).
// Three kinds, named like channel addresses:
//
// | address          | object                                                               |
// |------------------|----------------------------------------------------------------------|
// | shm:/name        | POSIX shared memory (shm_open; a file in /dev/shm)                   |
// | sysv-shm:KEY     | System V segment (shmget); KEY a number, or an absolute path (ftok)  |
// | memfd:/socket    | sealed anonymous memory, handed over a Unix socket listening there   |
//
//   auto seg = ipcx::shared_memory::create("shm:/frames", 1 << 20);   // EEXIST if it exists
//   std::memcpy(seg->bytes().data(), "Hello", 5);
//   // in another process:
//   auto seen = ipcx::shared_memory::join("shm:/frames", 5);   // ENOENT if missing
//
// Every call returns ipcx::result; nothing throws. Named segments are created 0600 (exactly
// options.permissions: the umask does not narrow it) with O_EXCL / IPC_EXCL, and persist after
// the creator closes unless options.remove_on_close; shared_memory::remove(address) removes one.
//
// Sizes and SIGBUS: a mapping of a file is only as good as the file's size. Touching a page past
// the end of a POSIX segment is SIGBUS, not an error. So every kind reads the object's size before
// mapping (fstat st_size, IPC_STAT shm_segsz), join maps exactly the size the object has now, and a
// segment smaller than the caller requires (join(address, min_size)) or empty fails with
// errc::corrupt_segment. What this cannot prevent: another process with write access may
// ftruncate a POSIX segment *after* we mapped it, and the next touch of a lost page is SIGBUS.
// ipcx does not install a SIGBUS handler (that belongs to the application). The defences are:
// permissions (0600: only the same user can truncate), memfd seals (F_SEAL_SHRINK | F_SEAL_GROW:
// nobody, not even the creator, can change the size: the only kind immune to this), and System V
// segments, whose size is fixed at creation. The ring built on a segment validates its header and
// every index, so a peer that scribbles on the *contents* gets errc::corrupt_segment; a peer that
// truncates an unsealed segment is out of reach of any check.
//
// memfd hand-over: a memfd has no name. Its creator passes the descriptor over a Unix socket
// (SCM_RIGHTS); the receiver checks who sent it (SO_PEERCRED against a peer_policy), that it is
// sealed against shrinking and growing, and its size, and only then maps it. Two ways:
//   - any connected Unix socket (a socketpair to a child, say): send_memfd / receive_memfd;
//   - "memfd:/path": create() listens on /path (a socket file, 0600), and each serve_one() hands
//     the segment to one joiner the policy allows; join() connects, checks the creator against its
//     own policy and receives. No background thread: the creator calls serve_one when it wants.
//
// Thread safety: a shared_memory object is used by one thread at a time; the bytes are shared by
// everyone who maps them, and their synchronisation is the user's (see semaphore.hpp, ring.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipcx/address.hpp"
#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"

namespace ipcx {

// Which processes may take part in a memfd hand-over, judged by the kernel's record of the peer
// socket's credentials (SO_PEERCRED: the uid and pid at connect/listen time, or of the creator of a
// socketpair). Not a secret: a defence against handing memory to, or mapping memory from, the wrong
// user.
struct peer_policy {
  std::vector<uid_t> uids = {};  // allowed effective uids; empty = only this process's euid
  std::vector<pid_t> pids = {};  // when not empty, the peer's pid must also be one of these

  bool allows(uid_t uid, pid_t pid) const noexcept;
};

struct segment_options {
  mode_t permissions = 0600;     // for named segments (and memfd:/path socket files) it creates
  bool remove_on_close = false;  // the creator removes the named segment when it closes
  peer_policy peers = {};        // memfd: whom the creator serves and whom a joiner accepts
  // memfd:/path join: gives up with errc::timed_out unless the creator hands the segment over by
  // then (it does so in serve_one). Never by default.
  deadline until = {};
};

class shared_memory {
 public:
  // A new segment of `size` bytes, zero-filled. EEXIST if the name exists (for memfd:/path: if a
  // creator is listening there; a socket file nobody listens on is a leftover and is replaced).
  [[nodiscard]] static result<shared_memory> create(std::string_view address, std::size_t size,
                                                    const segment_options& options = {});
  [[nodiscard]] static result<shared_memory> create(const ipcx::address& where, std::size_t size,
                                                    const segment_options& options = {});
  // Maps an existing segment at the size it has now. ENOENT if missing (memfd:/path: ENOENT, or
  // ECONNREFUSED for a socket file nobody listens on); EACCES without read-write permission;
  // errc::corrupt_segment if it holds fewer than `min_size` bytes (or none).
  [[nodiscard]] static result<shared_memory> join(std::string_view address,
                                                  std::size_t min_size = 0,
                                                  const segment_options& options = {});
  [[nodiscard]] static result<shared_memory> join(const ipcx::address& where,
                                                  std::size_t min_size = 0,
                                                  const segment_options& options = {});
  // join(address, size), or create(address, size) when there is none.
  [[nodiscard]] static result<shared_memory> open(std::string_view address, std::size_t size,
                                                  const segment_options& options = {});
  [[nodiscard]] static result<shared_memory> open(const ipcx::address& where, std::size_t size,
                                                  const segment_options& options = {});
  // An anonymous sealed memfd of `size` bytes, to hand over with send_memfd. Its address is
  // "memfd:" (no name).
  [[nodiscard]] static result<shared_memory> create_memfd(std::size_t size);

  // Removes a named segment (shm_unlink, IPC_RMID, or the memfd:/path socket file). Processes that
  // mapped it keep their mapping. ENOENT if there is none.
  [[nodiscard]] static result<void> remove(std::string_view address);
  [[nodiscard]] static result<void> remove(const ipcx::address& where);

  std::span<std::byte> bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return bytes_.size(); }
  // The segment's descriptor (POSIX, memfd), or -1 (System V has none).
  int fd() const noexcept;
  const ipcx::address& address() const noexcept;

  // memfd:/path creator: waits (until the deadline: errc::timed_out) for one joiner and hands it
  // the segment if the policy allows its uid/pid; otherwise tells it no and fails with EPERM naming
  // the joiner's uid and pid. errc::not_supported on any other segment.
  [[nodiscard]] result<void> serve_one(deadline until = {});
  // memfd:/path creator: the listening socket, readable when a joiner waits (for event loops);
  // -1 otherwise.
  int serve_fd() const noexcept;

  shared_memory(shared_memory&&) noexcept;
  shared_memory& operator=(shared_memory&&) noexcept;
  ~shared_memory();

  struct state;  // internal
  explicit shared_memory(std::unique_ptr<state> s) noexcept;

 private:
  std::unique_ptr<state> state_;
  std::span<std::byte> bytes_;
};

// Hands a sealed memfd segment to the process at the other end of a connected Unix socket
// (SCM_RIGHTS, one byte of data). EINVAL unless `segment` is a memfd (only a sealed memfd is safe
// to map on the other side). Blocks until the socket takes it; EPIPE if the peer is gone.
[[nodiscard]] result<void> send_memfd(int unix_socket_fd, const shared_memory& segment);

// Receives a segment sent with send_memfd (or by a memfd:/path creator) and maps it. In order:
// the peer's SO_PEERCRED must pass `policy` (EPERM naming its uid and pid); one descriptor must
// come (EBADMSG if none; extra ones are closed); it must be a memfd sealed with F_SEAL_SHRINK and
// F_SEAL_GROW (EPERM otherwise: an unsealed segment could be shrunk under us); its size is read
// with fstat (errc::corrupt_segment if empty). errc::end_of_stream if the peer closed,
// errc::timed_out at the deadline.
[[nodiscard]] result<shared_memory> receive_memfd(int unix_socket_fd, const peer_policy& policy,
                                                  deadline until = {});

}  // namespace ipcx
