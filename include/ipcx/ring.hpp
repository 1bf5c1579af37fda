// ipcx/ring.hpp — a lock-free ring of variable-size messages inside shared memory.
//
// The ring lives in a memory region that two or more processes map (MAP_SHARED): a POSIX or
// System V segment, a memfd, or an anonymous mapping shared across fork. One process formats it
// with create(); the others attach() to it as a producer or the consumer. Messages keep their
// boundaries and their order (per producer, when there are several); the fast path of send and
// recv touches only memory: no system call while the other side is awake.
//
//   auto seg = ...;                                    // any MAP_SHARED region, e.g. shared_memory
//   auto rx = ipcx::ring::create(seg.bytes(), {.capacity_bytes = 1 << 20, .max_message = 4096});
//   // in the other process, mapping the same segment:
//   auto tx = ipcx::ring::attach(seg.bytes(), ipcx::ring_role::producer);
//   tx->send(bytes);                                   // copies in; waits while the ring is full
//   auto n = rx->recv(buffer, 100ms);                  // copies out; errc::timed_out when empty
//   auto out = tx->borrow(1500);                       // zero-copy: fill *out in place, then
//   tx->publish();
//   auto in = rx->peek();                              // zero-copy: read *in in place, then
//   rx->release();
//
// Design:
//   - One header at offset 0 of the region, then a data area of `capacity` bytes (a power of two).
//     head and tail are byte positions that only grow (the offset is position mod capacity): the
//     producer side owns head, the consumer owns tail, each on its own cache line.
//   - A record is an 8-byte word (payload size, kind, lap stamp) and the payload padded to 8 bytes.
//     A record never wraps: when it does not fit before the end of the data area, a skip record
//     fills the end and the record starts at offset 0. A record may take at most half the
//     capacity, so an empty ring always has room for the largest one.
//   - The record word is the commit: the consumer polls the word at its position, 0 meaning
//     "nothing yet", so a message and its "it is there" signal arrive in the same cache lines and
//     the consumer never reads head on its fast path. Single producer (ring_producers::single): the
//     producer writes the payload, zeroes the word slot just past the record (stale bytes of an
//     earlier lap must not pass for the next record), then stores the word, then head. Multi-
//     producer (ring_producers::multi): producers reserve space with a CAS on head and store
//     their record's word last; records are read in reservation order, so the consumer waits at
//     an uncommitted one. Producers fill adjacent reservations at the same time, so none may zero
//     past its own record: instead the consumer zeroes each record it consumed before it moves
//     tail.
//   - The producer keeps a cached copy of tail on its own line (as in folly's
//     ProducerConsumerQueue and moodycamel's ReaderWriterQueue) and reads the consumer's line only
//     when the cache says "full"; the consumer's cached copy of head serves the multi-producer
//     check that a record lies inside what was reserved, and the slow-path index checks.
//   - Waiting is adaptive: spin `spin` rounds of the pause instruction (about 20-35 ns each on the
//     machines ipcx is measured on), then set the side's waiters flag and sleep on a futex word in
//     the segment. The other side makes the futex_wake system call only when the flag is set, so
//     while both sides are awake nothing enters the kernel. spin = 0 blocks at once; spin =
//     ring::spin_forever never sleeps. How each side sleeps is recorded in the header, so the
//     other side pays only for what is needed (see "Memory ordering").
//   - A sleeping side checks that the other side is alive at least every 100 ms when it waits
//     with a deadline (a timed futex wait), and every 250-500 ms when it waits without one: then
//     it sleeps untimed, because arming a timer per sleep costs ~10 % of a same-core round trip on
//     a VM, and one thread per process (started at the first such sleep, gone after two idle
//     seconds) wakes the registered sleepers every 250 ms for the check. Each side records its pid
//     and process start time in the header; the check opens a pidfd (start time compared, so a
//     reused pid is not mistaken for the peer) and polls it. A peer that died gives
//     errc::peer_dead within a second; messages it published before dying are still delivered
//     first. A side that detaches normally clears its record: the other side then simply waits
//     (the ring persists and another peer may attach), as a reader of a named queue would. A new
//     producer or consumer may take the place of a dead one. Pids are compared within one pid
//     namespace: both sides must see each other's pids.
//   - The segment is untrusted: attach validates magic, version, layout sizes and capacity against
//     the region, and every index or record word read from it is checked on every use: record
//     kind, lap stamp, size <= max_message, within the data area (and, multi-producer, below
//     head); tail and head within capacity of each other. A violation is errc::corrupt_segment,
//     never an out-of-bounds access, a crash or an endless loop: spins are bounded by the
//     deadline and the peer checks, skip records advance by at least 8 bytes and stop at a zero
//     word or a wrong lap stamp. The header's fixed fields are copied at attach and compared with
//     the segment again on every slow path (a refreshed index, every 256 pauses of a wait, every
//     wake-up), so a scribbled header or index is noticed during operation too, though not by a
//     fast path that finds its next record or its room without looking at the other side.
//   - eventfd: the segment cannot hold a descriptor. With ring_options::eventfd the creator makes
//     an eventfd (event_fd()); a producer writes it whenever it wakes the consumer, and the
//     consumer's wait_fd() polls readable when messages may be waiting. try_recv() on an empty
//     ring arms it (sets the consumer's waiters flag), so an event loop polls wait_fd() and calls
//     try_recv() until it returns nothing. Every side of an eventfd ring needs the descriptor: hand
//     it over with the segment (inherited across fork, spawn_options::inherit or SCM_RIGHTS beside
//     the memfd) and pass it to attach(); attach() refuses an eventfd ring without it, as an
//     unsignalled consumer would wait forever.
//
// Memory ordering:
//   Publishing: the producer writes the payload (plain stores), then stores the record word with
//   release; the consumer loads the word with acquire, so a non-zero word means a complete record.
//   A single producer's zeroing of the next word slot is a relaxed store sequenced before that
//   release; after a wrap, the record at offset 0 is stored before the skip record's word (release)
//   that leads to it. Freeing: the consumer copies out (multi: zeroes the record), then stores
//   tail with release; a producer loads tail with acquire before it writes into the freed bytes.
//   A multi-producer's reservation CAS on head is acq_rel, so a consumer that acquires a record
//   word also sees head past that record.
//   Sleeping is a Dekker handshake: the sleeper raises its waiters flag and then re-checks the
//   other side's word or index; the waker stores its word or index and then loads the flag. One of
//   them must see the other's store, which needs a full barrier between each side's store and its
//   load. A "fenced" sleeper (spin 0, or an eventfd consumer) stores the flag with seq_cst, and
//   its waker's store and flag load are seq_cst too (an xchg per message on x86). A "membarrier"
//   sleeper (adaptive spin) raises the flag and calls membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED),
//   which makes every running thread of every registered process (each side registers at attach)
//   pass a full barrier: its waker then needs only a compiler barrier, so the fast path carries no
//   fence and the rare sleep pays ~15 µs instead. A side that never sleeps (spin_forever) costs
//   its waker nothing: the flag is not even read. The futex word is loaded before the flag is
//   raised and bumped (release) before futex_wake, so a wake-up between the re-check and
//   futex_wait makes futex_wait return at once. Each atomic in src/ring/layout.hpp names its
//   writer and the load it pairs with.
//
// Lifetime: a ring object points into the region; keep the region mapped until the ring is
// destroyed (its destructor writes to the header).
//
// Thread and signal safety: one ring object is used by one thread at a time; several producers
// each attach their own object (in one process or many). Nothing here is async-signal-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"
#include "ipcx/unique_fd.hpp"

namespace ipcx {

namespace detail::ring_layout {
struct header;
}
namespace detail {
struct ring_peers;
class periodic_wake;
}

enum class ring_role : std::uint8_t { producer, consumer };
enum class ring_producers : std::uint8_t { single, multi };

// About 50 µs of pause instructions (20-35 ns each) on the 2-vCPU VM ipcx is measured on: roughly
// what one futex sleep and wake-up costs there, so spinning longer buys little.
inline constexpr std::uint32_t ring_default_spin = 2048;

struct ring_options {
  // Bytes for messages, a power of two >= 256; 0 = the largest power of two that fits the region.
  std::size_t capacity_bytes = 0;
  // Largest payload; a record of it (8 bytes more, padded to 8) must fit in half the capacity.
  std::size_t max_message = 4096;
  ring_producers producers = ring_producers::single;
  // Pause rounds before sleeping: 0 = always sleep at once, ring::spin_forever = never sleep. Also
  // the default for sides that attach later.
  std::uint32_t spin = ring_default_spin;
  // Make an eventfd so the consumer has a wait_fd() (see "eventfd" above).
  bool eventfd = false;
  // Names the ring in error messages, e.g. its segment's address.
  std::string name = "ring";
};

struct ring_attach_options {
  // Default: the spin budget the creator chose.
  std::optional<std::uint32_t> spin = std::nullopt;
  // The creator's eventfd, required when the ring has one; duplicated, the caller keeps its copy.
  int eventfd = -1;
  std::string name = "ring";
};

class ring {
 public:
  static constexpr std::uint32_t spin_forever = 0xffffffff;

  // Bytes of region a ring with `capacity_bytes` of data needs (header included).
  static std::size_t region_size(std::size_t capacity_bytes) noexcept;

  // Formats `region` (which must be at least 64-byte aligned, as every mapping is) and attaches to
  // it in `role`. Errors: EINVAL for a bad option or a region too small or misaligned (detail
  // says which), eventfd(2) failures. Overwrites whatever the region held: only for a new segment.
  [[nodiscard]] static result<ring> create(std::span<std::byte> region, const ring_options& options,
                                           ring_role role = ring_role::consumer);
  // Validates the header in `region` and attaches in `role`. errc::corrupt_segment when the header
  // is not a valid ring for this region (detail says what failed; a zero magic usually means the
  // creator has not finished formatting it); EBUSY when the role is taken by a live process (the
  // consumer, the single producer, or all producer slots); EINVAL for an eventfd ring without
  // options.eventfd.
  [[nodiscard]] static result<ring> attach(std::span<std::byte> region, ring_role role,
                                           const ring_attach_options& options = {});

  ring(ring&& other) noexcept;
  ring& operator=(ring&& other) noexcept;
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  // Detaches: clears this side's pid from the header. A borrowed record that was not published is
  // abandoned (single producer: never seen; multi: published as an empty skip record).
  ~ring();

  // --- producer ----------------------------------------------------------------------------------
  // Copies `message` in; waits while the ring is full. errc::message_too_large when it is larger
  // than max_message(); errc::timed_out, errc::peer_dead (the consumer died while this waited),
  // errc::corrupt_segment.
  [[nodiscard]] result<void> send(std::span<const std::byte> message, deadline until = {});
  // False when the ring has no room for it now.
  [[nodiscard]] result<bool> try_send(std::span<const std::byte> message);
  // Reserves `size` bytes in the ring and returns them to be filled in place; waits for room as
  // send does. Publish them with publish() before the next borrow or send.
  [[nodiscard]] result<std::span<std::byte>> borrow(std::size_t size, deadline until = {});
  // Makes the borrowed record visible to the consumer, all of it or its first `used` bytes.
  // EINVAL when nothing is borrowed or `used` is larger than the borrowed size.
  [[nodiscard]] result<void> publish();
  [[nodiscard]] result<void> publish(std::size_t used);

  // --- consumer ----------------------------------------------------------------------------------
  // Copies the next message into `buffer` and returns its size; waits while the ring is empty.
  // errc::message_too_large (the message stays for the next call) when `buffer` is too small;
  // errc::timed_out, errc::peer_dead (every producer died, or one died holding an unpublished
  // record that blocks the ones after it), errc::corrupt_segment.
  [[nodiscard]] result<std::size_t> recv(std::span<std::byte> buffer, deadline until = {});
  // std::nullopt when no message is waiting (and, on an eventfd ring, arms wait_fd()).
  [[nodiscard]] result<std::optional<std::size_t>> try_recv(std::span<std::byte> buffer);
  // The next message in place, without copying; waits as recv does. It stays valid, and peek()
  // returns it again, until release(). The producer may be a scribbling peer: the bytes can change
  // under the reader (its size cannot), so validate what you read before trusting it.
  [[nodiscard]] result<std::span<const std::byte>> peek(deadline until = {});
  // Consumes the message peek() returned. EINVAL when nothing is peeked.
  [[nodiscard]] result<void> release();

  // --- both --------------------------------------------------------------------------------------
  // errc::peer_dead if the other side died, errc::corrupt_segment if the header was scribbled,
  // else success. Blocking calls do this on their own; for event loops that only try_recv.
  [[nodiscard]] result<void> check_peer();
  // The consumer's eventfd (readable when messages may be waiting), else -1 (producers too).
  int wait_fd() const noexcept;
  // This side's copy of the ring's eventfd, to hand over to a peer; -1 when there is none.
  int event_fd() const noexcept { return eventfd_.get(); }

  ring_role role() const noexcept { return role_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t max_message() const noexcept { return max_message_; }
  bool multi_producer() const noexcept { return multi_; }
  std::uint32_t spin() const noexcept { return spin_; }

 private:
  ring() = default;
  template <typename Ready>
  result<void> wait(Ready&& ready, deadline until, const char* operation);
  result<bool> space_ready(std::uint64_t length, const char* operation);
  result<bool> data_ready(const char* operation);
  result<std::span<std::byte>> reserve(std::size_t size, deadline until, const char* operation);
  result<std::span<std::byte>> reserve_multi(std::size_t size, deadline until,
                                             const char* operation);
  result<std::optional<std::span<const std::byte>>> next_record(const char* operation);
  result<std::optional<std::size_t>> copy_out(std::span<std::byte> buffer, const char* operation);
  result<void> commit(std::uint64_t payload);
  void commit_single(std::uint64_t payload) noexcept;
  result<void> send_slow(std::span<const std::byte> message, deadline until);
  std::optional<std::size_t> recv_fast(std::span<std::byte> buffer);
  result<std::size_t> recv_slow(std::span<std::byte> buffer, deadline until);
  void consume();
  void wake_consumer() noexcept;
  void wake_producers() noexcept;
  result<void> check_header(const char* operation) const;
  result<void> check_indices(const char* operation);
  result<void> check_peer_for(const char* operation);
  std::unexpected<error> corrupt(const char* operation, std::string detail) const;
  void detach() noexcept;

  detail::ring_layout::header* header_ = nullptr;
  std::byte* data_ = nullptr;
  // Validated copies of the header's fixed fields: the ring never re-reads them to compute an
  // address.
  std::uint64_t capacity_ = 0;
  std::uint64_t max_message_ = 0;
  std::uint32_t flags_ = 0;
  unsigned capacity_log2_ = 0;
  std::uint32_t spin_ = 0;
  ring_role role_ = ring_role::consumer;
  bool multi_ = false;
  bool membarrier_ = false;  // this process is registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED
  enum class sleep_mode : std::uint8_t { never, fenced, membarrier };
  sleep_mode sleep_ = sleep_mode::fenced;  // how this side sleeps (see src/ring/layout.hpp)
  int slot_ = -1;                          // this producer's peer slot (the consumer has its own)
  std::uint64_t owner_ = 0;                // this side's pid + start time as recorded in its slot
  // Single producer: head. Consumer: tail. Both are authoritative here (this side is their only
  // writer), so a peer scribbling them in the segment cannot move this side's position.
  std::uint64_t position_ = 0;
  // borrow(): where the record starts and how long the reservation is; peek(): the record length.
  std::uint64_t pending_position_ = 0;
  std::uint64_t pending_length_ = 0;
  std::uint64_t pending_size_ = 0;
  bool pending_ = false;
  unique_fd eventfd_;
  std::unique_ptr<detail::ring_peers> peers_;  // pidfds of the other side, opened when needed
  // Registers this side's futex word with the process's patrol from its first untimed sleep on.
  std::unique_ptr<detail::periodic_wake> patrol_;
  std::string name_;
};

}  // namespace ipcx
