// shm_zero_copy — 1 MiB messages through an ipcx::ring in shared memory, written and read in place.
//
// What it shows: with send/recv a message is copied twice, into the ring and out of it. For large
// messages ipcx::ring lets both sides skip their copy:
//   - the producer borrow()s space in the ring, fills it where it lies (here: a pseudo-random
//     pattern, computing its checksum on the way) and publish()es it;
//   - the consumer peek()s the next message where it lies, checksums it there, and release()s it,
//     which gives the space back to the producer.
// Both print the offset of the message inside the segment: the same number, because the producer
// wrote the bytes exactly where the consumer reads them (each process maps the segment at its own
// address; the offset is what they share). After each large message the producer send()s its
// 8-byte checksum the ordinary way, copied, and the consumer compares.
//
// The starter creates shm:/ipcx-example-zero-copy-PID (0600, O_EXCL, remove_on_close) of
// ring::region_size(4 MiB) bytes, formats a ring in it with max_message = 1 MiB (a record may take
// at most half the capacity), attaches as the consumer, and only then starts the producer, a fresh
// copy of this program that joins the segment by name and attaches as the producer. Five messages
// go through a 4 MiB ring: the fourth no longer fits before the end of the ring's data area, so it
// goes back to the start (the same offset as the first), into space the consumer has released.
//
// A peeked message is another process's memory: the producer could still change the bytes while
// they are read (never the size). The checksum is computed once, over what was there, and compared;
// nothing read in place is trusted beyond that. Every wait gives up after 5 s; if the producer
// dies, the consumer gets what it had published, then errc::peer_dead within about 100 ms.
//
// Run:    example_shm_zero_copy
// Prints (pids and checksums vary):
//   [consumer 100] created shm:/ipcx-example-zero-copy-100: a 4194304-byte ring, messages up to ...
//   [producer 101] attached; borrowed 1048576 bytes at offset 1352 of the segment, filled in place,
//                  published; checksum 7cd8...
//   [consumer 100] peeked 1048576 bytes in place at offset 1352 of the segment, checksum 7cd8...:
//                  matches
//   ...
//   [consumer 100] ok
// Exits 0 when every message arrived with its checksum; otherwise prints the error and exits 1.
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
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ipcx/ring.hpp"
#include "ipcx/shared_memory.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;
constexpr std::size_t message_size = std::size_t{1} << 20;
constexpr std::size_t ring_capacity = 4 * message_size;
constexpr int messages = 5;

const char* role = "consumer";

template <typename... Parts>
std::string line(const Parts&... parts) {
  std::ostringstream out;
  out << '[' << role << ' ' << ::getpid() << "] ";
  (out << ... << parts);
  out << '\n';
  return out.str();
}

// One flushed write per line, so the lines of the two processes do not mix.
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

std::string hex(std::uint64_t value) {
  std::ostringstream out;
  out << std::hex << value;
  return out.str();
}

// FNV-1a, 64 bits: simple, and any changed, lost or reordered byte changes it.
class checksum {
 public:
  void add(std::span<const std::byte> bytes) {
    for (std::byte b : bytes) {
      value_ ^= std::to_integer<std::uint64_t>(b);
      value_ *= 0x100000001b3ULL;
    }
  }
  std::uint64_t value() const { return value_; }

 private:
  std::uint64_t value_ = 0xcbf29ce484222325ULL;
};

// Where `part` lies inside `segment`, or -1 if it is not inside (then it was copied somewhere).
long offset_in(std::span<const std::byte> part, std::span<const std::byte> segment) {
  // std::less gives a total order over unrelated pointers, where < would be unspecified.
  std::less<const std::byte*> before;
  if (before(part.data(), segment.data()) ||
      before(segment.data() + segment.size(), part.data() + part.size())) {
    return -1;
  }
  return static_cast<long>(part.data() - segment.data());
}

// Fills `out` in place with a pattern that differs for every message (xorshift64 from `seed`)
// and returns its checksum.
std::uint64_t fill(std::span<std::byte> out, std::uint64_t seed) {
  std::uint64_t state = seed * 0x9e3779b97f4a7c15ULL | 1;
  for (std::size_t at = 0; at + sizeof state <= out.size(); at += sizeof state) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::memcpy(out.data() + at, &state, sizeof state);
  }
  checksum sum;
  sum.add(out);
  return sum.value();
}

int producer(const std::string& name) {
  role = "producer";
  // Declared before the ring, so it is unmapped after it: the ring's destructor writes the header.
  auto segment = ipcx::shared_memory::join(name, ipcx::ring::region_size(ring_capacity));
  if (!segment) return failure(segment.error().message());
  auto ring = ipcx::ring::attach(segment->bytes(), ipcx::ring_role::producer, {.name = name});
  if (!ring) return failure(ring.error().message());
  for (int i = 1; i <= messages; ++i) {
    // Waits (up to the deadline) until the consumer has released enough space.
    auto space = ring->borrow(message_size, patience);
    if (!space) return failure(space.error().message());
    std::uint64_t sum = fill(*space, static_cast<std::uint64_t>(::getpid()) * 1000 + i);
    long offset = offset_in(*space, segment->bytes());
    if (auto published = ring->publish(); !published) return failure(published.error().message());
    say(i == 1 ? "attached; " : "", "borrowed ", space->size(), " bytes at offset ", offset,
        " of the segment, filled in place, published; checksum ", hex(sum));
    if (auto sent = ring->send(std::as_bytes(std::span(&sum, 1)), patience); !sent) {
      return failure(sent.error().message());
    }
  }
  return 0;
}  // the ring detaches here; what it published stays in the segment for the consumer

// Reads one large message in place, then its checksum; 0 when they agree.
int consume_one(ipcx::ring& ring, const ipcx::shared_memory& segment) {
  auto message = ring.peek(patience);
  if (!message) return failure(message.error().message());
  if (message->size() != message_size) {
    return failure("peeked ", message->size(), " bytes, expected ", message_size);
  }
  long offset = offset_in(*message, segment.bytes());
  if (offset < 0) return failure("the peeked message is not inside the segment");
  checksum sum;
  sum.add(*message);
  // The space goes back to the producer: *message must not be touched after this.
  if (auto released = ring.release(); !released) return failure(released.error().message());

  std::uint64_t expected = 0;
  auto size = ring.recv(std::as_writable_bytes(std::span(&expected, 1)), patience);
  if (!size) return failure(size.error().message());
  if (*size != sizeof expected) return failure("the checksum message has ", *size, " bytes, not 8");
  if (sum.value() != expected) {
    return failure("checksum ", hex(sum.value()), " of the message at offset ", offset,
                   ", the producer sent ", hex(expected));
  }
  say("peeked ", message_size, " bytes in place at offset ", offset, " of the segment, checksum ",
      hex(sum.value()), ": matches");
  return 0;
}

// Starts this program again as the producer: a new process image that inherits no ipcx descriptor
// (they are all close-on-exec) and no mapping; only the segment's name connects it to us.
pid_t start_producer(const char* self, std::string name) {
  std::string role_name = "producer";
  std::array<char*, 4> argv{const_cast<char*>(self), role_name.data(), name.data(), nullptr};
  pid_t pid = -1;
  int error = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    failure("posix_spawn(/proc/self/exe producer): ", std::strerror(error));
    return -1;
  }
  return pid;
}

// Waits for the producer; true if it succeeded. It bounds its own waits by `patience`.
bool succeeded(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) {
    failure("waitpid: ", std::strerror(errno));
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  failure("the producer (pid ", pid, ") failed");
  return false;
}

int consumer(const char* self) {
  std::string name = "shm:/ipcx-example-zero-copy-" + std::to_string(::getpid());
  auto segment = ipcx::shared_memory::create(name, ipcx::ring::region_size(ring_capacity),
                                             {.remove_on_close = true});
  if (!segment) return failure(segment.error().message());
  // Formatted before the producer starts: attach refuses a segment whose header is not complete.
  auto ring = ipcx::ring::create(
      segment->bytes(),
      {.capacity_bytes = ring_capacity, .max_message = message_size, .name = name},
      ipcx::ring_role::consumer);
  if (!ring) return failure(ring.error().message());
  say("created ", name, ": a ", ring->capacity(), "-byte ring, messages up to ",
      ring->max_message(), " bytes");

  pid_t producer_pid = start_producer(self, name);
  if (producer_pid < 0) return 1;
  int status = 0;
  for (int i = 1; i <= messages && status == 0; ++i) status = consume_one(*ring, *segment);
  // Waited for even after a failure: the producer gives up on its own within `patience`.
  bool ok = succeeded(producer_pid);
  return status == 0 && ok ? 0 : 1;
}  // the ring detaches, then `segment` closes and, as its creator with remove_on_close, unlinks it

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "producer") return producer(argv[2]);
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [producer shm:/NAME]\n", argv[0]);
    return 2;
  }
  if (int status = consumer(argv[0]); status != 0) return status;
  say("ok");
  return 0;
}
