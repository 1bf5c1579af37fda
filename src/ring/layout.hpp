// The byte layout of an ipcx ring inside a shared segment: the header at offset 0 and the record
// encoding of the data area that follows it. Everything here is read by processes that do not trust
// each other, so this file also holds the pure checks (no memory access) that ring.cpp applies to
// every value it reads back.
//
// Segment:  [ header: header_size bytes, a multiple of 64 ][ data area: capacity bytes ]
// Record:   [ 8-byte record word ][ payload, padded to record_align (8) ]
// A record word of 0 means "nothing published here yet": the data area starts zeroed, a single
// producer zeroes the slot past each record before publishing it, and a multi-producer ring's
// consumer zeroes what it consumed. The word is the record's commit: stored last by its producer
// (release, or seq_cst when the consumer sleeps fenced), loaded (acquire) by the consumer.
//
// A record word packs  bits 0..31: payload size (data) or body size (skip)
//                      bits 32..39: kind (1 data, 2 skip; 0 = nothing written yet)
//                      bits 40..63: the lap stamp, (position >> log2(capacity)) mod 2^24
// The stamp ties a word to the lap it was written in, so a word left over from an earlier lap, or
// a scribbled one, fails validation instead of being read as a fresh record. A skip record fills
// the end of the data area when the next record does not fit there (the record then starts at
// offset 0), and the unused end of a multi-producer reservation that publish() shrank.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ipcx::detail::ring_layout {

inline constexpr std::uint64_t magic = 0x31474e4952584350ULL;  // "PCXRING1", little-endian
inline constexpr std::uint32_t version = 1;
inline constexpr std::size_t cache_line = 64;
inline constexpr std::size_t record_align = 8;
inline constexpr std::size_t record_header = 8;  // the record word
inline constexpr std::size_t producer_slots = 16;
inline constexpr std::uint64_t min_capacity = 256;
inline constexpr std::uint64_t max_capacity = std::uint64_t{1} << 40;
// The size field is 32 bits; keeping a message below 2^31 leaves the arithmetic far from overflow.
inline constexpr std::uint64_t max_message_limit = std::uint64_t{1} << 30;

// header::flags
inline constexpr std::uint32_t flag_multi_producer = 1u << 0;
inline constexpr std::uint32_t flag_eventfd = 1u << 1;
inline constexpr std::uint32_t known_flags = flag_multi_producer | flag_eventfd;

// header::may_sleep: how each side may block in futex_wait, set at attach (fetch_or, never
// cleared). It tells the other side's waker what its publishing store must pay for:
//   fenced:      the sleeper raises its waiters flag and re-checks; the waker's store and flag load
//                are seq_cst (a full fence on x86 per message). Blocking (spin 0) and eventfd
//                sides.
//   membarrier:  the sleeper raises the flag and calls membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED),
//                which makes every running thread of a registered process execute a full barrier;
//                the waker then needs only a compiler barrier between its store and its flag load.
//                Adaptive sides: they sleep rarely, and then pay ~15 µs instead of a fence per
//                message on the other side.
//   neither:     the side never sleeps (spin_forever): no flag to look at.
inline constexpr std::uint32_t consumer_sleeps_fenced = 1u << 0;
inline constexpr std::uint32_t producer_sleeps_fenced = 1u << 1;
inline constexpr std::uint32_t consumer_sleeps_membarrier = 1u << 2;
inline constexpr std::uint32_t producer_sleeps_membarrier = 1u << 3;

// One side's identity: pid in bits 0..21 (pid_max is at most 2^22), the process start time
// (/proc/PID/stat field 22, clock ticks since boot) in bits 22..63. One word, so claiming a slot
// is a single CAS and a reader never sees a pid paired with another process's start time.
inline constexpr unsigned pid_bits = 22;
inline constexpr std::uint64_t pid_mask = (std::uint64_t{1} << pid_bits) - 1;

constexpr std::uint64_t make_owner(std::uint64_t pid, std::uint64_t start_time) noexcept {
  return (start_time << pid_bits) | (pid & pid_mask);
}
constexpr std::uint32_t owner_pid(std::uint64_t owner) noexcept {
  return static_cast<std::uint32_t>(owner & pid_mask);
}
constexpr std::uint64_t owner_start_time(std::uint64_t owner) noexcept { return owner >> pid_bits; }
// The start time as make_owner stores it, for comparison with one read from /proc.
constexpr std::uint64_t truncated_start_time(std::uint64_t start_time) noexcept {
  return (start_time << pid_bits) >> pid_bits;
}

// One side of the ring, on its own cache line so a producer's busy flag (written twice per
// message) never shares a line with anything another process reads on its fast path.
struct alignas(cache_line) peer_slot {
  // Written by the side itself: CAS from 0 or from a dead owner at attach, CAS back to 0 at detach.
  // Read (acquire) by the other side's liveness check.
  std::atomic<std::uint64_t> owner;
  // Multi-producer only: 1 from before the producer's reservation CAS until after its commit.
  // Written by that producer (relaxed store ordered by the acq_rel CAS / release store after the
  // commit); read by the consumer's liveness check to tell a dead producer that holds an
  // uncommitted reservation (which wedges the ring) from one that died between messages.
  std::atomic<std::uint32_t> busy;
};

struct alignas(cache_line) header {
  // --- line 0: written by the creator before `magic` is published (release); immutable after,
  // except may_sleep. Attach copies and validates these once; the ring uses its own copies and
  // re-compares them with the segment whenever it refreshes an index or wakes from a wait.
  std::atomic<std::uint64_t> magic;  // stored last by create (release), loaded (acquire) by attach
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint32_t record_align;
  std::uint32_t flags;
  std::uint64_t capacity;     // bytes in the data area, a power of two
  std::uint64_t max_message;  // largest payload
  std::uint32_t spin;         // the creator's spin budget, the default for attachers
  std::uint32_t max_producers;
  // How each side sleeps (consumer_sleeps_* / producer_sleeps_*): fetch_or by each side at attach;
  // loaded (relaxed) by the other side on every publish/release to pick its store and flag load.
  std::atomic<std::uint32_t> may_sleep;

  // --- line 1: the producer side.
  // head: the end of everything published (single) or reserved (multi), as a byte position that
  // only grows (offset = head mod capacity). Single: stored (release) by the producer after each
  // record's word, read (acquire) only off the fast path: at attach (a new producer starts there),
  // and by the consumer's periodic index checks. Multi: CAS (acq_rel) by producers to reserve;
  // loaded (acquire) by the consumer to bound a record it acquired through its word.
  alignas(cache_line) std::atomic<std::uint64_t> head;
  // The producers' last view of tail, a hint, written only when it changes and validated like any
  // index on every read. Single: relaxed (its one writer is its one reader, and acquired tail
  // itself). Multi: release by the producer that read tail, acquire by the others.
  std::atomic<std::uint64_t> cached_tail;

  // --- line 2: the consumer side.
  // tail: the end of everything consumed. Stored by the consumer after it has read (and, multi,
  // zeroed) the record: release, or seq_cst when a producer sleeps fenced; loaded (acquire, or
  // seq_cst in a sleeper's re-check) by producers before they write into the freed space.
  alignas(cache_line) std::atomic<std::uint64_t> tail;
  // The consumer's last view of head, a hint: relaxed, consumer only, validated on every read.
  std::atomic<std::uint64_t> cached_head;

  // --- line 3: sleeping. Written only around a sleep or a wake-up, so it stays shared (cheap to
  // read) in both caches while data flows.
  // consumer_waiting: raised by the consumer before its last check and futex_wait (seq_cst store,
  // or exchange followed by membarrier); loaded by a producer after its publishing store (seq_cst,
  // or relaxed after a compiler barrier: see may_sleep), which then clears it with exchange and
  // wakes the consumer.
  alignas(cache_line) std::atomic<std::uint32_t> consumer_waiting;
  // The futex the consumer sleeps on: fetch_add(release) by the waking producer, loaded (acquire)
  // by the consumer before it raises consumer_waiting.
  std::atomic<std::uint32_t> data_futex;
  // The same pair for producers waiting for space: raised by any producer, loaded after each
  // tail store and cleared by the consumer.
  std::atomic<std::uint32_t> producers_waiting;
  std::atomic<std::uint32_t> space_futex;

  // --- lines 4..: who is attached.
  peer_slot consumer;
  peer_slot producers[producer_slots];
};

static_assert(std::is_standard_layout_v<header>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "cross-process atomics must be lock-free (address-free)");
static_assert(sizeof(header) % cache_line == 0);
static_assert(alignof(header) == cache_line);

inline constexpr std::size_t header_size = sizeof(header);

// --- record words --------------------------------------------------------------------------------

enum class kind : std::uint8_t { none = 0, data = 1, skip = 2 };

constexpr std::uint64_t align_up(std::uint64_t n) noexcept {
  return (n + (record_align - 1)) & ~std::uint64_t{record_align - 1};
}
// Bytes a record with `payload` bytes occupies, word included.
constexpr std::uint64_t record_size(std::uint64_t payload) noexcept {
  return record_header + align_up(payload);
}
constexpr std::uint32_t lap_stamp(std::uint64_t position, unsigned capacity_log2) noexcept {
  return static_cast<std::uint32_t>((position >> capacity_log2) & 0xffffff);
}
constexpr std::uint64_t make_word(kind k, std::uint64_t size, std::uint32_t stamp) noexcept {
  return (std::uint64_t{stamp} << 40) | (std::uint64_t{static_cast<std::uint8_t>(k)} << 32) |
         (size & 0xffffffff);
}
constexpr kind word_kind(std::uint64_t word) noexcept {
  return static_cast<kind>((word >> 32) & 0xff);
}
constexpr std::uint32_t word_size(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>(word & 0xffffffff);
}
constexpr std::uint32_t word_stamp(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>(word >> 40);
}

// What a record word read at `position` describes, or why it is invalid. Checks everything the
// word alone can be checked against; the caller also checks `length` against head.
struct record_view {
  kind k = kind::none;
  std::uint64_t size = 0;    // payload (data) or body (skip) bytes
  std::uint64_t length = 0;  // the whole record, word included
  const char* problem = nullptr;
};

constexpr record_view decode(std::uint64_t word, std::uint64_t position, std::uint64_t capacity,
                             unsigned capacity_log2, std::uint64_t max_message) noexcept {
  record_view v;
  v.k = word_kind(word);
  v.size = word_size(word);
  if (v.k != kind::data && v.k != kind::skip) {
    v.problem = "record word has an unknown kind";
    return v;
  }
  if (word_stamp(word) != lap_stamp(position, capacity_log2)) {
    v.problem = "record word carries another lap's stamp";
    return v;
  }
  if (v.k == kind::data) {
    if (v.size > max_message) {
      v.problem = "record size exceeds max_message";
      return v;
    }
    v.length = record_size(v.size);
  } else {
    if (v.size % record_align != 0) {
      v.problem = "skip record body is not a multiple of 8 bytes";
      return v;
    }
    v.length = record_header + v.size;
  }
  // offset and length are both below capacity (sizes are 32-bit, capacity is at least 256 and the
  // size check above bounds data records), so the comparison cannot wrap.
  if (v.length > capacity - (position & (capacity - 1))) {
    v.problem = "record runs past the end of the data area";
    return v;
  }
  return v;
}

// Creation parameters that a ring accepts; nullptr when fine, else what is wrong.
constexpr const char* check_geometry(std::uint64_t capacity, std::uint64_t max_message) noexcept {
  if (capacity < min_capacity || capacity > max_capacity || !std::has_single_bit(capacity))
    return "capacity must be a power of two between 256 bytes and 1 TiB";
  if (max_message > max_message_limit) return "max_message must be at most 1 GiB";
  // With the largest record at most half the data area, an empty ring always has room for it
  // either before the end or (after a skip record) at the start, so a producer never waits for
  // space that can never appear.
  if (record_size(max_message) > capacity / 2)
    return "a record of max_message bytes (plus its 8-byte word) must fit in half the capacity";
  return nullptr;
}

// Index relation of a multi-producer ring (and of a single-producer ring seen by its producer):
// tail <= head <= tail + capacity, both multiples of record_align.
constexpr bool indices_valid(std::uint64_t tail, std::uint64_t head,
                             std::uint64_t capacity) noexcept {
  return tail <= head && head - tail <= capacity && tail % record_align == 0 &&
         head % record_align == 0;
}

// Index relation of a single-producer ring seen by anyone but its producer: head is stored just
// after a record's word, so tail may pass it by up to a record and a skip record. Either way the
// two are at most capacity apart.
constexpr bool indices_near(std::uint64_t tail, std::uint64_t head,
                            std::uint64_t capacity) noexcept {
  std::uint64_t distance = head >= tail ? head - tail : tail - head;
  return distance <= capacity && tail % record_align == 0 && head % record_align == 0;
}

}  // namespace ipcx::detail::ring_layout
