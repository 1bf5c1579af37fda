// shm_semaphore_producer_consumer — the bounded buffer: a producer and a consumer process share a
// ring of slots in a shared-memory segment, counted by two semaphores that live in the segment.
//
// What it shows: the textbook solution (Dijkstra's) with real processes.
//   - "free" counts empty slots (starts at the number of slots), "filled" counts full ones (starts
//     at 0). The producer waits on free, writes the slot, posts filled; the consumer waits on
//     filled, reads the slot, posts free. Neither ever looks at a slot the other is using, and the
//     producer blocks when the buffer is full, the consumer when it is empty.
//   - The semaphores are unnamed and process-shared (sem_init with pshared = 1), placed in the
//     segment itself: semaphore::in() initialises them once, in the starter, before either role
//     starts; the roles semaphore::attach() to the same bytes in their own mappings. Nothing but
//     the segment's name connects the processes.
//   - With one producer and one consumer, each keeps its slot index to itself (in its own memory):
//     only the semaphores and the slots are shared. sem_post/sem_wait also order memory, so the
//     item stored before a post is complete after the matching wait.
//   - The consumer checks every item: number i in order, with the value the producer computed.
//   Each side counts how often the other made it wait (a try_wait that found 0 before the blocking
//   wait): with 8 slots and 1000 items the processes hand the buffer back and forth many times.
//
// The segment is shm:/ipcx-example-bounded-buffer-PID (0600, O_EXCL), created with remove_on_close
// by the starter, which is the one process that outlives both roles: it is unlinked on every path.
// Every wait gives up after 5 s, so a dead peer makes the other fail, not hang.
//
// Run:    example_shm_semaphore_producer_consumer
// Prints (pids and wait counts vary):
//   [starter 100] created shm:/ipcx-example-bounded-buffer-100 (8 slots); free = 8, filled = 0
//   [consumer 101] attached; consuming 1000 items
//   [producer 102] attached; producing 1000 items
//   [producer 102] produced 1000 items; the buffer was full 8 times
//   [consumer 101] consumed 1000 items in order, all values right; the buffer was empty 22 times
//   [starter 100] ok
// Exits 0 when the consumer got every item in order; otherwise prints the error and exits 1.
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ipcx/semaphore.hpp"
#include "ipcx/shared_memory.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;
constexpr std::uint64_t item_count = 1000;
constexpr std::size_t slot_count = 8;

// One slot's content: the item's number and a value the consumer can recompute.
struct item {
  std::uint64_t number;
  std::uint64_t value;
};

// The segment: two semaphores, then the slots. Only offsets are taken from this struct; the bytes
// are reached through the mapping (std::memcpy for items), never through a struct in shared memory.
struct layout {
  alignas(ipcx::semaphore::alignment) std::byte free[ipcx::semaphore::footprint];
  alignas(ipcx::semaphore::alignment) std::byte filled[ipcx::semaphore::footprint];
  alignas(8) std::byte slot_area[slot_count * sizeof(item)];
};

std::uint64_t value_of(std::uint64_t number) { return number * 0x9e3779b97f4a7c15ULL ^ 0xfeedULL; }

const char* role = "starter";

template <typename... Parts>
std::string line(const Parts&... parts) {
  std::ostringstream out;
  out << '[' << role << ' ' << ::getpid() << "] ";
  (out << ... << parts);
  out << '\n';
  return out.str();
}

// One flushed write per line, so the lines of the three processes do not mix.
template <typename... Parts>
void say(const Parts&... parts) {
  std::fputs(line(parts...).c_str(), stdout);
  std::fflush(stdout);
}

// Prints what went wrong; returns the exit status of a failed example.
template <typename... Parts>
int failure(const Parts&... parts) {
  std::fputs(line("error: ", parts...).c_str(), stderr);
  return 1;
}

std::span<std::byte> field(const ipcx::shared_memory& segment, std::size_t offset,
                           std::size_t size) {
  return segment.bytes().subspan(offset, size);
}

std::span<std::byte> slot(const ipcx::shared_memory& segment, std::uint64_t index) {
  return field(segment, offsetof(layout, slot_area) + index * sizeof(item), sizeof(item));
}

// Takes one unit of `sem`, counting in `waits` the times it had to block for it.
ipcx::result<void> take(ipcx::semaphore& sem, std::uint64_t& waits) {
  auto now = sem.try_wait();
  if (!now) return std::unexpected(now.error());
  if (*now) return {};
  ++waits;
  return sem.wait(patience);
}

// Both roles: map the segment by name and attach to the two semaphores the starter placed in it.
struct shared {
  ipcx::shared_memory segment;
  ipcx::semaphore free;
  ipcx::semaphore filled;
};

ipcx::result<shared> attach(const std::string& name) {
  // The starter made it exactly this size; join refuses a smaller one (errc::corrupt_segment).
  auto segment = ipcx::shared_memory::join(name, sizeof(layout));
  if (!segment) return std::unexpected(segment.error());
  auto free = ipcx::semaphore::attach(field(*segment, offsetof(layout, free), sizeof layout::free));
  if (!free) return std::unexpected(free.error());
  auto filled =
      ipcx::semaphore::attach(field(*segment, offsetof(layout, filled), sizeof layout::filled));
  if (!filled) return std::unexpected(filled.error());
  return shared{std::move(*segment), std::move(*free), std::move(*filled)};
}

int producer(const std::string& name) {
  role = "producer";
  auto buffer = attach(name);
  if (!buffer) return failure(buffer.error().message());
  say("attached; producing ", item_count, " items");
  std::uint64_t full = 0;
  for (std::uint64_t number = 0; number < item_count; ++number) {
    if (auto got = take(buffer->free, full); !got) return failure(got.error().message());
    item next{number, value_of(number)};
    std::memcpy(slot(buffer->segment, number % slot_count).data(), &next, sizeof next);
    if (auto posted = buffer->filled.post(); !posted) return failure(posted.error().message());
  }
  say("produced ", item_count, " items; the buffer was full ", full, " times");
  return 0;
}

int consumer(const std::string& name) {
  role = "consumer";
  auto buffer = attach(name);
  if (!buffer) return failure(buffer.error().message());
  say("attached; consuming ", item_count, " items");
  std::uint64_t empty = 0;
  for (std::uint64_t number = 0; number < item_count; ++number) {
    if (auto got = take(buffer->filled, empty); !got) return failure(got.error().message());
    item next;
    std::memcpy(&next, slot(buffer->segment, number % slot_count).data(), sizeof next);
    if (auto posted = buffer->free.post(); !posted) return failure(posted.error().message());
    if (next.number != number || next.value != value_of(number)) {
      return failure("slot ", number % slot_count, " held item ", next.number, " (value ",
                     next.value, "), expected item ", number, " (value ", value_of(number), ')');
    }
  }
  say("consumed ", item_count, " items in order, all values right; the buffer was empty ", empty,
      " times");
  return 0;
}

// Starts this program again in a role: a new process image that inherits no ipcx descriptor (they
// are all close-on-exec) and no mapping; only the segment's name connects it to the others.
pid_t start(const char* self, std::string role_name, std::string name) {
  std::array<char*, 4> argv{const_cast<char*>(self), role_name.data(), name.data(), nullptr};
  pid_t pid = -1;
  int error = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    failure("posix_spawn(/proc/self/exe ", role_name, "): ", std::strerror(error));
    return -1;
  }
  return pid;
}

// Waits for a started role; true if it succeeded. Each role bounds its own waits by `patience`.
bool succeeded(pid_t pid, std::string_view role_name) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) {
    failure("waitpid: ", std::strerror(errno));
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  failure("the ", role_name, " (pid ", pid, ") failed");
  return false;
}

int starter(const char* self) {
  std::string name = "shm:/ipcx-example-bounded-buffer-" + std::to_string(::getpid());
  auto segment = ipcx::shared_memory::create(name, sizeof(layout), {.remove_on_close = true});
  if (!segment) return failure(segment.error().message());
  // Initialised once, here, before either role can attach: sem_init on a semaphore someone is
  // already using is undefined. The objects can go at once; the semaphores live in the segment.
  auto free = ipcx::semaphore::in(field(*segment, offsetof(layout, free), sizeof layout::free),
                                  static_cast<unsigned>(slot_count));
  if (!free) return failure(free.error().message());
  auto filled =
      ipcx::semaphore::in(field(*segment, offsetof(layout, filled), sizeof layout::filled), 0);
  if (!filled) return failure(filled.error().message());
  say("created ", name, " (", slot_count, " slots); free = ", slot_count, ", filled = 0");

  pid_t consumer_pid = start(self, "consumer", name);
  pid_t producer_pid = start(self, "producer", name);
  bool ok = consumer_pid > 0 && producer_pid > 0;
  if (consumer_pid > 0) ok = succeeded(consumer_pid, "consumer") && ok;
  if (producer_pid > 0) ok = succeeded(producer_pid, "producer") && ok;
  return ok ? 0 : 1;
}  // `segment` closes here and, as its creator with remove_on_close, unlinks the name

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "producer") return producer(argv[2]);
  if (argc == 3 && std::string_view(argv[1]) == "consumer") return consumer(argv[2]);
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [producer|consumer shm:/NAME]\n", argv[0]);
    return 2;
  }
  if (int status = starter(argv[0]); status != 0) return status;
  say("ok");
  return 0;
}
