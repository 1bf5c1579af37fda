// ipcx::semaphore between real processes: POSIX named (sem:/name), unnamed in a shared segment, and
// System V (sysv-sem:KEY) with SEM_UNDO.
#include "ipcx/semaphore.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "core/syscall.hpp"
#include "ipcx/shared_memory.hpp"
#include "process.hpp"
#include "scratch.hpp"
#include "sync/futex.hpp"

namespace {

using ipcx::test::as_nobody;
using namespace std::chrono_literals;
using ipcx::errc;
using ipcx::semaphore;
using ipcx::shared_memory;
using ipcx::test::child_process;
using ipcx::test::report;
using ipcx::test::spawn_options;

constexpr int kItems = 200;
// Layout of the segment the unnamed-semaphore tests share: two semaphores, then the item.
constexpr std::size_t kItemsOffset = 0;
constexpr std::size_t kSlotsOffset = 64;
constexpr std::size_t kValueOffset = 128;
constexpr std::size_t kSegmentSize = 4096;

std::span<std::byte> at(const shared_memory& seg, std::size_t offset) {
  return seg.bytes().subspan(offset);
}

// The producer's loop: for each item, wait for a free slot, write the item, post it.
int produce(semaphore& slots, semaphore& items, std::span<std::byte> value) {
  for (std::int32_t i = 0; i < kItems; ++i) {
    if (auto got = slots.wait(5s); !got) return report("slots.wait", got.error());
    std::memcpy(value.data(), &i, sizeof i);
    if (auto posted = items.post(); !posted) return report("items.post", posted.error());
  }
  return 0;
}

// Joins segment args[0] and named semaphores args[1] (items) and args[2] (slots) and produces.
IPCX_HELPER(produce_named) {
  auto seg = shared_memory::join(args[0], kSegmentSize);
  if (!seg) return report("join segment", seg.error());
  ipcx::semaphore_options options{.undo = false};
  auto items = semaphore::join(args[1], options);
  if (!items) return report("join items", items.error());
  auto slots = semaphore::join(args[2], options);
  if (!slots) return report("join slots", slots.error());
  return produce(*slots, *items, at(*seg, kValueOffset));
}

// Joins segment args[0] and attaches the unnamed semaphores in it, then produces.
IPCX_HELPER(produce_unnamed) {
  auto seg = shared_memory::join(args[0], kSegmentSize);
  if (!seg) return report("join segment", seg.error());
  auto items = semaphore::attach(at(*seg, kItemsOffset));
  if (!items) return report("attach items", items.error());
  auto slots = semaphore::attach(at(*seg, kSlotsOffset));
  if (!slots) return report("attach slots", slots.error());
  return produce(*slots, *items, at(*seg, kValueOffset));
}

// Joins args[0], takes it (SEM_UNDO), says ready and sleeps until killed.
IPCX_HELPER(hold_until_killed) {
  auto sem = semaphore::join(args[0]);
  if (!sem) return report("join", sem.error());
  if (auto got = sem->wait(5s); !got) return report("wait", got.error());
  ipcx::test::ready();
  std::this_thread::sleep_for(30s);
  return 1;
}

// Joins args[0] (undo = args[1] == "undo"), posts once and exits.
IPCX_HELPER(post_and_exit) {
  auto sem = semaphore::join(args[0], {.undo = args[1] == "undo"});
  if (!sem) return report("join", sem.error());
  if (auto posted = sem->post(); !posted) return report("post", posted.error());
  return 0;
}

// join(args[0]); exits 0 only if that fails with errno args[1] and a message containing args[2].
IPCX_HELPER(expect_join_error) {
  auto sem = semaphore::join(args[0]);
  if (sem) {
    std::fprintf(stderr, "join succeeded\n");
    return 1;
  }
  std::fprintf(stderr, "%s\n", sem.error().message().c_str());
  bool right_code =
      sem.error().code() == std::error_code(std::stoi(args[1]), std::generic_category());
  return right_code && sem.error().message().find(args[2]) != std::string::npos ? 0 : 1;
}

// Joins segment args[0], says ready, waits until the parent sleeps on the futex word at offset 0,
// then stores 1 and wakes it.
IPCX_HELPER(futex_waker) {
  auto seg = shared_memory::join(args[0], kSegmentSize);
  if (!seg) return report("join segment", seg.error());
  auto* word = reinterpret_cast<std::atomic<std::uint32_t>*>(seg->bytes().data());
  ipcx::test::ready();
  std::this_thread::sleep_for(20ms);  // let the parent go to sleep first (not required to pass)
  word->store(1, std::memory_order_release);
  ipcx::detail::futex_wake(*word, 1);
  return 0;
}

class Semaphore : public ipcx::test::ipc_test {
 protected:
  std::string posix_address(const std::string& stem) { return "sem:" + scratch_.ipc_name(stem); }
  std::string sysv_address(const std::string& stem) {
    return "sysv-sem:" + std::to_string(scratch_.key(stem));
  }

  // The consumer's side: takes kItems items from a producer child, in order.
  void consume(semaphore& slots, semaphore& items, const shared_memory& seg, child_process& child) {
    for (std::int32_t i = 0; i < kItems; ++i) {
      auto got = items.wait(5s);
      ASSERT_TRUE(got) << got.error().message() << "\n" << child.stderr_text();
      std::int32_t value = -1;
      std::memcpy(&value, at(seg, kValueOffset).data(), sizeof value);
      ASSERT_EQ(value, i);
      ASSERT_TRUE(slots.post());
    }
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  }

  void produce_consume_named(const std::string& items_address, const std::string& slots_address) {
    auto seg_address = "shm:" + scratch_.ipc_name("seg");
    auto seg = shared_memory::create(seg_address, kSegmentSize, {.remove_on_close = true});
    ASSERT_TRUE(seg) << seg.error().message();
    // undo = false: the producer posts and exits; with SEM_UNDO its exit would take the posts back.
    ipcx::semaphore_options options{.remove_on_close = true, .undo = false};
    auto items = semaphore::create(items_address, 0, options);
    ASSERT_TRUE(items) << items.error().message();
    auto slots = semaphore::create(slots_address, 1, options);
    ASSERT_TRUE(slots) << slots.error().message();
    auto child =
        child_process::helper("produce_named", {seg_address, items_address, slots_address});
    consume(*slots, *items, *seg, child);
  }
};

TEST_F(Semaphore, ProducerAndConsumerProcessesTakeTurnsThroughNamedPosixSemaphores) {
  produce_consume_named(posix_address("items"), posix_address("slots"));
}

TEST_F(Semaphore, ProducerAndConsumerProcessesTakeTurnsThroughSysvSemaphores) {
  produce_consume_named(sysv_address("items"), sysv_address("slots"));
}

TEST_F(Semaphore, ProducerAndConsumerProcessesTakeTurnsThroughUnnamedSemaphoresInASegment) {
  auto seg_address = "shm:" + scratch_.ipc_name("seg");
  auto seg = shared_memory::create(seg_address, kSegmentSize, {.remove_on_close = true});
  ASSERT_TRUE(seg) << seg.error().message();
  auto items = semaphore::in(at(*seg, kItemsOffset), 0);
  ASSERT_TRUE(items) << items.error().message();
  auto slots = semaphore::in(at(*seg, kSlotsOffset), 1);
  ASSERT_TRUE(slots) << slots.error().message();
  EXPECT_EQ(items->address(), "sem:(unnamed)");
  auto child = child_process::helper("produce_unnamed", {seg_address});
  consume(*slots, *items, *seg, child);
}

TEST_F(Semaphore, AWaitWithADeadlineTimesOutOnEveryKind) {
  auto seg = shared_memory::create_memfd(kSegmentSize);
  ASSERT_TRUE(seg) << seg.error().message();
  auto named = semaphore::create(posix_address("s"), 0, {.remove_on_close = true});
  ASSERT_TRUE(named) << named.error().message();
  auto sysv = semaphore::create(sysv_address("s"), 0, {.remove_on_close = true});
  ASSERT_TRUE(sysv) << sysv.error().message();
  auto unnamed = semaphore::in(at(*seg, 0), 0);
  ASSERT_TRUE(unnamed) << unnamed.error().message();
  for (semaphore* sem : {&*named, &*sysv, &*unnamed}) {
    auto start = std::chrono::steady_clock::now();
    auto got = sem->wait(50ms);
    auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(got) << sem->address();
    EXPECT_EQ(got.error(), errc::timed_out) << got.error().message();
    EXPECT_EQ(got.error().message(), "semaphore::wait(\"" + sem->address() + "\"): timed out");
    EXPECT_GE(waited, 50ms) << sem->address();
    EXPECT_LT(waited, 1s) << sem->address();
    auto now = sem->wait(ipcx::deadline::immediate());
    ASSERT_FALSE(now);
    EXPECT_EQ(now.error(), errc::timed_out);
    auto tried = sem->try_wait();
    ASSERT_TRUE(tried) << tried.error().message();
    EXPECT_FALSE(*tried);
    ASSERT_TRUE(sem->post());
    auto value = sem->value();
    ASSERT_TRUE(value) << value.error().message();
    EXPECT_EQ(*value, 1u);
    tried = sem->try_wait();
    ASSERT_TRUE(tried) << tried.error().message();
    EXPECT_TRUE(*tried);
    ASSERT_TRUE(sem->post());
    EXPECT_TRUE(sem->wait(50ms)) << sem->address();
  }
}

TEST_F(Semaphore, ASysvHolderKilledWithSigkillReleasesTheSemaphore) {
  auto where = sysv_address("lock");
  auto sem = semaphore::create(where, 1, {.remove_on_close = true});
  ASSERT_TRUE(sem) << sem.error().message();
  auto child = child_process::helper("hold_until_killed", {where});
  ASSERT_TRUE(child.wait_ready());
  auto held = sem->try_wait();
  ASSERT_TRUE(held) << held.error().message();
  EXPECT_FALSE(*held) << "the child holds it";
  child.kill(SIGKILL);
  auto got = sem->wait(2s);
  EXPECT_TRUE(got) << got.error().message();
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
}

TEST_F(Semaphore, SemUndoTakesBackThePostsOfAProcessThatExitsAndUndoFalseKeepsThem) {
  auto where = sysv_address("count");
  auto sem = semaphore::create(where, 0, {.remove_on_close = true});
  ASSERT_TRUE(sem) << sem.error().message();
  auto kept = child_process::helper("post_and_exit", {where, "no-undo"});
  ASSERT_EQ(kept.wait_exit(), 0) << kept.stderr_text();
  EXPECT_EQ(sem->value().value_or(99), 1u);
  auto undone = child_process::helper("post_and_exit", {where, "undo"});
  ASSERT_EQ(undone.wait_exit(), 0) << undone.stderr_text();
  EXPECT_EQ(sem->value().value_or(99), 1u) << "the exit reverted the undo child's post";
}

TEST_F(Semaphore, CreateExistingFailsWithExistsAndJoinMissingWithNotFound) {
  for (const auto& where : {posix_address("s"), sysv_address("s")}) {
    auto missing = semaphore::join(where);
    ASSERT_FALSE(missing) << where;
    EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory) << missing.error().message();
    auto not_there = semaphore::remove(where);
    ASSERT_FALSE(not_there) << where;
    EXPECT_EQ(not_there.error(), std::errc::no_such_file_or_directory);
    auto first = semaphore::create(where, 0);
    ASSERT_TRUE(first) << first.error().message();
    auto second = semaphore::create(where, 0);
    ASSERT_FALSE(second) << where;
    EXPECT_EQ(second.error(), std::errc::file_exists) << second.error().message();
    EXPECT_NE(second.error().message().find("(\"" + where + "\"): file exists"), std::string::npos)
        << second.error().message();
    auto opened = semaphore::open(where, 5);
    ASSERT_TRUE(opened) << opened.error().message();
    EXPECT_EQ(opened->value().value_or(99), 0u) << "open joined rather than created";
    EXPECT_TRUE(semaphore::remove(where));
  }
}

TEST_F(Semaphore, NobodyIsDeniedAPrivateSemaphore) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  for (const auto& [where, call] : {std::pair{posix_address("private"), std::string("sem_open")},
                                    std::pair{sysv_address("private"), std::string("semget")}}) {
    auto sem = semaphore::create(where, 1, {.remove_on_close = true});
    ASSERT_TRUE(sem) << sem.error().message();
    auto child = child_process::helper(
        "expect_join_error",
        {where, std::to_string(EACCES), call + "(\"" + where + "\"): permission denied"},
        as_nobody());
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  }
}

TEST_F(Semaphore, MalformedAddressesAreRejectedNamingTheInput) {
  struct bad {
    const char* text;
    const char* detail;
  };
  for (const auto& [text, detail] : {
           bad{"sem:name", "expected sem:/name (a name starting with '/')"},
           bad{"sem:/a/b", "expected sem:/name (no '/' after the first character)"},
           bad{"sysv-sem:0", "expected sysv-sem:KEY (KEY a positive number"},
           bad{"sysv-sem:12abc", "expected sysv-sem:KEY (KEY a positive number"},
           bad{"sysv-sem:/a/../b", "expected sysv-sem:KEY (\"..\" is not allowed)"},
           bad{"mq:/x", "unknown scheme; expected sem:/name or sysv-sem:KEY"},
       }) {
    auto sem = semaphore::create(text, 0);
    ASSERT_FALSE(sem) << text;
    EXPECT_EQ(sem.error(), errc::bad_address);
    EXPECT_NE(sem.error().message().find(std::string("parse_address(\"") + text + "\")"),
              std::string::npos)
        << sem.error().message();
    EXPECT_NE(sem.error().message().find(detail), std::string::npos) << sem.error().message();
  }
  auto too_large = semaphore::create(sysv_address("big"), 40000);
  ASSERT_FALSE(too_large);
  EXPECT_EQ(too_large.error(), std::errc::result_out_of_range) << too_large.error().message();
}

TEST_F(Semaphore, AnUnnamedSemaphoreNeedsRoomAndAlignment) {
  alignas(semaphore::alignment) std::byte room[semaphore::footprint + semaphore::alignment];
  auto small = semaphore::in(std::span(room, semaphore::footprint - 1), 0);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error(), std::errc::invalid_argument);
  auto misaligned = semaphore::attach(std::span(room + 1, semaphore::footprint));
  ASSERT_FALSE(misaligned);
  EXPECT_EQ(misaligned.error(), std::errc::invalid_argument);
}

TEST_F(Semaphore, AFutexWaitInOneProcessIsWokenByAnotherThroughASharedSegment) {
  auto seg_address = "shm:" + scratch_.ipc_name("seg");
  auto seg = shared_memory::create(seg_address, kSegmentSize, {.remove_on_close = true});
  ASSERT_TRUE(seg) << seg.error().message();
  auto* word = reinterpret_cast<std::atomic<std::uint32_t>*>(seg->bytes().data());
  auto child = child_process::helper("futex_waker", {seg_address});
  ASSERT_TRUE(child.wait_ready());
  ipcx::deadline until(5s);
  while (word->load(std::memory_order_acquire) == 0) {
    auto woke = ipcx::detail::futex_wait(*word, 0, until);
    ASSERT_TRUE(woke) << woke.error().message();
    ASSERT_TRUE(*woke) << "timed out: the wake from the other process was lost";
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(Semaphore, AFutexWaitEndsAtItsDeadlineAndSeesAChangedValueAtOnce) {
  std::atomic<std::uint32_t> word{7};
  auto changed = ipcx::detail::futex_wait(word, 6, 5s);
  ASSERT_TRUE(changed) << changed.error().message();
  EXPECT_TRUE(*changed) << "the word did not hold the expected value: EAGAIN, true";
  auto now = ipcx::detail::futex_wait(word, 7, ipcx::deadline::immediate());
  ASSERT_TRUE(now);
  EXPECT_FALSE(*now);
  // An EINTR on the way (injected) is retried against the same absolute deadline.
  ipcx::detail::injected_eintr = 1;
  auto start = std::chrono::steady_clock::now();
  auto timed = ipcx::detail::futex_wait(word, 7, 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ipcx::detail::injected_eintr = 0;
  ASSERT_TRUE(timed) << timed.error().message();
  EXPECT_FALSE(*timed);
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 1s);
}

}  // namespace
