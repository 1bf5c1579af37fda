// The ring: formatting, attaching, producing, consuming and waiting. The design and the memory
// ordering are described in include/ipcx/ring.hpp, the layout in src/ring/layout.hpp.
#include "ipcx/ring.hpp"

#include <fcntl.h>
#include <linux/membarrier.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <thread>

#include "core/syscall.hpp"
#include "ring/layout.hpp"
#include "sync/futex.hpp"
#include "sync/periodic_wake.hpp"

namespace ipcx {
namespace L = detail::ring_layout;

namespace detail {

// What this side last learned about one slot of the other side.
struct peer_watch {
  std::uint64_t owner = 0;  // the owner word the pidfd belongs to
  unique_fd pidfd;
  bool dead = false;
};

struct ring_peers {
  // [0] the consumer, [1 + i] producer slot i.
  std::array<peer_watch, 1 + L::producer_slots> watch;
};

}  // namespace detail

namespace {

using namespace std::chrono_literals;
using clock = deadline::clock;

// How often a blocked side looks at its peer: well inside the one second the contract allows.
constexpr auto peer_check_period = 100ms;
// A multi-producer reads tail and head one after the other while others move them; a pair that
// breaks tail <= head <= tail + capacity is re-read this many times before it counts as corrupt.
constexpr int index_rereads = 64;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::this_thread::yield();
#endif
}

// Fixed header fields are plain integers that a scribbling peer may write at any time; reading
// them with an atomic builtin keeps such a race defined (and visible to ThreadSanitizer).
template <typename T>
T load_field(const T& field) noexcept {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}

std::atomic_ref<std::uint64_t> word_at(std::byte* data, std::uint64_t offset) noexcept {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(data + offset));
}

// A publishing store: seq_cst when the other side sleeps "fenced" (the Dekker handshake with its
// waiters flag), else release. Two constant orders on purpose: g++ compiles a store whose order is
// only known at run time as seq_cst, an xchg on x86.
template <typename Atomic, typename T>
inline void publish_store(Atomic&& target, T value, bool fenced) noexcept {
  if (fenced)
    target.store(value, std::memory_order_seq_cst);
  else
    target.store(value, std::memory_order_release);
}

// After a publishing store: is the other side's waiters flag raised? Fenced: a seq_cst load (the
// store before it was seq_cst too). Membarrier: a compiler barrier keeps the load after the store
// in program order, and the sleeper's membarrier() supplies the CPU barrier when it matters.
inline bool flag_raised(const std::atomic<std::uint32_t>& flag, bool fenced) noexcept {
  if (fenced) return flag.load(std::memory_order_seq_cst) != 0;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return flag.load(std::memory_order_relaxed) != 0;
}

// Registers this process for MEMBARRIER_CMD_GLOBAL_EXPEDITED (idempotent; needed again after
// fork, which starts a new registration state). False when the kernel refuses.
bool register_membarrier() noexcept {
  return detail::sys([] {
           return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0);
         }) == 0;
}

void membarrier_global() noexcept {
  // Fails only if unsupported, which register_membarrier() ruled out at attach; a failure would
  // cost at most one missed wake-up, caught by the next 100 ms peer check.
  (void)detail::sys(
      [] { return ::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0); });
}

std::unexpected<error> invalid(const char* operation, const std::string& object,
                               std::string detail) {
  return std::unexpected(error(std::make_error_code(std::errc::invalid_argument), operation, object,
                               std::move(detail)));
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

struct proc_stat {
  char state = '?';
  std::uint64_t start_time = 0;  // field 22: clock ticks after boot
};

// /proc/PID/stat (PID 0 = self). Nothing when the process does not exist (or /proc cannot say).
std::optional<proc_stat> read_proc_stat(pid_t pid) {
  std::string path = pid == 0 ? "/proc/self/stat" : "/proc/" + std::to_string(pid) + "/stat";
  unique_fd fd(detail::sys([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }));
  if (!fd) return std::nullopt;
  char text[1024];
  ssize_t n = detail::sys([&] { return ::read(fd.get(), text, sizeof text - 1); });
  if (n <= 0) return std::nullopt;
  text[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: fields are counted from the last
  // ')'. After it come field 3 (state) ... field 22 (starttime), the 20th.
  char* p = std::strrchr(text, ')');
  if (p == nullptr) return std::nullopt;
  ++p;
  proc_stat out;
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return std::nullopt;
    if (field == 3) out.state = *p;
    if (field == 22) {
      char* end = nullptr;
      out.start_time = std::strtoull(p, &end, 10);
      if (end == p) return std::nullopt;
    }
    while (*p != ' ' && *p != '\0') ++p;
  }
  return out;
}

result<std::uint64_t> self_owner() {
  auto stat = read_proc_stat(0);
  if (!stat) return fail_errno(errno != 0 ? errno : EIO, "read", "/proc/self/stat");
  return L::make_owner(static_cast<std::uint64_t>(::getpid()), stat->start_time);
}

enum class liveness { none, alive, dead };

// Whether the process an owner word names is still running. The first look opens a pidfd and
// compares the start time in /proc (so a reused pid is not taken for the peer); later looks only
// poll the pidfd, which becomes readable when the process exits (zombies included).
liveness look_at(detail::peer_watch& watch, std::uint64_t owner) {
  if (owner == 0) return liveness::none;
  if (watch.owner == owner) {
    if (watch.dead) return liveness::dead;
    if (watch.pidfd) {
      pollfd p{.fd = watch.pidfd.get(), .events = POLLIN, .revents = 0};
      int rc = detail::sys([&] { return ::poll(&p, 1, 0); });
      if (rc > 0) watch.dead = true;
      return watch.dead ? liveness::dead : liveness::alive;
    }
  }
  watch.owner = owner;
  watch.pidfd.reset();
  watch.dead = false;
  auto pid = static_cast<pid_t>(L::owner_pid(owner));
  if (pid <= 0) {  // no process has pid 0: a scribbled word names nobody alive
    watch.dead = true;
    return liveness::dead;
  }
  // pidfd_open first, /proc second: if the start time still matches after the pidfd exists, the
  // pidfd is the recorded process (a process started later could not have recorded that word).
  // pidfd_open is called through syscall() because glibc gained its wrapper only in 2.36.
  int fd = static_cast<int>(
      detail::sys([&] { return ::syscall(SYS_pidfd_open, pid, 0); }));  // always close-on-exec
  if (fd < 0 && errno == ESRCH) {
    watch.dead = true;
    return liveness::dead;
  }
  // Other failures (ENOSYS on old kernels, EMFILE) leave no pidfd: the next look repeats the
  // /proc check, which needs no descriptor.
  if (fd >= 0) watch.pidfd.reset(fd);
  auto stat = read_proc_stat(pid);
  if (!stat || L::truncated_start_time(stat->start_time) != L::owner_start_time(owner) ||
      stat->state == 'Z' || stat->state == 'X') {
    watch.dead = true;
    return liveness::dead;
  }
  if (!watch.pidfd) watch.owner = 0;  // look again from scratch next time
  return liveness::alive;
}

// Takes `slot` for `owner` if it is free or its owner is dead. A multi-producer slot whose dead
// owner still holds a reservation is left alone: it is the evidence the consumer needs to report
// the wedged ring. Returns the previous live owner's pid on refusal.
std::optional<std::uint32_t> claim(L::peer_slot& slot, std::uint64_t owner, bool keep_busy_dead) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::uint64_t current = slot.owner.load(std::memory_order_acquire);
    if (current != 0) {
      detail::peer_watch watch;
      if (look_at(watch, current) != liveness::dead) return L::owner_pid(current);
      if (keep_busy_dead && slot.busy.load(std::memory_order_acquire) != 0)
        return L::owner_pid(current);
    }
    if (slot.owner.compare_exchange_strong(current, owner, std::memory_order_acq_rel)) {
      slot.busy.store(0, std::memory_order_relaxed);
      return std::nullopt;
    }
  }
  return L::owner_pid(slot.owner.load(std::memory_order_relaxed));
}

}  // namespace

// --- formatting and attaching --------------------------------------------------------------------

std::size_t ring::region_size(std::size_t capacity_bytes) noexcept {
  return L::header_size + capacity_bytes;
}

result<ring> ring::create(std::span<std::byte> region, const ring_options& options,
                          ring_role role) {
  const char* op = "ring::create";
  if (reinterpret_cast<std::uintptr_t>(region.data()) % L::cache_line != 0)
    return invalid(op, options.name, "the region must be 64-byte aligned");
  if (region.size() < L::header_size + L::min_capacity)
    return invalid(op, options.name,
                   "a region of " + std::to_string(region.size()) +
                       " bytes cannot hold a ring (at least " +
                       std::to_string(L::header_size + L::min_capacity) + ")");
  std::uint64_t capacity = options.capacity_bytes;
  if (capacity == 0)
    capacity =
        std::bit_floor(std::min<std::uint64_t>(region.size() - L::header_size, L::max_capacity));
  if (const char* problem = L::check_geometry(capacity, options.max_message))
    return invalid(op, options.name,
                   std::string(problem) + " (capacity " + std::to_string(capacity) +
                       ", max_message " + std::to_string(options.max_message) + ")");
  if (capacity > region.size() - L::header_size)
    return invalid(op, options.name,
                   "capacity " + std::to_string(capacity) + " needs a region of " +
                       std::to_string(region_size(capacity)) + " bytes, this one has " +
                       std::to_string(region.size()));
  unique_fd event;
  if (options.eventfd) {
    event.reset(detail::sys([] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));
    if (!event) return fail_errno(errno, "eventfd", options.name);
  }

  // A fresh segment: nobody else may use it until magic is published below.
  auto* h = ::new (region.data()) L::header{};
  h->version = L::version;
  h->header_size = static_cast<std::uint32_t>(L::header_size);
  h->record_align = static_cast<std::uint32_t>(L::record_align);
  h->flags = (options.producers == ring_producers::multi ? L::flag_multi_producer : 0u) |
             (options.eventfd ? L::flag_eventfd : 0u);
  h->capacity = capacity;
  h->max_message = options.max_message;
  h->spin = options.spin;
  h->max_producers = static_cast<std::uint32_t>(L::producer_slots);
  // The consumer reads a zero record word as "nothing yet": the data area starts zeroed.
  std::memset(region.data() + L::header_size, 0, capacity);
  h->magic.store(L::magic, std::memory_order_release);

  return attach(region, role, {.spin = options.spin, .eventfd = event.get(), .name = options.name});
}

result<ring> ring::attach(std::span<std::byte> region, ring_role role,
                          const ring_attach_options& options) {
  const char* op = "ring::attach";
  const std::string& name = options.name;
  if (reinterpret_cast<std::uintptr_t>(region.data()) % L::cache_line != 0)
    return invalid(op, name, "the region must be 64-byte aligned");
  auto bad = [&](std::string detail) {
    return std::unexpected(error(errc::corrupt_segment, op, name, std::move(detail)));
  };
  if (region.size() < L::header_size)
    return bad("a region of " + std::to_string(region.size()) +
               " bytes is smaller than a ring header (" + std::to_string(L::header_size) + ")");
  auto* h = reinterpret_cast<L::header*>(region.data());
  std::uint64_t magic = h->magic.load(std::memory_order_acquire);
  if (magic != L::magic)
    return bad("magic " + hex(magic) + ", expected " + hex(L::magic) +
               (magic == 0 ? " (not formatted yet?)" : " (not an ipcx ring)"));
  if (auto v = load_field(h->version); v != L::version)
    return bad("version " + std::to_string(v) + ", this build reads version " +
               std::to_string(L::version));
  if (auto v = load_field(h->header_size); v != L::header_size)
    return bad("header size " + std::to_string(v) + ", expected " + std::to_string(L::header_size));
  if (auto v = load_field(h->record_align); v != L::record_align)
    return bad("record alignment " + std::to_string(v) + ", expected " +
               std::to_string(L::record_align));
  if (auto v = load_field(h->max_producers); v != L::producer_slots)
    return bad("max_producers " + std::to_string(v) + ", expected " +
               std::to_string(L::producer_slots));
  std::uint32_t flags = load_field(h->flags);
  if ((flags & ~L::known_flags) != 0) return bad("unknown flags " + hex(flags));
  std::uint64_t capacity = load_field(h->capacity);
  std::uint64_t max_message = load_field(h->max_message);
  if (const char* problem = L::check_geometry(capacity, max_message))
    return bad(std::string(problem) + " (capacity " + std::to_string(capacity) + ", max_message " +
               std::to_string(max_message) + ")");
  if (capacity > region.size() - L::header_size)
    return bad("capacity " + std::to_string(capacity) + " does not fit the " +
               std::to_string(region.size()) + "-byte region");
  std::uint64_t tail = h->tail.load(std::memory_order_acquire);
  std::uint64_t head = h->head.load(std::memory_order_acquire);
  // A single producer stores head just after a record's word, so the consumer may be a record
  // (and a skip record) past it; producers of a multi ring reserve head before writing.
  if ((flags & L::flag_multi_producer) != 0 ? !L::indices_valid(tail, head, capacity)
                                            : !L::indices_near(tail, head, capacity))
    return bad("head " + std::to_string(head) + " and tail " + std::to_string(tail) +
               " do not fit capacity " + std::to_string(capacity));
  if ((flags & L::flag_eventfd) != 0 && options.eventfd < 0)
    return invalid(op, name,
                   "the ring signals an eventfd: pass the creator's (handed over with the "
                   "segment) in ring_attach_options::eventfd");

  ring r;
  r.header_ = h;
  r.data_ = region.data() + L::header_size;
  r.capacity_ = capacity;
  r.max_message_ = max_message;
  r.flags_ = flags;
  r.capacity_log2_ = static_cast<unsigned>(std::countr_zero(capacity));
  r.spin_ = options.spin.value_or(load_field(h->spin));
  r.role_ = role;
  r.multi_ = (flags & L::flag_multi_producer) != 0;
  r.name_ = name;
  r.peers_ = std::make_unique<detail::ring_peers>();
  if (options.eventfd >= 0) {
    r.eventfd_.reset(detail::sys([&] { return ::fcntl(options.eventfd, F_DUPFD_CLOEXEC, 0); }));
    if (!r.eventfd_) return fail_errno(errno, "fcntl(F_DUPFD_CLOEXEC)", name + " eventfd");
  }

  auto owner = self_owner();
  if (!owner) return std::unexpected(owner.error());
  // Set before claiming: if a later check fails, the destructor of `r` gives the slot back.
  r.owner_ = *owner;
  auto busy = [&](std::string detail) {
    return std::unexpected(error(std::make_error_code(std::errc::device_or_resource_busy), op, name,
                                 std::move(detail)));
  };
  if (role == ring_role::consumer) {
    if (auto other = claim(h->consumer, *owner, false)) {
      r.owner_ = 0;  // not ours to clear
      return busy("the ring already has a consumer (pid " + std::to_string(*other) + ")");
    }
    r.position_ = tail;
  } else if (!r.multi_) {
    if (auto other = claim(h->producers[0], *owner, false))
      return busy("this single-producer ring already has a producer (pid " +
                  std::to_string(*other) + ")");
    r.slot_ = 0;
    r.position_ = head;
    // A producer that died between publishing a record's word and storing head left complete
    // records past head (at most a skip record and a record): step over them. The word at a
    // producer's position is otherwise 0, cleared when the record before it was published.
    std::byte* data = region.data() + L::header_size;
    for (int step = 0; step < 2; ++step) {
      std::uint64_t word =
          word_at(data, r.position_ & (capacity - 1)).load(std::memory_order_acquire);
      if (word == 0) break;
      auto view = L::decode(word, r.position_, capacity, r.capacity_log2_, max_message);
      if (view.problem != nullptr)
        return bad(std::string(view.problem) + " at head " + std::to_string(r.position_));
      r.position_ += view.length;
    }
    if (!L::indices_valid(tail, r.position_, capacity))
      return bad("head " + std::to_string(r.position_) + " and tail " + std::to_string(tail) +
                 " do not fit capacity " + std::to_string(capacity));
    // The hint a previous producer left was acquired by that process, not this one: start from
    // the tail this attach acquired.
    h->cached_tail.store(tail, std::memory_order_relaxed);
  } else {
    for (std::size_t i = 0; i < L::producer_slots && r.slot_ < 0; ++i)
      if (!claim(h->producers[i], *owner, true)) r.slot_ = static_cast<int>(i);
    if (r.slot_ < 0)
      return busy("all " + std::to_string(L::producer_slots) +
                  " producer slots are held by live processes");
  }
  // Every side registers, because every side may be a waker on the light (membarrier) path.
  r.membarrier_ = register_membarrier();
  const bool consumer = role == ring_role::consumer;
  if (consumer && r.eventfd_) {
    // try_recv() arms the eventfd on every empty poll: a membarrier each time would cost more
    // than a fence per message on the producers.
    r.sleep_ = sleep_mode::fenced;
  } else if (r.spin_ == spin_forever) {
    r.sleep_ = sleep_mode::never;
  } else {
    r.sleep_ = r.spin_ != 0 && r.membarrier_ ? sleep_mode::membarrier : sleep_mode::fenced;
  }
  if (r.sleep_ == sleep_mode::fenced)
    h->may_sleep.fetch_or(consumer ? L::consumer_sleeps_fenced : L::producer_sleeps_fenced,
                          std::memory_order_seq_cst);
  else if (r.sleep_ == sleep_mode::membarrier)
    h->may_sleep.fetch_or(consumer ? L::consumer_sleeps_membarrier : L::producer_sleeps_membarrier,
                          std::memory_order_seq_cst);
  return r;
}

ring::ring(ring&& other) noexcept
    : header_(std::exchange(other.header_, nullptr)),
      data_(std::exchange(other.data_, nullptr)),
      capacity_(other.capacity_),
      max_message_(other.max_message_),
      flags_(other.flags_),
      capacity_log2_(other.capacity_log2_),
      spin_(other.spin_),
      role_(other.role_),
      multi_(other.multi_),
      membarrier_(other.membarrier_),
      sleep_(other.sleep_),
      slot_(std::exchange(other.slot_, -1)),
      owner_(std::exchange(other.owner_, 0)),
      position_(other.position_),
      pending_position_(other.pending_position_),
      pending_length_(other.pending_length_),
      pending_size_(other.pending_size_),
      pending_(std::exchange(other.pending_, false)),
      eventfd_(std::move(other.eventfd_)),
      peers_(std::move(other.peers_)),
      patrol_(std::move(other.patrol_)),
      name_(std::move(other.name_)) {}

ring& ring::operator=(ring&& other) noexcept {
  if (this != &other) {
    detach();
    header_ = std::exchange(other.header_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = other.capacity_;
    max_message_ = other.max_message_;
    flags_ = other.flags_;
    capacity_log2_ = other.capacity_log2_;
    spin_ = other.spin_;
    role_ = other.role_;
    multi_ = other.multi_;
    membarrier_ = other.membarrier_;
    sleep_ = other.sleep_;
    slot_ = std::exchange(other.slot_, -1);
    owner_ = std::exchange(other.owner_, 0);
    position_ = other.position_;
    pending_position_ = other.pending_position_;
    pending_length_ = other.pending_length_;
    pending_size_ = other.pending_size_;
    pending_ = std::exchange(other.pending_, false);
    eventfd_ = std::move(other.eventfd_);
    peers_ = std::move(other.peers_);
    patrol_ = std::move(other.patrol_);
    name_ = std::move(other.name_);
  }
  return *this;
}

ring::~ring() { detach(); }

void ring::detach() noexcept {
  if (header_ == nullptr) return;
  if (role_ == ring_role::producer && pending_ && multi_) {
    // The reservation is already in everyone's way: fill it with a skip record so the consumer
    // passes over it.
    word_at(data_, pending_position_ & (capacity_ - 1))
        .store(L::make_word(L::kind::skip, pending_length_ - L::record_header,
                            L::lap_stamp(pending_position_, capacity_log2_)),
               std::memory_order_seq_cst);
    header_->producers[slot_].busy.store(0, std::memory_order_release);
    // The slow and sure path: seq_cst store above, a seq_cst load here; and with a membarrier
    // sleeper the seq_cst pair is at least as strong as the compiler barrier it expects.
    if (header_->consumer_waiting.load(std::memory_order_seq_cst) != 0) wake_consumer();
  }
  pending_ = false;
  // Only our own record is cleared: if a peer already replaced it (after deciding we were dead),
  // it stays theirs. A failed attach gets here before it owned a slot: nothing to clear then.
  L::peer_slot* slot = role_ == ring_role::consumer ? &header_->consumer
                       : slot_ >= 0                 ? &header_->producers[slot_]
                                                    : nullptr;
  std::uint64_t mine = owner_;
  if (slot != nullptr && mine != 0)
    slot->owner.compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
  patrol_.reset();  // before the segment can be unmapped
  header_ = nullptr;
}

// --- checks --------------------------------------------------------------------------------------

std::unexpected<error> ring::corrupt(const char* operation, std::string detail) const {
  return std::unexpected(error(errc::corrupt_segment, operation, name_, std::move(detail)));
}

result<void> ring::check_header(const char* operation) const {
  if (auto m = header_->magic.load(std::memory_order_relaxed); m != L::magic)
    return corrupt(operation, "magic changed to " + hex(m) + " after attach");
  if (auto v = load_field(header_->version); v != L::version)
    return corrupt(operation, "version changed to " + std::to_string(v) + " after attach");
  if (load_field(header_->header_size) != L::header_size ||
      load_field(header_->record_align) != L::record_align ||
      load_field(header_->max_producers) != L::producer_slots)
    return corrupt(operation, "layout sizes changed after attach");
  if (auto c = load_field(header_->capacity); c != capacity_)
    return corrupt(operation, "capacity changed from " + std::to_string(capacity_) + " to " +
                                  std::to_string(c) + " after attach");
  if (auto m = load_field(header_->max_message); m != max_message_)
    return corrupt(operation, "max_message changed from " + std::to_string(max_message_) + " to " +
                                  std::to_string(m) + " after attach");
  if (auto f = load_field(header_->flags); f != flags_)
    return corrupt(operation, "flags changed from " + hex(flags_) + " to " + hex(f));
  return {};
}

result<void> ring::check_peer() {
  if (header_ == nullptr) return invalid("ring::check_peer", name_, "the ring was moved from");
  return check_peer_for("ring::check_peer");
}

result<void> ring::check_peer_for(const char* operation) {
  if (auto ok = check_header(operation); !ok) return ok;
  auto& watch = peers_->watch;
  if (role_ == ring_role::producer) {
    std::uint64_t owner = header_->consumer.owner.load(std::memory_order_acquire);
    if (look_at(watch[0], owner) == liveness::dead)
      return fail(errc::peer_dead, operation, name_,
                  "the consumer (pid " + std::to_string(L::owner_pid(owner)) + ") died");
    return {};
  }
  // Is the consumer stuck on a reserved record that nobody has committed yet?
  bool stuck = false;
  if (multi_) {
    std::uint64_t head = header_->head.load(std::memory_order_acquire);
    stuck = head > position_ &&
            word_at(data_, position_ & (capacity_ - 1)).load(std::memory_order_acquire) == 0;
  }
  bool any_alive = false;
  std::uint32_t dead_pid = 0;
  std::size_t slots = multi_ ? L::producer_slots : 1;
  for (std::size_t i = 0; i < slots; ++i) {
    const L::peer_slot& slot = header_->producers[i];
    std::uint64_t owner = slot.owner.load(std::memory_order_acquire);
    switch (look_at(watch[1 + i], owner)) {
      case liveness::none: break;
      case liveness::alive: any_alive = true; break;
      case liveness::dead:
        dead_pid = L::owner_pid(owner);
        if (stuck && slot.busy.load(std::memory_order_acquire) != 0)
          return fail(errc::peer_dead, operation, name_,
                      "producer pid " + std::to_string(dead_pid) +
                          " died holding an unpublished record that blocks the ring");
        break;
    }
  }
  if (dead_pid != 0 && !any_alive)
    return fail(
        errc::peer_dead, operation, name_,
        std::string(multi_ ? "every producer died (the last seen: pid " : "the producer (pid ") +
            std::to_string(dead_pid) + ")");
  return {};
}

// --- waiting -------------------------------------------------------------------------------------

// Spins, then sleeps on the side's futex word until ready() is true. ready() is re-evaluated after
// the waiters flag is set (seq_cst), which is what makes the handshake with the waker sound.
template <typename Ready>
result<void> ring::wait(Ready&& ready, deadline until, const char* operation) {
  const bool consumer = role_ == ring_role::consumer;
  auto& flag = consumer ? header_->consumer_waiting : header_->producers_waiting;
  auto& word = consumer ? header_->data_futex : header_->space_futex;
  // Several producers may sleep on one flag: only the waker clears it then, or one producer's
  // clearing could hide another's sleep.
  const bool single_waiter = consumer || !multi_;
  const auto until_when = until.when();  // time_point::max() for never
  // The clock is read only every 256 pauses (a read costs about two pauses on a VM): a side that
  // streams against a busy peer waits a few pauses at a time and must not pay for it.
  clock::time_point next_check{};  // set at the first clock read
  auto tick = [&]() -> result<void> {
    auto now = clock::now();
    if (now >= until_when) return fail(errc::timed_out, operation, name_);
    if (auto ok = check_indices(operation); !ok) return ok;
    if (next_check == clock::time_point{}) {
      next_check = now + peer_check_period;
    } else if (now >= next_check) {
      if (auto ok = check_peer_for(operation); !ok) return ok;
      next_check = now + peer_check_period;
    }
    return {};
  };

  for (std::uint32_t i = 1; spin_ == spin_forever || i <= spin_; ++i) {
    auto r = ready();
    if (!r) return std::unexpected(r.error());
    if (*r) return {};
    cpu_relax();
    if ((i & 255) == 0)
      if (auto ok = tick(); !ok) return ok;
  }
  // Sleeping. A sleep without a deadline is untimed: the process's patrol, with which this side's
  // word stays registered from its first such sleep until detach, wakes it now and then (see
  // periodic_wake.hpp for why not a timer), and each such wake-up, one that left the word
  // unchanged, looks at the indices and the peer. A timed sleep runs tick() before it first sleeps
  // and after each wake-up that left the word unchanged. A real wake-up goes straight to ready(),
  // which validates what it reads.
  if (until.is_never() && (!patrol_ || !patrol_->active()))
    patrol_ = std::make_unique<detail::periodic_wake>(word);
  const bool untimed = until.is_never() && patrol_->active();
  bool check = !untimed && next_check == clock::time_point{};
  for (bool first = true;; first = false) {
    std::uint32_t seen = word.load(std::memory_order_acquire);
    if (sleep_ == sleep_mode::membarrier) {
      // The waker has no fence of its own: this call makes every running thread of a registered
      // process pass a full barrier, after which a waker either sees the flag or has made its
      // store visible to the check below. Needed when the flag was down (a waker cleared it and
      // woke us) and on the first pass (another producer's flag may not have had its
      // membarrier yet).
      if (flag.exchange(1, std::memory_order_seq_cst) == 0 || first) membarrier_global();
    } else {
      flag.store(1, std::memory_order_seq_cst);
    }
    auto r = ready();
    if (!r) return std::unexpected(r.error());
    if (*r) {
      if (single_waiter) flag.store(0, std::memory_order_relaxed);
      return {};
    }
    if (check)
      if (auto ok = tick(); !ok) return ok;
    auto woke = detail::futex_wait(
        word, seen, untimed ? deadline::never() : deadline::at(std::min(until_when, next_check)));
    if (!woke) return std::unexpected(woke.error());
    if (word.load(std::memory_order_relaxed) != seen) {
      check = false;
    } else if (untimed) {
      if (auto ok = check_indices(operation); !ok) return ok;
      if (auto ok = check_peer_for(operation); !ok) return ok;
    } else {
      check = true;
    }
  }
}

void ring::wake_consumer() noexcept {
  if (header_->consumer_waiting.exchange(0, std::memory_order_seq_cst) == 0) return;
  header_->data_futex.fetch_add(1, std::memory_order_release);
  detail::futex_wake(header_->data_futex, INT_MAX);
  if (eventfd_) {
    std::uint64_t one = 1;
    // EAGAIN means the counter is already at its maximum: readable either way.
    (void)detail::sys([&] { return ::write(eventfd_.get(), &one, sizeof one); });
  }
}

void ring::wake_producers() noexcept {
  if (header_->producers_waiting.exchange(0, std::memory_order_seq_cst) == 0) return;
  header_->space_futex.fetch_add(1, std::memory_order_release);
  detail::futex_wake(header_->space_futex, INT_MAX);
}

// --- producing -----------------------------------------------------------------------------------

// Single producer: whether `length` bytes (skip included) fit after position_ now. The cached tail
// is tried first; the real one is read (seq_cst: the producer side of the sleep handshake) only
// when the cache says full.
result<bool> ring::space_ready(std::uint64_t length, const char* operation) {
  std::uint64_t tail = header_->cached_tail.load(std::memory_order_relaxed);
  if (L::indices_valid(tail, position_, capacity_) && length <= capacity_ - (position_ - tail))
    return true;
  tail = header_->tail.load(std::memory_order_seq_cst);
  if (!L::indices_valid(tail, position_, capacity_))
    return corrupt(operation, "tail " + std::to_string(tail) + " is not within capacity " +
                                  std::to_string(capacity_) + " below head " +
                                  std::to_string(position_));
  // Hints are stored only when they change: a producer spinning on a full ring keeps its line
  // clean.
  if (header_->cached_tail.load(std::memory_order_relaxed) != tail)
    header_->cached_tail.store(tail, std::memory_order_relaxed);
  if (auto ok = check_header(operation); !ok) return std::unexpected(ok.error());
  return length <= capacity_ - (position_ - tail);
}

result<std::span<std::byte>> ring::reserve(std::size_t size, deadline until,
                                           const char* operation) {
  if (multi_) return reserve_multi(size, until, operation);
  const std::uint64_t length = L::record_size(size);
  const std::uint64_t offset = position_ & (capacity_ - 1);
  // A record never wraps: if it does not fit before the end, a skip record fills the end (written
  // by commit, after the record). The 8 bytes after the record are taken too: commit zeroes the
  // next record's word there.
  const std::uint64_t pad = length > capacity_ - offset ? capacity_ - offset : 0;
  const std::uint64_t need = pad + length + L::record_header;
  auto fits = space_ready(need, operation);
  if (!fits) return std::unexpected(fits.error());
  if (!*fits) {
    if (until.expired()) return fail(errc::timed_out, operation, name_);
    auto ok = wait([&] { return space_ready(need, operation); }, until, operation);
    if (!ok) return std::unexpected(ok.error());
  }
  pending_position_ = position_ + pad;
  pending_length_ = length;
  pending_size_ = size;
  pending_ = true;
  return std::span<std::byte>(data_ + (pending_position_ & (capacity_ - 1)) + L::record_header,
                              size);
}

result<std::span<std::byte>> ring::reserve_multi(std::size_t size, deadline until,
                                                 const char* operation) {
  const std::uint64_t length = L::record_size(size);
  auto& busy = header_->producers[slot_].busy;
  // Set before the reservation can exist (the CAS below is acq_rel), so a consumer that finds
  // this producer dead and the ring stuck knows it held a reservation.
  busy.store(1, std::memory_order_relaxed);

  // One attempt to reserve: the reserved start position, nothing when there is no room, or an
  // error when the indices stay inconsistent.
  auto attempt = [&](bool claim_it) -> result<std::optional<std::uint64_t>> {
    int rereads = 0;
    bool refreshed = false;
    for (;;) {
      // tail before head: tail only ever trails head, so a pair read in this order satisfies
      // tail <= head unless the segment is corrupt; head - tail may exceed capacity only when tail
      // is stale, which a re-read fixes.
      std::uint64_t tail = refreshed ? header_->tail.load(std::memory_order_seq_cst)
                                     : header_->cached_tail.load(std::memory_order_acquire);
      std::uint64_t head = header_->head.load(std::memory_order_acquire);
      if (!L::indices_valid(tail, head, capacity_)) {
        if (++rereads > index_rereads)
          return corrupt(operation, "head " + std::to_string(head) + " and tail " +
                                        std::to_string(tail) +
                                        " break tail <= head <= tail + capacity");
        refreshed = true;
        continue;
      }
      if (refreshed && header_->cached_tail.load(std::memory_order_relaxed) != tail)
        header_->cached_tail.store(tail, std::memory_order_release);
      std::uint64_t offset = head & (capacity_ - 1);
      std::uint64_t pad = length > capacity_ - offset ? capacity_ - offset : 0;
      if (pad + length > capacity_ - (head - tail)) {
        if (refreshed) return std::optional<std::uint64_t>();
        refreshed = true;
        continue;
      }
      if (!claim_it) return std::optional<std::uint64_t>(head);
      // Fails only when another producer reserved in between: lock-free progress, not a loop
      // that garbage in the segment could keep going.
      if (header_->head.compare_exchange_weak(head, head + pad + length, std::memory_order_acq_rel,
                                              std::memory_order_relaxed)) {
        if (pad != 0)
          word_at(data_, offset)
              .store(L::make_word(L::kind::skip, pad - L::record_header,
                                  L::lap_stamp(head, capacity_log2_)),
                     std::memory_order_release);
        return std::optional<std::uint64_t>(head + pad);
      }
      refreshed = false;
      rereads = 0;
    }
  };

  for (;;) {
    auto got = attempt(true);
    if (!got) {
      busy.store(0, std::memory_order_relaxed);
      return std::unexpected(got.error());
    }
    if (*got) {
      pending_position_ = **got;
      pending_length_ = length;
      pending_size_ = size;
      pending_ = true;
      return std::span<std::byte>(data_ + (pending_position_ & (capacity_ - 1)) + L::record_header,
                                  size);
    }
    if (until.expired()) {
      busy.store(0, std::memory_order_relaxed);
      return fail(errc::timed_out, operation, name_);
    }
    auto ok = wait(
        [&]() -> result<bool> {
          auto probe = attempt(false);
          if (!probe) return std::unexpected(probe.error());
          return probe->has_value();
        },
        until, operation);
    if (!ok) {
      busy.store(0, std::memory_order_relaxed);
      return std::unexpected(ok.error());
    }
  }
}

// Single producer: publishes the record reserved at pending_position_ with `payload` bytes.
inline void ring::commit_single(std::uint64_t payload) noexcept {
  const std::uint64_t start = pending_position_;
  const std::uint64_t end = start + L::record_size(payload);
  const std::uint64_t word =
      L::make_word(L::kind::data, payload, L::lap_stamp(start, capacity_log2_));
  const std::uint32_t sleeps = header_->may_sleep.load(std::memory_order_relaxed);
  const bool fenced = (sleeps & L::consumer_sleeps_fenced) != 0 ||
                      ((sleeps & L::consumer_sleeps_membarrier) != 0 && !membarrier_);
  const bool look = fenced || (sleeps & L::consumer_sleeps_membarrier) != 0;
  pending_ = false;
  // The consumer polls the word at `end` next: it must read "nothing yet" until the next record
  // is published there, so the stale bytes of an earlier lap are cleared first (free space:
  // reserve counted these 8 bytes).
  word_at(data_, end & (capacity_ - 1)).store(0, std::memory_order_relaxed);
  if (start == position_) [[likely]] {
    publish_store(word_at(data_, start & (capacity_ - 1)), word, fenced);
  } else {
    // Wrapped: the record at offset 0 first, then the skip record that leads the consumer to it.
    word_at(data_, start & (capacity_ - 1)).store(word, std::memory_order_relaxed);
    publish_store(word_at(data_, position_ & (capacity_ - 1)),
                  L::make_word(L::kind::skip, start - position_ - L::record_header,
                               L::lap_stamp(position_, capacity_log2_)),
                  fenced);
  }
  // head follows the record (for attach, takeover and the consumer's slow-path checks; nobody
  // reads it on a fast path).
  header_->head.store(end, std::memory_order_release);
  position_ = end;
  if (look && flag_raised(header_->consumer_waiting, fenced)) wake_consumer();
}

result<void> ring::commit(std::uint64_t payload) {
  if (!multi_) {
    commit_single(payload);
    return {};
  }
  const std::uint64_t start = pending_position_;
  const std::uint64_t length = L::record_size(payload);
  const std::uint64_t word =
      L::make_word(L::kind::data, payload, L::lap_stamp(start, capacity_log2_));
  const std::uint32_t sleeps = header_->may_sleep.load(std::memory_order_relaxed);
  const bool fenced = (sleeps & L::consumer_sleeps_fenced) != 0 ||
                      ((sleeps & L::consumer_sleeps_membarrier) != 0 && !membarrier_);
  const bool look = fenced || (sleeps & L::consumer_sleeps_membarrier) != 0;
  pending_ = false;
  if (length < pending_length_) {
    // publish(used) shrank the record: the rest of the reservation becomes a skip record, stored
    // before the data word so the consumer never reaches it uncommitted.
    word_at(data_, (start + length) & (capacity_ - 1))
        .store(L::make_word(L::kind::skip, pending_length_ - length - L::record_header,
                            L::lap_stamp(start + length, capacity_log2_)),
               std::memory_order_release);
  }
  publish_store(word_at(data_, start & (capacity_ - 1)), word, fenced);
  header_->producers[slot_].busy.store(0, std::memory_order_release);
  if (look && flag_raised(header_->consumer_waiting, fenced)) wake_consumer();
  return {};
}

result<std::span<std::byte>> ring::borrow(std::size_t size, deadline until) {
  const char* op = "ring::borrow";
  if (header_ == nullptr || role_ != ring_role::producer)
    return invalid(op, name_, "only an attached producer borrows");
  if (pending_) return invalid(op, name_, "publish() the borrowed record before borrowing again");
  if (size > max_message_)
    return fail(
        errc::message_too_large, op, name_,
        std::to_string(size) + " bytes, the ring's max_message is " + std::to_string(max_message_));
  return reserve(size, until, op);
}

result<void> ring::publish() {
  if (!pending_ || role_ != ring_role::producer)
    return invalid("ring::publish", name_, "nothing is borrowed");
  return commit(pending_size_);
}

result<void> ring::publish(std::size_t used) {
  if (!pending_ || role_ != ring_role::producer)
    return invalid("ring::publish", name_, "nothing is borrowed");
  if (used > pending_size_)
    return invalid(
        "ring::publish", name_,
        std::to_string(used) + " bytes used of " + std::to_string(pending_size_) + " borrowed");
  return commit(used);
}

result<void> ring::send(std::span<const std::byte> message, deadline until) {
  // The fast path: a single producer with room by its cached tail and no wrap-around to make.
  if (!multi_ && !pending_ && role_ == ring_role::producer && header_ != nullptr &&
      message.size() <= max_message_) [[likely]] {
    const std::uint64_t length = L::record_size(message.size());
    const std::uint64_t offset = position_ & (capacity_ - 1);
    const std::uint64_t tail = header_->cached_tail.load(std::memory_order_relaxed);
    if (length <= capacity_ - offset && L::indices_valid(tail, position_, capacity_) &&
        length + L::record_header <= capacity_ - (position_ - tail)) [[likely]] {
      if (!message.empty())
        std::memcpy(data_ + offset + L::record_header, message.data(), message.size());
      pending_position_ = position_;
      commit_single(message.size());
      return {};
    }
  }
  return send_slow(message, until);
}

result<void> ring::send_slow(std::span<const std::byte> message, deadline until) {
  const char* op = "ring::send";
  if (header_ == nullptr || role_ != ring_role::producer) [[unlikely]]
    return invalid(op, name_, "only an attached producer sends");
  if (pending_) [[unlikely]]
    return invalid(op, name_, "publish() the borrowed record before sending");
  if (message.size() > max_message_) [[unlikely]]
    return fail(errc::message_too_large, op, name_,
                std::to_string(message.size()) + " bytes, the ring's max_message is " +
                    std::to_string(max_message_));
  auto out = reserve(message.size(), until, op);
  if (!out) [[unlikely]]
    return std::unexpected(out.error());
  if (!message.empty()) std::memcpy(out->data(), message.data(), message.size());
  return commit(message.size());
}

result<bool> ring::try_send(std::span<const std::byte> message) {
  auto sent = send(message, deadline::immediate());
  if (sent) return true;
  if (sent.error() == errc::timed_out) return false;
  return std::unexpected(sent.error());
}

// --- consuming -----------------------------------------------------------------------------------

// Whether a record (data or skip) is ready at position_: its word is no longer 0. The load is
// seq_cst: it is the consumer side of the sleep handshake.
result<bool> ring::data_ready(const char* /*operation*/) {
  const std::uint64_t offset = position_ & (capacity_ - 1);
  // Prefetching the line after the word's keeps a copy of it in flight while waiting: the
  // producer fills that line before it stores the word, and the payload's tail then arrives
  // alongside the word instead of one cache-line transfer after it (a 64-byte message and its word
  // span two lines). A prefetch, not a load: it reads nothing the language could call a race.
  __builtin_prefetch(data_ + (((offset | (L::cache_line - 1)) + 1) & (capacity_ - 1)));
  return word_at(data_, offset).load(std::memory_order_seq_cst) != 0;
}

// The slow-path look at the other side's index and the fixed header fields, made every 256 pauses
// and after every futex wake-up.
result<void> ring::check_indices(const char* operation) {
  if (auto ok = check_header(operation); !ok) return ok;
  if (role_ == ring_role::consumer) {
    std::uint64_t head = header_->head.load(std::memory_order_acquire);
    // Single: head is stored after the record's word, so it may trail this side by a record and a
    // skip record for a moment; multi: head is reserved before any record is written.
    bool fits = multi_ ? L::indices_valid(position_, head, capacity_)
                       : L::indices_near(position_, head, capacity_);
    if (!fits)
      return corrupt(operation, "head " + std::to_string(head) + " and tail " +
                                    std::to_string(position_) + " do not fit capacity " +
                                    std::to_string(capacity_));
    if (header_->cached_head.load(std::memory_order_relaxed) != head)
      header_->cached_head.store(head, std::memory_order_relaxed);
  } else if (!multi_) {
    std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
    if (!L::indices_valid(tail, position_, capacity_))
      return corrupt(operation, "head " + std::to_string(position_) + " and tail " +
                                    std::to_string(tail) + " do not fit capacity " +
                                    std::to_string(capacity_));
  }
  return {};
}

// Frees the record at position_ (pending_length_ bytes) for the producers.
void ring::consume() {
  if (multi_) std::memset(data_ + (position_ & (capacity_ - 1)), 0, pending_length_);
  position_ += pending_length_;
  pending_ = false;
  const std::uint32_t sleeps = header_->may_sleep.load(std::memory_order_relaxed);
  const bool fenced = (sleeps & L::producer_sleeps_fenced) != 0 ||
                      ((sleeps & L::producer_sleeps_membarrier) != 0 && !membarrier_);
  publish_store(header_->tail, position_, fenced);
  if ((fenced || (sleeps & L::producer_sleeps_membarrier) != 0) &&
      flag_raised(header_->producers_waiting, fenced))
    wake_producers();
}

// The next data record, in place, consuming skip records on the way; nothing when none is ready.
// Leaves it pending (peeked) for release().
result<std::optional<std::span<const std::byte>>> ring::next_record(const char* operation) {
  using span_t = std::span<const std::byte>;
  if (pending_)
    return std::optional<span_t>(
        span_t(data_ + (pending_position_ & (capacity_ - 1)) + L::record_header, pending_size_));
  // Each pass consumes a skip record of at least 8 bytes, and a word is valid only at positions of
  // its own lap: a data area full of forged skip records ends the loop within one lap, at a zero
  // word or at a stamp that does not match.
  for (;;) {
    const std::uint64_t offset = position_ & (capacity_ - 1);
    // acquire: pairs with the producer's release (or seq_cst) store of the word, after which the
    // payload (and, after a skip record, the record at offset 0) is complete.
    const std::uint64_t word = word_at(data_, offset).load(std::memory_order_acquire);
    if (word == 0) return std::optional<span_t>();
    auto view = L::decode(word, position_, capacity_, capacity_log2_, max_message_);
    if (view.problem != nullptr)
      return corrupt(operation, std::string(view.problem) + " at position " +
                                    std::to_string(position_) + " (word " + hex(word) + ")");
    // Multi: the record must lie inside what producers reserved: below the cached head when that
    // covers it, else below a fresh read of head (reserved before the word was written). Single
    // needs no such check: the word is the commit, and head trails it.
    std::uint64_t head = header_->cached_head.load(std::memory_order_relaxed);
    if (multi_ &&
        (!L::indices_valid(position_, head, capacity_) || view.length > head - position_)) {
      head = header_->head.load(std::memory_order_acquire);
      if (!L::indices_valid(position_, head, capacity_))
        return corrupt(operation, "head " + std::to_string(head) + " is not within capacity " +
                                      std::to_string(capacity_) + " above tail " +
                                      std::to_string(position_));
      header_->cached_head.store(head, std::memory_order_relaxed);
      if (auto ok = check_header(operation); !ok) return std::unexpected(ok.error());
      if (view.length > head - position_)
        return corrupt(operation, "a record of " + std::to_string(view.length) +
                                      " bytes at position " + std::to_string(position_) +
                                      " runs past head " + std::to_string(head));
    }
    pending_position_ = position_;
    pending_length_ = view.length;
    pending_size_ = view.size;
    if (view.k == L::kind::skip) {
      consume();
      continue;
    }
    pending_ = true;
    return std::optional<span_t>(span_t(data_ + offset + L::record_header, view.size));
  }
}

result<std::optional<std::size_t>> ring::copy_out(std::span<std::byte> buffer,
                                                  const char* operation) {
  auto record = next_record(operation);
  if (!record) return std::unexpected(record.error());
  if (!*record) return std::optional<std::size_t>();
  auto in = **record;
  if (in.size() > buffer.size()) {
    pending_ = false;  // not consumed: the next call finds it again
    return fail(errc::message_too_large, operation, name_,
                "the next message has " + std::to_string(in.size()) + " bytes, the buffer holds " +
                    std::to_string(buffer.size()));
  }
  if (!in.empty()) std::memcpy(buffer.data(), in.data(), in.size());
  consume();
  return std::optional<std::size_t>(in.size());
}

// The fast path of recv: a single-producer data record that fits the buffer is waiting. Anything
// else (nothing yet, a skip record, a bad word, a small buffer, multi-producer) is left to
// recv_slow, which reports it.
inline std::optional<std::size_t> ring::recv_fast(std::span<std::byte> buffer) {
  if (multi_ || pending_ || role_ != ring_role::consumer || header_ == nullptr) return {};
  const std::uint64_t offset = position_ & (capacity_ - 1);
  const std::uint64_t word = word_at(data_, offset).load(std::memory_order_acquire);
  if (word == 0) return {};
  auto view = L::decode(word, position_, capacity_, capacity_log2_, max_message_);
  if (view.problem != nullptr || view.k != L::kind::data || view.size > buffer.size()) return {};
  if (view.size != 0) std::memcpy(buffer.data(), data_ + offset + L::record_header, view.size);
  pending_length_ = view.length;
  consume();
  return view.size;
}

result<std::size_t> ring::recv(std::span<std::byte> buffer, deadline until) {
  if (auto got = recv_fast(buffer)) [[likely]]
    return *got;
  return recv_slow(buffer, until);
}

result<std::size_t> ring::recv_slow(std::span<std::byte> buffer, deadline until) {
  const char* op = "ring::recv";
  if (header_ == nullptr || role_ != ring_role::consumer) [[unlikely]]
    return invalid(op, name_, "only the attached consumer receives");
  for (;;) {
    auto got = copy_out(buffer, op);
    if (!got) [[unlikely]]
      return std::unexpected(got.error());
    if (*got) return **got;
    if (until.expired()) return fail(errc::timed_out, op, name_);
    if (auto ok = wait([&] { return data_ready(op); }, until, op); !ok)
      return std::unexpected(ok.error());
    // Straight to the copy: on a round trip every recv comes through here.
    if (auto fast = recv_fast(buffer)) return *fast;
  }
}

result<std::optional<std::size_t>> ring::try_recv(std::span<std::byte> buffer) {
  if (auto fast = recv_fast(buffer)) return fast;
  const char* op = "ring::try_recv";
  if (header_ == nullptr || role_ != ring_role::consumer)
    return invalid(op, name_, "only the attached consumer receives");
  auto got = copy_out(buffer, op);
  if (!got || *got || !eventfd_) return got;
  // Arm wait_fd(): drain the eventfd, then raise the flag and look once more. A producer that
  // publishes after this look sees the flag and writes the eventfd; one that published before it
  // is found by the look.
  std::uint64_t count = 0;
  (void)detail::sys([&] { return ::read(eventfd_.get(), &count, sizeof count); });  // EAGAIN: 0
  header_->consumer_waiting.store(1, std::memory_order_seq_cst);
  got = copy_out(buffer, op);
  // Found one after all: the caller comes back until nothing is left, and that call re-arms.
  if (got && *got) header_->consumer_waiting.store(0, std::memory_order_relaxed);
  return got;
}

result<std::span<const std::byte>> ring::peek(deadline until) {
  const char* op = "ring::peek";
  if (header_ == nullptr || role_ != ring_role::consumer)
    return invalid(op, name_, "only the attached consumer peeks");
  for (;;) {
    auto record = next_record(op);
    if (!record) return std::unexpected(record.error());
    if (*record) return **record;
    if (until.expired()) return fail(errc::timed_out, op, name_);
    if (auto ok = wait([&] { return data_ready(op); }, until, op); !ok)
      return std::unexpected(ok.error());
  }
}

result<void> ring::release() {
  if (!pending_ || role_ != ring_role::consumer)
    return invalid("ring::release", name_, "nothing is peeked");
  consume();
  return {};
}

int ring::wait_fd() const noexcept {
  return role_ == ring_role::consumer && eventfd_ ? eventfd_.get() : -1;
}

}  // namespace ipcx
