#include "shm.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ipcx/ring.hpp"
#include "shm_parts.hpp"

namespace ipcx::bench {
namespace {

// --- the limits ---------------------------------------------------------------------------------

// One atomic word per direction, on its own cache line. It carries the sequence number + 1 (0 is
// "nothing yet") and nothing else: the cost of moving one line between the cores and back.
struct cacheline_pair {
  alignas(line) std::atomic<std::uint64_t> word[2];  // [0] to the responder, [1] to the initiator
  static constexpr std::size_t bytes() { return 2 * line; }
};
struct alignas(line) padded_word {
  std::atomic<std::uint64_t> value;
};

class cacheline_endpoint : public endpoint_base {
 public:
  cacheline_endpoint(std::span<std::byte> area, bool responder)
      : out_(reinterpret_cast<padded_word*>(area.data()) + (responder ? 1 : 0)),
        in_(reinterpret_cast<padded_word*>(area.data()) + (responder ? 0 : 1)) {}
  static std::size_t bytes() { return 2 * sizeof(padded_word); }

  bool send(const std::byte* data, std::size_t size) {
    std::uint64_t seq = get_seq(data, size);
    out_->value.store(seq + 1, std::memory_order_release);
    return true;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    std::uint64_t v;
    while ((v = in_->value.load(std::memory_order_acquire)) == seen_) cpu_relax();
    seen_ = v;
    put_seq(data, size, v - 1);
    return static_cast<ssize_t>(size);
  }

 private:
  padded_word* out_;
  padded_word* in_;
  std::uint64_t seen_ = 0;
};

// A minimal spinning SPSC ring of fixed-size slots (every message of a case has one size), in the
// style of folly's ProducerConsumerQueue: head and tail on their own lines, each side caching the
// other's index and re-reading it only when the cache says full or empty.
struct raw_ring_header {
  alignas(line) std::atomic<std::uint64_t> head;
  alignas(line) std::atomic<std::uint64_t> tail;
};

class raw_ring {
 public:
  static std::size_t slot_bytes(std::size_t size) {
    return round_up(std::max<std::size_t>(size, 8), line);
  }
  static std::size_t slots(std::size_t size) {
    return std::bit_floor(ring_capacity(size) / slot_bytes(size));
  }
  static std::size_t bytes(std::size_t size) {
    return sizeof(raw_ring_header) + slots(size) * slot_bytes(size);
  }

  raw_ring(std::span<std::byte> area, std::size_t size)
      : header_(reinterpret_cast<raw_ring_header*>(area.data())),
        slots_(area.data() + sizeof(raw_ring_header)),
        slot_bytes_(slot_bytes(size)),
        mask_(slots(size) - 1) {}

  void send(const std::byte* data, std::size_t size) {
    while (head_ - tail_cache_ > mask_) {
      tail_cache_ = header_->tail.load(std::memory_order_acquire);
      if (head_ - tail_cache_ > mask_) cpu_relax();
    }
    std::memcpy(slots_ + (head_ & mask_) * slot_bytes_, data, size);
    header_->head.store(++head_, std::memory_order_release);
  }
  void recv(std::byte* data, std::size_t size) {
    while (tail_ == head_cache_) {
      head_cache_ = header_->head.load(std::memory_order_acquire);
      if (tail_ == head_cache_) cpu_relax();
    }
    std::memcpy(data, slots_ + (tail_ & mask_) * slot_bytes_, size);
    header_->tail.store(++tail_, std::memory_order_release);
  }

 private:
  raw_ring_header* header_;
  std::byte* slots_;
  std::size_t slot_bytes_;
  std::uint64_t mask_;
  std::uint64_t head_ = 0;  // producer
  std::uint64_t tail_cache_ = 0;
  std::uint64_t tail_ = 0;  // consumer
  std::uint64_t head_cache_ = 0;
};

class raw_ring_endpoint : public endpoint_base {
 public:
  raw_ring_endpoint(raw_ring* tx, raw_ring* rx) : tx_(tx), rx_(rx) {}
  bool send(const std::byte* data, std::size_t size) {
    tx_->send(data, size);
    return true;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    rx_->recv(data, size);
    return static_cast<ssize_t>(size);
  }

 private:
  raw_ring* tx_;
  raw_ring* rx_;
};

// A raw futex ping-pong: per direction a buffer and a counter word; the sender copies, bumps the
// word and always calls FUTEX_WAKE; the receiver sleeps in FUTEX_WAIT while the word is unchanged.
// One message is outstanding per direction in a ping-pong, so one buffer is enough. Shared (not
// private) futex ops: the word is in a MAP_SHARED region of two processes.
class futex_endpoint : public endpoint_base {
 public:
  static std::size_t slot_bytes(std::size_t size) { return line + round_up(size, line); }
  static std::size_t bytes(std::size_t size) { return 2 * slot_bytes(size); }

  futex_endpoint(std::span<std::byte> area, std::size_t size, bool responder) {
    std::byte* a = area.data();
    std::byte* b = area.data() + slot_bytes(size);
    out_ = responder ? b : a;
    in_ = responder ? a : b;
  }

  bool send(const std::byte* data, std::size_t size) {
    std::memcpy(out_ + line, data, size);
    word(out_).store(++sent_, std::memory_order_release);
    if (::syscall(SYS_futex, &word(out_), FUTEX_WAKE, 1, nullptr, nullptr, 0) < 0) {
      error_ = std::string("futex(FUTEX_WAKE): ") + std::strerror(errno);
      return false;
    }
    return true;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    std::uint32_t v;
    while ((v = word(in_).load(std::memory_order_acquire)) == seen_) {
      if (::syscall(SYS_futex, &word(in_), FUTEX_WAIT, seen_, nullptr, nullptr, 0) < 0 &&
          errno != EAGAIN && errno != EINTR) {
        error_ = std::string("futex(FUTEX_WAIT): ") + std::strerror(errno);
        return -1;
      }
    }
    seen_ = v;
    std::memcpy(data, in_ + line, size);
    return static_cast<ssize_t>(size);
  }

 private:
  static std::atomic<std::uint32_t>& word(std::byte* slot) {
    return *reinterpret_cast<std::atomic<std::uint32_t>*>(slot);
  }
  std::byte* out_ = nullptr;
  std::byte* in_ = nullptr;
  std::uint32_t sent_ = 0;
  std::uint32_t seen_ = 0;
};

int latency_main(session& s) {
  const auto& spec = s.spec();
  const std::size_t size = spec.size;
  std::size_t ring_bytes = ring::region_size(ring_capacity(size));
  std::size_t limit_bytes = spec.limit == "cacheline"  ? cacheline_endpoint::bytes()
                            : spec.limit == "raw-ring" ? 2 * raw_ring::bytes(size)
                            : spec.limit == "futex"    ? futex_endpoint::bytes(size)
                                                       : 0;
  shared_region region(2 * ring_bytes + limit_bytes + 2 * line);
  if (!region) {
    std::string why = std::string("mmap(MAP_SHARED): ") + std::strerror(errno);
    s.unavailable(impl::raw, row_status::failed, why);
    s.unavailable(impl::ipcx, row_status::failed, why);
  }
  if (spec.limit.empty())
    s.unavailable(impl::raw, row_status::not_available, "no limit paired with this row");
  std::span<std::byte> ring_areas[2];
  std::span<std::byte> limit_area;
  if (region) {
    ring_areas[0] = region.take(ring_bytes);
    ring_areas[1] = region.take(ring_bytes);
    limit_area = region.take(limit_bytes);
  }
  bool responder = s.fork_responder();
  ipcx_rings rings;
  if (region) rings = set_up_rings(s, ring_areas, 2);
  std::optional<ring_endpoint> ix;
  if (rings.tx && rings.rx) ix.emplace(&*rings.tx, &*rings.rx);
  ring_endpoint* ipcx_ep = s.usable(impl::ipcx) && ix ? &*ix : nullptr;

  if (spec.limit == "cacheline" && region) {
    cacheline_endpoint raw(limit_area, responder);
    return s.run(&raw, ipcx_ep);
  }
  if (spec.limit == "raw-ring" && region) {
    std::size_t one = raw_ring::bytes(size);
    raw_ring down(limit_area.subspan(0, one), size);
    raw_ring up(limit_area.subspan(one, one), size);
    raw_ring_endpoint raw(responder ? &up : &down, responder ? &down : &up);
    return s.run(&raw, ipcx_ep);
  }
  if (spec.limit == "futex" && region) {
    futex_endpoint raw(limit_area, size, responder);
    return s.run(&raw, ipcx_ep);
  }
  return s.run(static_cast<cacheline_endpoint*>(nullptr), ipcx_ep);
}

int throughput_main(session& s) {
  const auto& spec = s.spec();
  const std::size_t size = spec.size;
  std::size_t ring_bytes = ring::region_size(ring_capacity(size));
  bool with_limit = spec.limit == "raw-ring";
  std::size_t limit_bytes = with_limit ? raw_ring::bytes(size) : 0;
  shared_region region(ring_bytes + limit_bytes + 2 * line);
  stream_control* controls = stream_controls(s);
  if (!region || controls == nullptr) {
    std::string why = std::string("mmap(MAP_SHARED): ") + std::strerror(errno);
    s.unavailable(impl::raw, row_status::failed, why);
    s.unavailable(impl::ipcx, row_status::failed, why);
  }
  if (!with_limit)
    s.unavailable(impl::raw, row_status::not_available, "no limit paired with this row");
  std::span<std::byte> ring_areas[2];
  std::span<std::byte> limit_area;
  if (region) {
    ring_areas[0] = region.take(ring_bytes);
    limit_area = region.take(limit_bytes);
  }
  bool responder = s.fork_responder();
  ipcx_rings rings;
  if (region) rings = set_up_rings(s, ring_areas, 1);
  // The producer has only tx, the consumer only rx: the other pointer is never used.
  ring* tx = rings.tx ? &*rings.tx : nullptr;
  ring* rx = rings.rx ? &*rings.rx : nullptr;
  std::optional<stream_endpoint<ring_endpoint>> ix;
  if (controls != nullptr && (responder ? rx != nullptr : tx != nullptr))
    ix.emplace(&controls[1], tx, rx);
  auto* ipcx_ep = s.usable(impl::ipcx) && ix ? &*ix : nullptr;
  if (with_limit && region && controls != nullptr) {
    raw_ring ringbuf(limit_area, size);
    stream_endpoint<raw_ring_endpoint> raw(&controls[0], &ringbuf, &ringbuf);
    return s.run(&raw, ipcx_ep);
  }
  return s.run(static_cast<stream_endpoint<raw_ring_endpoint>*>(nullptr), ipcx_ep);
}

}  // namespace

ipcx_rings set_up_rings(session& s, std::span<std::byte> areas[2], int count) {
  ipcx_rings out;
  const auto& spec = s.spec();
  std::uint32_t spin = spin_of(spec.mode);
  auto failed = [&](const error& e) { s.unavailable(impl::ipcx, row_status::failed, e.message()); };
  if (!s.is_responder()) {
    bool ok = s.usable(impl::ipcx);
    for (int i = 0; i < count && ok; ++i) {
      ring_options opts{.capacity_bytes = ring_capacity(spec.size),
                        .max_message = std::max<std::size_t>(spec.size, 8),
                        .spin = spin,
                        .name = "bench ring " + std::to_string(i)};
      auto made = ring::create(areas[i], opts, i == 0 ? ring_role::producer : ring_role::consumer);
      if (!made) {
        failed(made.error());
        ok = false;
        break;
      }
      (i == 0 ? out.tx : out.rx).emplace(std::move(*made));
    }
    s.tell_peer(ok ? "rings ok" : "rings none");
    return out;
  }
  auto said = s.hear_peer();
  if (!said || *said != "rings ok") {
    s.unavailable(impl::ipcx, row_status::failed, "");  // the initiator knows why
    return out;
  }
  for (int i = 0; i < count; ++i) {
    auto joined = ring::attach(areas[i], i == 0 ? ring_role::consumer : ring_role::producer,
                               {.spin = spin, .name = "bench ring " + std::to_string(i)});
    if (!joined) {
      failed(joined.error());
      break;
    }
    (i == 0 ? out.rx : out.tx).emplace(std::move(*joined));
  }
  return out;
}

int shm_main(session& s) {
  return s.spec().kind == "throughput" ? throughput_main(s) : latency_main(s);
}

row measure_memcpy(std::size_t block, std::uint64_t duration_ns, int cpu) {
  row r;
  r.kind = "throughput";
  r.mechanism = "memcpy";
  r.impl = "limit";
  r.size = block;
  r.placement = "same-core";  // one core copies
  cpu_set_t old_set, set;
  bool restore = ::sched_getaffinity(0, sizeof old_set, &old_set) == 0;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
  std::vector<std::byte> from(block, std::byte{1});
  std::vector<std::byte> to(block, std::byte{0});
  std::vector<stream_stats> reps;
  // Five slices; the median slice is the figure, as for the other throughput rows.
  for (int rep = 0; rep < 5; ++rep) {
    stream_stats st;
    std::uint64_t cpu0 = process_cpu_ns();
    std::uint64_t start = now_ns();
    std::uint64_t until = start + duration_ns / 5;
    do {
      std::memcpy(to.data(), from.data(), block);
      asm volatile("" : : "r"(to.data()) : "memory");  // the copy must happen
      ++st.messages;
    } while (now_ns() < until);
    st.elapsed_ns = now_ns() - start;
    st.producer_cpu_ns = process_cpu_ns() - cpu0;
    reps.push_back(st);
  }
  if (restore) ::sched_setaffinity(0, sizeof old_set, &old_set);
  aggregate_stream(reps, block, r);
  r.cpu_consumer_ns_per_msg.reset();  // one process: the copier's time is all of it
  r.cpu_producer_ns_per_msg.reset();
  return r;
}

row measure_null_syscall(int cpu) {
  row r;
  r.mechanism = "syscall";
  r.impl = "limit";
  r.mode = "default";
  r.size = 0;
  r.placement = "same-core";
  cpu_set_t old_set, set;
  bool restore = ::sched_getaffinity(0, sizeof old_set, &old_set) == 0;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
  // Eleven slices of 20000 calls: a slice's mean per call is one sample.
  std::vector<std::uint64_t> per_call;
  for (int slice = 0; slice < 11; ++slice) {
    constexpr int calls = 20000;
    std::uint64_t start = now_ns();
    for (int i = 0; i < calls; ++i) (void)::syscall(SYS_getppid);
    per_call.push_back((now_ns() - start) / calls);
  }
  if (restore) ::sched_setaffinity(0, sizeof old_set, &old_set);
  std::vector<rep_stats> reps;
  for (auto ns : per_call) reps.push_back({ns, ns, ns, ns, 1});
  aggregate(reps, r);
  return r;
}

}  // namespace ipcx::bench
