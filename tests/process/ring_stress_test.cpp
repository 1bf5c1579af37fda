// Ten million messages through the ring between real processes, SPSC and from three producer
// processes: random sizes, checksums, order per producer; none lost, duplicated or reordered.
// The test names contain "Stress" so ctest can label them (and keep the default suite fast).
// IPCX_RING_STRESS_MESSAGES overrides the count (e.g. for a ThreadSanitizer build).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/crc32c.hpp"
#include "ipcx/ring.hpp"
#include "process.hpp"
#include "scratch.hpp"
#include "shared_region.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::errc;
using ipcx::ring;
using ipcx::ring_producers;
using ipcx::ring_role;
using ipcx::test::child_process;
using ipcx::test::inheriting;
using ipcx::test::report;
using steady = std::chrono::steady_clock;

// --- a memfd mapping both processes share --------------------------------------------------------

using ipcx::test::shared_region;

// --- checksummed messages of random sizes --------------------------------------------------------
// [producer u32][crc32c u32][sequence u64][body]: the size and the body follow from (producer,
// sequence): the body is a slice of a fixed pseudo-random pool, so making and checking ten million
// of them stays cheap even in a sanitizer build. The consumer checks the size, the checksum, the
// body and the order of each producer.

constexpr std::size_t max_message = 4096;

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

const std::vector<std::byte>& pool() {
  static const std::vector<std::byte> bytes = [] {
    std::vector<std::byte> out(1 << 16);
    for (std::size_t i = 0; i < out.size(); i += 8) {
      std::uint64_t v = mix(i);
      std::memcpy(out.data() + i, &v, 8);
    }
    return out;
  }();
  return bytes;
}

struct shape {
  std::size_t size;
  std::size_t pool_offset;
};

shape shape_of(std::uint32_t producer, std::uint64_t sequence) {
  std::uint64_t r = mix((std::uint64_t{producer} << 48) ^ sequence);
  std::size_t size = (r >> 40) % 256 == 0 ? 16 + (r >> 8) % (max_message - 15)  // now and then big
                                          : 16 + r % 113;
  return {size, static_cast<std::size_t>((r >> 20) % (pool().size() - max_message))};
}

void fill(std::span<std::byte> out, std::uint32_t producer, std::uint64_t sequence) {
  auto s = shape_of(producer, sequence);
  std::memcpy(out.data() + 16, pool().data() + s.pool_offset, out.size() - 16);
  std::memcpy(out.data(), &producer, 4);
  std::memcpy(out.data() + 8, &sequence, 8);
  std::uint32_t crc = ipcx::detail::crc32c(out.subspan(8));
  std::memcpy(out.data() + 4, &crc, 4);
}

// Checks one message; nullptr when fine, else what is wrong.
const char* verify(std::span<const std::byte> in, std::vector<std::uint64_t>& next) {
  if (in.size() < 16) return "a message shorter than its header";
  std::uint32_t producer = 0, crc = 0;
  std::uint64_t sequence = 0;
  std::memcpy(&producer, in.data(), 4);
  std::memcpy(&crc, in.data() + 4, 4);
  std::memcpy(&sequence, in.data() + 8, 8);
  if (producer >= next.size()) return "an unknown producer";
  if (crc != ipcx::detail::crc32c(in.subspan(8))) return "a checksum mismatch";
  if (sequence != next[producer]) return "a sequence number out of order";
  auto s = shape_of(producer, sequence);
  if (in.size() != s.size) return "the wrong size for its sequence number";
  if (std::memcmp(in.data() + 16, pool().data() + s.pool_offset, in.size() - 16) != 0)
    return "a body that differs from what was sent";
  ++next[producer];
  return nullptr;
}

// Sends `count` messages as producer `id`, half by send() and half by borrow()/publish().
ipcx::result<void> produce(ring& tx, std::uint32_t id, std::uint64_t count, ipcx::deadline until) {
  std::vector<std::byte> buffer(max_message);
  for (std::uint64_t s = 0; s < count; ++s) {
    std::size_t size = shape_of(id, s).size;
    if (s % 2 == 0) {
      fill(std::span(buffer.data(), size), id, s);
      if (auto ok = tx.send(std::span(buffer.data(), size), until); !ok) return ok;
    } else {
      auto out = tx.borrow(size, until);
      if (!out) return std::unexpected(out.error());
      fill(*out, id, s);
      if (auto ok = tx.publish(); !ok) return ok;
    }
  }
  return {};
}

// Receives `count` messages from `producers` producers, half by recv() and half by peek().
std::string consume(ring& rx, std::size_t producers, std::uint64_t count, ipcx::deadline until) {
  std::vector<std::uint64_t> next(producers, 0);
  std::vector<std::byte> buffer(max_message);
  for (std::uint64_t i = 0; i < count; ++i) {
    const char* problem = nullptr;
    if (i % 2 == 0) {
      auto n = rx.recv(buffer, until);
      if (!n) return "recv: " + n.error().message();
      problem = verify(std::span(buffer.data(), *n), next);
    } else {
      auto in = rx.peek(until);
      if (!in) return "peek: " + in.error().message();
      problem = verify(*in, next);
      if (auto ok = rx.release(); !ok) return "release: " + ok.error().message();
    }
    if (problem != nullptr) return "message " + std::to_string(i) + ": " + problem;
  }
  return {};
}

std::uint64_t total_messages() {
  const char* env = std::getenv("IPCX_RING_STRESS_MESSAGES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 10'000'000;
}

// args: fd, producer id, count
IPCX_HELPER(ring_stress_producer) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer);
  if (!tx) return report("attach", tx.error());
  ipcx::test::ready();
  auto until = ipcx::deadline::at(steady::now() + 110s);  // one deadline, no clock per message
  if (auto ok = produce(*tx, static_cast<std::uint32_t>(std::stoul(args[1])), std::stoull(args[2]),
                        until);
      !ok)
    return report("produce", ok.error());
  return 0;
}

class RingStress : public ipcx::test::ipc_test {
 protected:
  // Runs `producers` producer processes of `total / producers` messages each into a ring this
  // process consumes, and checks every message.
  void run(ring_producers mode, int producers) {
    const std::uint64_t total = total_messages();
    auto share = [&](int id) {  // the first producers take the remainder
      auto n = static_cast<std::uint64_t>(producers);
      return total / n + (static_cast<std::uint64_t>(id) < total % n ? 1 : 0);
    };
    constexpr std::size_t capacity = 1 << 20;
    auto region = shared_region::create(ring::region_size(capacity));
    auto rx = ring::create(
        region.bytes(),
        {.capacity_bytes = capacity, .max_message = max_message, .producers = mode, .spin = 128});
    ASSERT_TRUE(rx) << rx.error().message();
    std::vector<child_process> children;
    for (int id = 0; id < producers; ++id)
      children.push_back(child_process::helper(
          "ring_stress_producer",
          {std::to_string(region.fd()), std::to_string(id), std::to_string(share(id))},
          inheriting({region.fd()})));
    for (auto& c : children) ASSERT_TRUE(c.wait_ready());
    auto t0 = steady::now();
    auto problem =
        consume(*rx, static_cast<std::size_t>(producers), total, ipcx::deadline::at(t0 + 110s));
    double seconds = std::chrono::duration<double>(steady::now() - t0).count();
    EXPECT_EQ(problem, "");
    for (auto& c : children) EXPECT_EQ(c.wait_exit(60s), 0) << c.stderr_text();
    std::vector<std::byte> buffer(4096);
    auto rest = rx->try_recv(buffer);
    ASSERT_TRUE(rest) << rest.error().message();
    EXPECT_FALSE(*rest) << "a message more than was sent";
    std::printf("%llu messages from %d producer process(es) in %.1f s (%.2f M msg/s)\n",
                static_cast<unsigned long long>(total), producers, seconds,
                static_cast<double>(total) / seconds / 1e6);
  }
};

TEST_F(RingStress, TenMillionRandomSizedMessagesBetweenTwoProcessesArriveIntact) {
  run(ring_producers::single, 1);
}

TEST_F(RingStress, TenMillionMessagesFromThreeProducerProcessesArriveIntactInOrderPerProducer) {
  run(ring_producers::multi, 3);
}

}  // namespace
