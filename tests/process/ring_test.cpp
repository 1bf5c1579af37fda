// The shared-memory ring between real processes (and threads, for the ThreadSanitizer run): data
// integrity, peer death, a scribbling peer, zero-copy, sleeping and waking, eventfd. The ring is
// put in a memfd that the helper inherits, so these tests do not depend on a segment type; the
// layout and single-process behaviour are in tests/unit/ring_layout_test.cpp, the 10-million
// message runs in ring_stress_test.cpp.
#include "ipcx/ring.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/crc32c.hpp"
#include "process.hpp"
#include "ring/layout.hpp"
#include "scratch.hpp"
#include "shared_region.hpp"

namespace {

namespace L = ipcx::detail::ring_layout;
using namespace std::chrono_literals;
using ipcx::errc;
using ipcx::ring;
using ipcx::ring_producers;
using ipcx::ring_role;
using ipcx::test::child_process;
using ipcx::test::inheriting;
using ipcx::test::report;
using ipcx::test::wait_until_blocked_in;
using steady = std::chrono::steady_clock;

// --- a memfd mapping both processes share --------------------------------------------------------

using ipcx::test::shared_region;

// --- checksummed messages of random sizes --------------------------------------------------------
// [producer u32][crc32c u32][sequence u64][body]: the size and the body follow from (producer,
// sequence), so the consumer checks the size, the checksum and the order of each producer.

std::uint64_t mix(std::uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::size_t size_for(std::uint32_t producer, std::uint64_t sequence, std::size_t max_message) {
  std::uint64_t r = mix((std::uint64_t{producer} << 48) ^ sequence);
  if ((r >> 40) % 256 == 0) return 16 + (r >> 8) % (max_message - 15);  // now and then a big one
  return 16 + r % 113;
}

void fill(std::span<std::byte> out, std::uint32_t producer, std::uint64_t sequence) {
  std::uint64_t state = mix((std::uint64_t{producer} << 48) ^ sequence ^ 0x5555);
  for (std::size_t i = 16; i < out.size(); i += 8) {
    std::uint64_t v = mix(state++);
    std::memcpy(out.data() + i, &v, std::min<std::size_t>(8, out.size() - i));
  }
  std::memcpy(out.data(), &producer, 4);
  std::memcpy(out.data() + 8, &sequence, 8);
  std::uint32_t crc = ipcx::detail::crc32c(out.subspan(8));
  std::memcpy(out.data() + 4, &crc, 4);
}

// Checks one message; empty string when fine, else what is wrong.
std::string verify(std::span<const std::byte> in, std::vector<std::uint64_t>& next,
                   std::size_t max_message) {
  if (in.size() < 16) return "message of " + std::to_string(in.size()) + " bytes";
  std::uint32_t producer = 0, crc = 0;
  std::uint64_t sequence = 0;
  std::memcpy(&producer, in.data(), 4);
  std::memcpy(&crc, in.data() + 4, 4);
  std::memcpy(&sequence, in.data() + 8, 8);
  if (producer >= next.size()) return "producer " + std::to_string(producer);
  if (crc != ipcx::detail::crc32c(in.subspan(8)))
    return "checksum mismatch, producer " + std::to_string(producer);
  if (sequence != next[producer])
    return "producer " + std::to_string(producer) + " sequence " + std::to_string(sequence) +
           ", expected " + std::to_string(next[producer]);
  if (in.size() != size_for(producer, sequence, max_message))
    return "size " + std::to_string(in.size()) + " for sequence " + std::to_string(sequence);
  ++next[producer];
  return {};
}

// Sends `count` messages as producer `id`, half by send() and half by borrow()/publish(), each
// within 10 s, or with no deadline when `untimed`.
ipcx::result<void> produce(ring& tx, std::uint32_t id, std::uint64_t count, bool untimed = false) {
  std::vector<std::byte> buffer(tx.max_message());
  for (std::uint64_t s = 0; s < count; ++s) {
    std::size_t size = size_for(id, s, tx.max_message());
    const ipcx::deadline until = untimed ? ipcx::deadline::never() : ipcx::deadline(10s);
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
std::string consume(ring& rx, std::size_t producers, std::uint64_t count) {
  std::vector<std::uint64_t> next(producers, 0);
  std::vector<std::byte> buffer(rx.max_message());
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string problem;
    if (i % 2 == 0) {
      auto n = rx.recv(buffer, 10s);
      if (!n) return "recv: " + n.error().message();
      problem = verify(std::span(buffer.data(), *n), next, rx.max_message());
    } else {
      auto in = rx.peek(10s);
      if (!in) return "peek: " + in.error().message();
      problem = verify(*in, next, rx.max_message());
      if (auto ok = rx.release(); !ok) return "release: " + ok.error().message();
    }
    if (!problem.empty()) return "message " + std::to_string(i) + ": " + problem;
  }
  return {};
}

// --- helpers (run in a child process) ------------------------------------------------------------

// args: fd, producer id, count, spin
IPCX_HELPER(ring_producer) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer,
                         {.spin = static_cast<std::uint32_t>(std::stoul(args[3]))});
  if (!tx) return report("attach", tx.error());
  ipcx::test::ready();
  if (auto ok = produce(*tx, static_cast<std::uint32_t>(std::stoul(args[1])), std::stoull(args[2]));
      !ok)
    return report("produce", ok.error());
  return 0;
}

// args: fd, producers, count
IPCX_HELPER(ring_consumer) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer);
  if (!rx) return report("attach", rx.error());
  ipcx::test::ready();
  auto problem = consume(*rx, std::stoul(args[1]), std::stoull(args[2]));
  if (!problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 1;
  }
  return 0;
}

// args: fd. Sends until it is killed.
IPCX_HELPER(ring_produce_forever) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer);
  if (!tx) return report("attach", tx.error());
  ipcx::test::ready();
  auto ok = produce(*tx, 0, ~std::uint64_t{0});
  return report("produce", ok.error());
}

// args: fd. Receives until it is killed.
IPCX_HELPER(ring_consume_forever) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer);
  if (!rx) return report("attach", rx.error());
  ipcx::test::ready();
  auto problem = consume(*rx, 1, ~std::uint64_t{0});
  std::fprintf(stderr, "%s\n", problem.c_str());
  return 1;
}

// args: fd, spin. Receives with no deadline (the untimed sleep) until an error, which it prints;
// exits 0 when that error is peer_dead.
IPCX_HELPER(ring_receive_until_error) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer,
                         {.spin = static_cast<std::uint32_t>(std::stoul(args[1]))});
  if (!rx) return report("attach", rx.error());
  std::vector<std::byte> buffer(rx->max_message());
  ipcx::test::ready();
  ipcx::result<std::size_t> got = 0;
  while (got) got = rx->recv(buffer);
  std::fprintf(stderr, "%s\n", got.error().message().c_str());
  return got.error() == errc::peer_dead ? 0 : 1;
}

// args: fd, spin. Sends with no deadline until an error, which it prints; exits 0 when that error
// is peer_dead.
IPCX_HELPER(ring_send_until_error) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer,
                         {.spin = static_cast<std::uint32_t>(std::stoul(args[1]))});
  if (!tx) return report("attach", tx.error());
  ipcx::test::ready();
  auto sent = produce(*tx, 0, ~std::uint64_t{0}, true);
  std::fprintf(stderr, "%s\n", sent.error().message().c_str());
  return sent.error() == errc::peer_dead ? 0 : 1;
}

// args: fd. A multi-producer that borrows a record and never publishes it.
IPCX_HELPER(ring_borrow_and_hang) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer);
  if (!tx) return report("attach", tx.error());
  auto out = tx->borrow(100, 5s);
  if (!out) return report("borrow", out.error());
  ipcx::test::ready();
  std::this_thread::sleep_for(30s);
  return 0;
}

// args: fd, field, value, delay ms. Scribbles one header field after the delay.
IPCX_HELPER(ring_scribble) {
  auto region = shared_region::map(std::stoi(args[0]));
  ipcx::test::ready();
  std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(args[3])));
  L::header& h = *reinterpret_cast<L::header*>(region.bytes().data());
  std::uint64_t value = std::stoull(args[2]);
  const std::string& field = args[1];
  if (field == "magic")
    h.magic.store(value);
  else if (field == "version")
    h.version = static_cast<std::uint32_t>(value);
  else if (field == "capacity")
    h.capacity = value;
  else if (field == "head")
    h.head.store(value);
  else if (field == "tail")
    h.tail.store(value);
  else
    return 2;
  return 0;
}

// args: fd, count. Zero-copy: borrows, fills in place, publishes.
IPCX_HELPER(ring_zero_copy_writer) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer);
  if (!tx) return report("attach", tx.error());
  for (int i = 0, n = std::stoi(args[1]); i < n; ++i) {
    auto out = tx->borrow(1000, 5s);
    if (!out) return report("borrow", out.error());
    for (std::size_t k = 0; k < out->size(); ++k)
      (*out)[k] = std::byte(static_cast<unsigned char>(i + k));
    if (auto ok = tx->publish(); !ok) return report("publish", ok.error());
  }
  return 0;
}

// args: fd, wait ms or "never". An adaptive consumer that waits on an empty ring until its
// deadline, or until it is killed.
IPCX_HELPER(ring_idle_receiver) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer);
  if (!rx) return report("attach", rx.error());
  std::vector<std::byte> buffer(rx->max_message());
  ipcx::test::ready();
  if (args[1] == "never") {
    auto got = rx->recv(buffer);
    if (got) std::fprintf(stderr, "a message came to an idle ring\n");
    return got ? 1 : report("recv", got.error());
  }
  auto got = rx->recv(buffer, std::chrono::milliseconds(std::stoi(args[1])));
  return !got && got.error() == errc::timed_out ? 0 : 3;
}

// args: fd, count. A consumer that never spins: every wait is a futex sleep.
IPCX_HELPER(ring_blocking_receiver) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer, {.spin = 0});
  if (!rx) return report("attach", rx.error());
  ipcx::test::ready();
  auto problem = consume(*rx, 1, std::stoull(args[1]));
  if (!problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 1;
  }
  return 0;
}

// args: fd, count, spin, "never" or "5s". Receives `count` messages that each carry their send
// time (steady clock, shared by all processes) and fails if one took longer than 50 ms to wake it:
// a lost wake-up would show as the 100 ms peer-check period or the 250 ms patrol period.
IPCX_HELPER(ring_timed_receiver) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer,
                         {.spin = static_cast<std::uint32_t>(std::stoul(args[2]))});
  if (!rx) return report("attach", rx.error());
  // "never": the untimed sleep, where a lost wake-up would show as the patrol's period.
  const ipcx::deadline until = args[3] == "never" ? ipcx::deadline::never() : ipcx::deadline(5s);
  ipcx::test::ready();
  std::vector<std::byte> buffer(rx->max_message());
  for (int i = 0, n = std::stoi(args[1]); i < n; ++i) {
    auto got = rx->recv(buffer, until);
    if (!got) return report("recv", got.error());
    steady::rep sent = 0;
    std::memcpy(&sent, buffer.data(), sizeof sent);
    auto late = steady::now() - steady::time_point(steady::duration(sent));
    if (late > 50ms) {
      std::fprintf(stderr, "message %d woke the receiver after %lld us\n", i,
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::microseconds>(late).count()));
      return 1;
    }
  }
  return 0;
}

// args: fd, eventfd. Sends one message a little after it is ready.
IPCX_HELPER(ring_eventfd_producer) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto tx = ring::attach(region.bytes(), ring_role::producer, {.eventfd = std::stoi(args[1])});
  if (!tx) return report("attach", tx.error());
  ipcx::test::ready();
  std::this_thread::sleep_for(50ms);
  std::string ping = "ping";
  if (auto ok = tx->send(std::as_bytes(std::span(ping.data(), ping.size())), 5s); !ok)
    return report("send", ok.error());
  return 0;
}

// args: fd. Attaches as the consumer and waits to be killed.
IPCX_HELPER(ring_hold_consumer) {
  auto region = shared_region::map(std::stoi(args[0]));
  auto rx = ring::attach(region.bytes(), ring_role::consumer);
  if (!rx) return report("attach", rx.error());
  ipcx::test::ready();
  std::this_thread::sleep_for(30s);
  return 0;
}

class Ring : public ipcx::test::ipc_test {
 protected:
  // A region holding a ring formatted by this process, which takes `role`.
  ring make(ring_role role, std::size_t capacity, std::size_t max_message,
            ring_producers producers = ring_producers::single, std::uint32_t spin = 256,
            bool eventfd = false) {
    region_.emplace(shared_region::create(ring::region_size(capacity)));
    auto r = ring::create(region_->bytes(),
                          {.capacity_bytes = capacity,
                           .max_message = max_message,
                           .producers = producers,
                           .spin = spin,
                           .eventfd = eventfd},
                          role);
    if (!r) {
      ADD_FAILURE() << r.error().message();
      std::abort();
    }
    return std::move(*r);
  }
  std::string fd_arg() const { return std::to_string(region_->fd()); }
  ipcx::test::spawn_options pass_region() const { return inheriting({region_->fd()}); }

  std::optional<shared_region> region_;
};

// --- data integrity ------------------------------------------------------------------------------

TEST_F(Ring, CarriesRandomSizedMessagesWithChecksumsBetweenTwoProcesses) {
  auto rx = make(ring_role::consumer, 1 << 14, 2000);
  auto child =
      child_process::helper("ring_producer", {fd_arg(), "0", "20000", "256"}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  auto problem = consume(rx, 1, 20000);
  EXPECT_EQ(problem, "");
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(Ring, CarriesMessagesToAConsumerProcessFromThisOne) {
  auto tx = make(ring_role::producer, 1 << 12, 1000);
  auto child = child_process::helper("ring_consumer", {fd_arg(), "1", "20000"}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  auto ok = produce(tx, 0, 20000);
  EXPECT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(Ring, KeepsEachOfThreeProducerProcessesInOrder) {
  auto rx = make(ring_role::consumer, 1 << 13, 1000, ring_producers::multi);
  std::vector<child_process> children;
  for (int id = 0; id < 3; ++id)
    children.push_back(child_process::helper(
        "ring_producer", {fd_arg(), std::to_string(id), "8000", "256"}, pass_region()));
  for (auto& c : children) ASSERT_TRUE(c.wait_ready());
  EXPECT_EQ(consume(rx, 3, 3 * 8000), "");
  for (auto& c : children) EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
  std::vector<std::byte> buffer(1000);
  auto rest = rx.try_recv(buffer);
  ASSERT_TRUE(rest);
  EXPECT_FALSE(*rest) << "a message more than was sent";
}

// --- peer death ----------------------------------------------------------------------------------

TEST_F(Ring, ConsumerGetsPeerDeadWithinOneSecondOfItsProducerBeingKilled) {
  auto rx = make(ring_role::consumer, 1 << 12, 1000);
  auto child = child_process::helper("ring_produce_forever", {fd_arg()}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  EXPECT_EQ(consume(rx, 1, 2000), "");  // mid-stream
  child.kill(SIGKILL);
  auto killed = steady::now();
  std::vector<std::byte> buffer(1000);
  ipcx::result<std::size_t> got = 0;
  while (got) got = rx.recv(buffer, 3s);  // what it published before dying is still delivered
  auto noticed = steady::now() - killed;
  EXPECT_EQ(got.error(), errc::peer_dead) << got.error().message();
  EXPECT_NE(got.error().message().find(std::to_string(child.pid())), std::string::npos)
      << got.error().message();
  EXPECT_LT(noticed, 1s);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
}

TEST_F(Ring, ProducerGetsPeerDeadWithinOneSecondOfItsConsumerBeingKilled) {
  auto tx = make(ring_role::producer, 1 << 12, 1000);
  auto child = child_process::helper("ring_consume_forever", {fd_arg()}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  ASSERT_TRUE(produce(tx, 0, 2000));  // mid-stream
  child.kill(SIGKILL);
  auto killed = steady::now();
  std::vector<std::byte> buffer(1000, std::byte{1});
  ipcx::result<void> sent;
  while (sent) sent = tx.send(std::span(buffer.data(), 1000), 3s);  // until the ring is full
  auto noticed = steady::now() - killed;
  EXPECT_EQ(sent.error(), errc::peer_dead) << sent.error().message();
  EXPECT_LT(noticed, 1s);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
}

// Without a deadline a side sleeps untimed and relies on the process's patrol for its peer
// checks: both sides in child processes, the survivor blocking with no deadline at all.
TEST_F(Ring, SideSleepingWithoutADeadlineGetsPeerDeadWithinOneSecond) {
  struct pairing {
    const char* survivor;
    const char* victim;
  };
  for (auto [survivor_helper, victim_helper] :
       {pairing{"ring_receive_until_error", "ring_produce_forever"},
        pairing{"ring_send_until_error", "ring_consume_forever"}}) {
    for (const char* spin : {"0", "256"}) {
      SCOPED_TRACE(std::string(survivor_helper) + ", spin " + spin);
      // Formats the ring, then leaves both places to the children.
      make(ring_role::producer, 1 << 12, 1000);
      auto victim = child_process::helper(victim_helper, {fd_arg()}, pass_region());
      ASSERT_TRUE(victim.wait_ready());
      auto survivor = child_process::helper(survivor_helper, {fd_arg(), spin}, pass_region());
      ASSERT_TRUE(survivor.wait_ready());
      std::this_thread::sleep_for(100ms);  // mid-stream
      victim.kill(SIGKILL);
      auto killed = steady::now();
      // Timed to the survivor's report, not its exit (ThreadSanitizer sleeps a second at exit).
      EXPECT_TRUE(survivor.wait_stderr_contains("died", 3s));
      EXPECT_LT(steady::now() - killed, 1s);
      EXPECT_EQ(survivor.wait_exit(), 0) << survivor.stderr_text();
      EXPECT_NE(survivor.stderr_text().find(std::to_string(victim.pid())), std::string::npos)
          << survivor.stderr_text();
      EXPECT_EQ(victim.wait_exit(), 128 + SIGKILL);
    }
  }
}

TEST_F(Ring, ConsumerGetsPeerDeadWhenAProducerDiesHoldingAnUnpublishedRecord) {
  auto rx = make(ring_role::consumer, 1 << 12, 1000, ring_producers::multi);
  auto child = child_process::helper("ring_borrow_and_hang", {fd_arg()}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  // A live producer (this process) publishes behind the dead one's reservation.
  auto tx = ring::attach(region_->bytes(), ring_role::producer);
  ASSERT_TRUE(tx) << tx.error().message();
  std::string after = "after";
  ASSERT_TRUE(tx->send(std::as_bytes(std::span(after.data(), after.size())), 1s));
  std::vector<std::byte> buffer(1000);
  auto blocked = rx.try_recv(buffer);
  ASSERT_TRUE(blocked);
  EXPECT_FALSE(*blocked);
  child.kill(SIGKILL);
  auto killed = steady::now();
  auto got = rx.recv(buffer, 3s);
  auto noticed = steady::now() - killed;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::peer_dead) << got.error().message();
  EXPECT_NE(got.error().message().find("unpublished record"), std::string::npos)
      << got.error().message();
  EXPECT_LT(noticed, 1s);
}

TEST_F(Ring, SecondConsumerIsRefusedWhileTheFirstLivesAndTakesOverAfterItDies) {
  auto tx = make(ring_role::producer, 1 << 12, 1000);
  auto child = child_process::helper("ring_hold_consumer", {fd_arg()}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  auto refused = ring::attach(region_->bytes(), ring_role::consumer);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::device_or_resource_busy) << refused.error().message();
  EXPECT_NE(refused.error().message().find(std::to_string(child.pid())), std::string::npos);
  child.kill(SIGKILL);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
  auto rx = ring::attach(region_->bytes(), ring_role::consumer);
  ASSERT_TRUE(rx) << rx.error().message();
}

// --- a scribbling peer ---------------------------------------------------------------------------

TEST_F(Ring, AttachToAHeaderScribbledByAPeerFailsWithCorruptSegment) {
  struct row {
    const char* field;
    const char* value;
    const char* detail;
  };
  for (auto [field, value, detail] :
       {row{"magic", "42", "magic 0x2a"}, row{"version", "7", "version 7"},
        row{"capacity", "1000", "power of two"}, row{"head", "1000000", "do not fit capacity"},
        row{"tail", "99999992", "do not fit capacity"}}) {
    { auto formatted = make(ring_role::producer, 1 << 12, 1000); }
    auto child =
        child_process::helper("ring_scribble", {fd_arg(), field, value, "0"}, pass_region());
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
    auto rx = ring::attach(region_->bytes(), ring_role::consumer);
    ASSERT_FALSE(rx) << field;
    EXPECT_EQ(rx.error(), errc::corrupt_segment) << field << ": " << rx.error().message();
    EXPECT_NE(rx.error().message().find(detail), std::string::npos)
        << field << ": " << rx.error().message();
  }
}

TEST_F(Ring, HeaderScribbledWhileASideWaitsGivesCorruptSegmentPromptly) {
  struct row {
    ring_role role;
    const char* field;
    const char* value;
  };
  for (auto [role, field, value] :
       {row{ring_role::consumer, "head", "99999999"}, row{ring_role::consumer, "magic", "0"},
        row{ring_role::consumer, "capacity", "8192"}, row{ring_role::producer, "tail", "99999999"},
        row{ring_role::producer, "version", "2"}}) {
    auto side = make(role, 1 << 12, 1000);
    std::vector<std::byte> buffer(1000);
    auto other = ring::attach(
        region_->bytes(), role == ring_role::consumer ? ring_role::producer : ring_role::consumer);
    ASSERT_TRUE(other);
    if (role == ring_role::producer)  // fill it, so the producer waits
      while (*side.try_send(std::span(buffer.data(), 1000))) {
      }
    auto child =
        child_process::helper("ring_scribble", {fd_arg(), field, value, "50"}, pass_region());
    ASSERT_TRUE(child.wait_ready());
    auto t0 = steady::now();
    ipcx::error failed(errc::no_peer, "the call succeeded");
    if (role == ring_role::consumer) {
      if (auto got = side.recv(buffer, 3s); !got) failed = got.error();
    } else {
      if (auto sent = side.send(std::span(buffer.data(), 1000), 3s); !sent) failed = sent.error();
    }
    EXPECT_EQ(failed, errc::corrupt_segment) << field << ": " << failed.message();
    EXPECT_LT(steady::now() - t0, 1s) << field;
    EXPECT_EQ(child.wait_exit(), 0);
  }
}

// --- zero-copy -----------------------------------------------------------------------------------

TEST_F(Ring, ZeroCopyRecordsWrittenInPlaceAreReadInPlaceByTheOtherProcess) {
  auto rx = make(ring_role::consumer, 1 << 13, 1000);
  auto child = child_process::helper("ring_zero_copy_writer", {fd_arg(), "50"}, pass_region());
  auto all = region_->bytes();
  for (int i = 0; i < 50; ++i) {
    auto in = rx.peek(5s);
    ASSERT_TRUE(in) << in.error().message();
    ASSERT_EQ(in->size(), 1000u);
    EXPECT_GE(in->data(), all.data() + L::header_size);
    EXPECT_LE(in->data() + in->size(), all.data() + all.size());
    for (std::size_t k = 0; k < in->size(); ++k)
      ASSERT_EQ((*in)[k], std::byte(static_cast<unsigned char>(i + static_cast<int>(k))));
    ASSERT_TRUE(rx.release());
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

// --- waiting -------------------------------------------------------------------------------------

// CPU time a thread has run, in ns (the first field of schedstat), or -1.
// CPU time of every thread of `pid` (the patrol thread included), from /proc/PID/task/*/schedstat.
long long cpu_ns(pid_t pid) {
  std::error_code ec;
  long long total = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    long long ns = 0;
    if (!(in >> ns)) return -1;
    total += ns;
  }
  return ec ? -1 : total;
}

TEST_F(Ring, IdleAdaptiveReceiverSleepingInTheFutexUsesAlmostNoCpu) {
  // With a deadline (timed sleeps, checks every 100 ms) and without (untimed, the patrol thread
  // wakes it every 250 ms): measured over a second, after the spin budget.
  for (const char* wait_ms : {"1500", "never"}) {
    SCOPED_TRACE(wait_ms);
    { auto tx = make(ring_role::producer, 1 << 12, 1000, ring_producers::single, 2048); }
    auto child = child_process::helper("ring_idle_receiver", {fd_arg(), wait_ms}, pass_region());
    ASSERT_TRUE(child.wait_ready());
    ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_futex, 2s));
    long long before = cpu_ns(child.pid());
    auto t0 = steady::now();
    std::this_thread::sleep_for(1s);
    long long after = cpu_ns(child.pid());
    auto wall = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count();
    ASSERT_GE(before, 0) << "no /proc/PID/task/*/schedstat";
    double share = 100.0 * static_cast<double>(after - before) / static_cast<double>(wall);
    std::printf("idle receiver (%s): %lld us of CPU over %lld us (%.3f%% of a core)\n", wait_ms,
                (after - before) / 1000, static_cast<long long>(wall / 1000), share);
    EXPECT_LT(share, 0.5) << "far below 1% of a core";
    if (std::string(wait_ms) == "never") {
      child.kill(SIGKILL);
      EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
    } else {
      EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
    }
  }
}

TEST_F(Ring, ReceiverThatNeverSpinsIsWokenFromTheFutexForEachMessage) {
  auto tx = make(ring_role::producer, 1 << 12, 1000, ring_producers::single, 0);
  auto child = child_process::helper("ring_blocking_receiver", {fd_arg(), "6"}, pass_region());
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(1000);
  for (std::uint64_t s = 0; s < 6; ++s) {
    ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_futex, 2s)) << "message " << s;
    std::size_t size = size_for(0, s, 1000);
    fill(std::span(buffer.data(), size), 0, s);
    ASSERT_TRUE(tx.send(std::span(buffer.data(), size), 1s));
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

std::span<const std::byte> now_message(steady::rep& storage) {
  storage = steady::now().time_since_epoch().count();
  return std::as_bytes(std::span(&storage, 1));
}

TEST_F(Ring, AdaptiveReceiverAsleepInAnotherProcessIsWokenByEachMessage) {
  // spin 16: asleep almost at once, through the membarrier handshake; spin 0: the fenced one.
  // Both with a deadline (a timed sleep) and without (untimed, the patrol's).
  for (const char* spin : {"16", "0"}) {
    for (const char* until : {"5s", "never"}) {
      auto tx = make(ring_role::producer, 1 << 12, 1000, ring_producers::single, 16);
      auto child =
          child_process::helper("ring_timed_receiver", {fd_arg(), "8", spin, until}, pass_region());
      ASSERT_TRUE(child.wait_ready());
      for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_futex, 2s)) << "message " << i;
        steady::rep stamp;
        ASSERT_TRUE(tx.send(now_message(stamp), 1s));
      }
      EXPECT_EQ(child.wait_exit(), 0)
          << "spin " << spin << ", " << until << ": " << child.stderr_text();
    }
  }
}

TEST_F(Ring, WaitFdPollsReadableWhenAMessageArrives) {
  auto rx = make(ring_role::consumer, 1 << 12, 1000, ring_producers::single, 256, true);
  ASSERT_GE(rx.wait_fd(), 0);
  auto child =
      child_process::helper("ring_eventfd_producer", {fd_arg(), std::to_string(rx.event_fd())},
                            inheriting({region_->fd(), rx.event_fd()}));
  std::vector<std::byte> buffer(1000);
  auto none = rx.try_recv(buffer);  // arms wait_fd()
  ASSERT_TRUE(none);
  ASSERT_FALSE(*none);
  ASSERT_TRUE(child.wait_ready());
  pollfd p{.fd = rx.wait_fd(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1);
  auto got = rx.try_recv(buffer);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_TRUE(*got);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), **got), "ping");
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

// --- threads (the ThreadSanitizer run) -----------------------------------------------------------

struct threaded_case {
  ring_producers producers;
  int threads;
  std::uint32_t spin;
  const char* name;
};

class RingThreads : public ::testing::TestWithParam<threaded_case> {};

TEST_P(RingThreads, KeepOrderPerProducerWhileSidesSpinSleepAndWake) {
  const auto param = GetParam();
  const std::uint64_t per_producer = param.spin == 0 ? 3000 : 30000;
  auto region = shared_region::create(ring::region_size(1 << 12));
  auto rx = ring::create(region.bytes(), {.capacity_bytes = 1 << 12,
                                          .max_message = 600,
                                          .producers = param.producers,
                                          .spin = param.spin});
  ASSERT_TRUE(rx) << rx.error().message();
  std::vector<std::jthread> threads;
  std::atomic<int> failures{0};
  for (int id = 0; id < param.threads; ++id) {
    auto tx = ring::attach(region.bytes(), ring_role::producer);
    ASSERT_TRUE(tx) << tx.error().message();
    threads.emplace_back([&failures, id, per_producer, t = std::move(*tx)]() mutable {
      if (auto ok = produce(t, static_cast<std::uint32_t>(id), per_producer); !ok) {
        std::fprintf(stderr, "producer %d: %s\n", id, ok.error().message().c_str());
        ++failures;
      }
    });
  }
  EXPECT_EQ(consume(*rx, static_cast<std::size_t>(param.threads),
                    per_producer * static_cast<std::uint64_t>(param.threads)),
            "");
  threads.clear();  // joins
  EXPECT_EQ(failures.load(), 0);
}

// Each side falls asleep (spin 16: membarrier handshake; spin 0: fenced) and must be woken by the
// other's next publish or release well within the 100 ms a lost wake-up would cost.
class RingWake : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(RingWake, SleepingConsumerIsWokenPromptlyByEachPublish) {
  auto region = shared_region::create(ring::region_size(1 << 12));
  auto rx = ring::create(region.bytes(),
                         {.capacity_bytes = 1 << 12, .max_message = 200, .spin = GetParam()});
  auto tx = ring::attach(region.bytes(), ring_role::producer, {.spin = GetParam()});
  ASSERT_TRUE(rx && tx);
  std::jthread producer([&] {
    for (int i = 0; i < 30; ++i) {
      std::this_thread::sleep_for(3ms);
      steady::rep stamp;
      if (!tx->send(now_message(stamp), 2s)) return;
    }
  });
  std::vector<std::byte> buffer(200);
  auto worst = steady::duration::zero();
  for (int i = 0; i < 30; ++i) {
    auto got = rx->recv(buffer, 2s);
    ASSERT_TRUE(got) << got.error().message();
    steady::rep sent = 0;
    std::memcpy(&sent, buffer.data(), sizeof sent);
    worst = std::max(worst, steady::now() - steady::time_point(steady::duration(sent)));
  }
  EXPECT_LT(worst, 50ms);
}

TEST_P(RingWake, ProducerAsleepOnAFullRingIsWokenPromptlyByEachRelease) {
  auto region = shared_region::create(ring::region_size(1024));
  auto rx = ring::create(region.bytes(),
                         {.capacity_bytes = 1024, .max_message = 200, .spin = GetParam()});
  auto tx = ring::attach(region.bytes(), ring_role::producer, {.spin = GetParam()});
  ASSERT_TRUE(rx && tx);
  std::vector<std::byte> message(200);
  while (*tx->try_send(message)) {
  }
  std::atomic<steady::rep> released{0};
  std::atomic<bool> stop{false};
  std::jthread consumer([&] {
    std::vector<std::byte> buffer(200);
    while (!stop.load()) {
      std::this_thread::sleep_for(3ms);
      released.store(steady::now().time_since_epoch().count());
      (void)rx->recv(buffer, 200ms);
    }
  });
  auto worst = steady::duration::zero();
  for (int i = 0; i < 30; ++i) {
    // Each send waits for the consumer's next release or two (the ring stays full).
    auto sent = tx->send(message, 2s);
    if (!sent) stop.store(true);
    ASSERT_TRUE(sent) << sent.error().message();
    auto at = steady::time_point(steady::duration(released.load()));
    worst = std::max(worst, steady::now() - at);
  }
  stop.store(true);
  EXPECT_LT(worst, 50ms);
}

INSTANTIATE_TEST_SUITE_P(Sleepers, RingWake, ::testing::Values(16u, 0u),
                         [](const auto& param_info) {
                           return param_info.param == 0 ? std::string("Fenced")
                                                        : std::string("Membarrier");
                         });

INSTANTIATE_TEST_SUITE_P(
    Modes, RingThreads,
    ::testing::Values(threaded_case{ring_producers::single, 1, 64, "SpscAdaptive"},
                      threaded_case{ring_producers::single, 1, 0, "SpscBlocking"},
                      threaded_case{ring_producers::single, 1, ring::spin_forever, "SpscSpinning"},
                      threaded_case{ring_producers::multi, 3, 64, "MpscAdaptive"},
                      threaded_case{ring_producers::multi, 3, 0, "MpscBlocking"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
