// Shared-memory channels (shm:/name, sysv-shm:KEY, memfd:/path) between real processes: what the
// conformance suite does not cover (peer death of either side, a scribbled or truncated segment,
// several senders, nobody denied, removal).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipcx/channel.hpp"
#include "ipcx/unique_fd.hpp"
#include "process.hpp"
#include "scratch.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::unique_fd;
using ipcx::test::child_process;

int complain(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  return 1;
}

std::string text(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Joins args[0], answers each of args[1] messages with "re:" + message.
IPCX_HELPER(reply) {
  auto ch = channel::join(args[0]);
  if (!ch) return complain(ch.error().message());
  ipcx::test::ready();
  std::array<std::byte, 256> buffer{};
  for (int i = 0, n = std::stoi(args[1]); i < n; ++i) {
    auto got = ch->recv(buffer, 5s);
    if (!got) return complain(got.error().message());
    auto sent = ch->send("re:" + text(std::span(buffer.data(), *got)), 5s);
    if (!sent) return complain(sent.error().message());
  }
  return 0;
}

// Joins args[0], sends "hello", then waits to be killed.
IPCX_HELPER(send_then_wait) {
  auto ch = channel::join(args[0]);
  if (!ch) return complain(ch.error().message());
  if (auto sent = ch->send(std::string_view("hello"), 5s); !sent)
    return complain(sent.error().message());
  ipcx::test::ready();
  ::pause();
  return 0;
}

// Creates args[0] (left in place when this process dies), then waits to be killed.
IPCX_HELPER(create_then_wait) {
  auto ch = channel::create(args[0]);
  if (!ch) return complain(ch.error().message());
  ipcx::test::ready();
  ::pause();
  return 0;
}

// Joins args[0] and sends args[2] messages "ID:INDEX" with ID = args[1].
IPCX_HELPER(send_tagged) {
  auto ch = channel::join(args[0]);
  if (!ch) return complain(ch.error().message());
  ipcx::test::ready();
  for (int i = 0, n = std::stoi(args[2]); i < n; ++i) {
    auto sent = ch->send(args[1] + ":" + std::to_string(i), 5s);
    if (!sent) return complain("message " + std::to_string(i) + ": " + sent.error().message());
  }
  return 0;
}

// Joins args[0] and sends as whatever user it runs as; exit 0 only on "permission denied".
IPCX_HELPER(join_denied) {
  auto ch = channel::join(args[0]);
  if (ch) return complain("join succeeded");
  std::fprintf(stderr, "%s\n", ch.error().message().c_str());
  return ch.error() == std::errc::permission_denied ? 0 : 2;
}

class ShmChannel : public ipcx::test::ipc_test {
 protected:
  std::vector<std::string> every_kind() {
    return {"shm:" + scratch_.ipc_name("ch"), "sysv-shm:" + std::to_string(scratch_.key("ch")),
            "memfd:" + scratch_.path("ch")};
  }
};

TEST_F(ShmChannel, EachKindCarriesMessagesBothWaysBetweenTwoProcesses) {
  for (const auto& address : every_kind()) {
    SCOPED_TRACE(address);
    auto ch = channel::create(address, {.remove_on_close = true});
    ASSERT_TRUE(ch) << ch.error().message();
    auto info = ch->info();
    EXPECT_TRUE(info.ordered);
    EXPECT_FALSE(info.persistent);
    EXPECT_FALSE(info.cross_host);
    EXPECT_FALSE(info.stream);
    EXPECT_EQ(info.max_message, 65536u);
    auto child = child_process::helper("reply", {address, "3"});
    ASSERT_TRUE(child.wait_ready());
    std::array<std::byte, 256> buffer{};
    for (std::string message : {"one", "", "three"}) {
      ASSERT_TRUE(ch->send(message, 5s));
      auto got = ch->recv(buffer, 5s);
      ASSERT_TRUE(got) << got.error().message() << "\n" << child.stderr_text();
      EXPECT_EQ(text(std::span(buffer.data(), *got)), "re:" + message);
    }
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  }
}

TEST_F(ShmChannel, SenderKilledWhileTheCreatorBlocksGivesPeerDeadWithinASecond) {
  for (const auto& address : every_kind()) {
    SCOPED_TRACE(address);
    // No remove_on_close: the survivor removes the name with channel::remove below.
    auto created = channel::create(address);
    ASSERT_TRUE(created) << created.error().message();
    std::optional<channel> ch(std::move(*created));
    auto child = child_process::helper("send_then_wait", {address});
    ASSERT_TRUE(child.wait_ready());
    std::array<std::byte, 64> buffer{};
    auto got = ch->recv(buffer, 5s);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(text(std::span(buffer.data(), *got)), "hello");
    std::thread killer([&] {
      std::this_thread::sleep_for(100ms);
      child.kill(SIGKILL);
    });
    auto start = std::chrono::steady_clock::now();
    auto after = ch->recv(buffer, 5s);
    auto waited = std::chrono::steady_clock::now() - start;
    killer.join();
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error(), errc::peer_dead) << after.error().message();
    EXPECT_LT(waited, 1100ms);
    ch.reset();
    if (address.starts_with("memfd:")) {
      // Its socket file went with the creator's channel: nothing is left, and rm says so calmly.
      EXPECT_TRUE(channel::remove(address));
    } else {
      auto removed = channel::remove(address);
      EXPECT_TRUE(removed) << removed.error().message();
    }
  }
}

TEST_F(ShmChannel, CreatorKilledWhileAJoinerBlocksGivesPeerDeadAndTheSurvivorRemovesTheName) {
  for (const auto& address :
       {"shm:" + scratch_.ipc_name("ch"), "sysv-shm:" + std::to_string(scratch_.key("ch"))}) {
    SCOPED_TRACE(address);
    auto child = child_process::helper("create_then_wait", {address});
    ASSERT_TRUE(child.wait_ready());
    auto ch = channel::join(address);
    ASSERT_TRUE(ch) << ch.error().message();
    std::thread killer([&] {
      std::this_thread::sleep_for(100ms);
      child.kill(SIGKILL);
    });
    std::array<std::byte, 64> buffer{};
    auto start = std::chrono::steady_clock::now();
    auto got = ch->recv(buffer, 5s);
    auto waited = std::chrono::steady_clock::now() - start;
    killer.join();
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), errc::peer_dead) << got.error().message();
    EXPECT_LT(waited, 1100ms);
    auto removed = channel::remove(address);
    EXPECT_TRUE(removed) << removed.error().message();
  }
}

TEST_F(ShmChannel, ScribbledChannelMagicMakesJoinFailWithCorruptSegment) {
  auto name = scratch_.ipc_name("ch");
  auto ch = channel::create("shm:" + name, {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  {
    unique_fd fd(::open(("/dev/shm" + name).c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd) << std::strerror(errno);
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(p, MAP_FAILED) << std::strerror(errno);
    std::memcpy(p, "SCRIBBLE", 8);
    ::munmap(p, 4096);
  }
  auto joined = channel::join("shm:" + name);
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), errc::corrupt_segment) << joined.error().message();
  EXPECT_NE(joined.error().message().find(name), std::string::npos) << joined.error().message();
}

TEST_F(ShmChannel, SegmentTruncatedByAnotherProcessMakesJoinFailWithoutSigbus) {
  auto name = scratch_.ipc_name("ch");
  // The creator is a child: its own mapping would fault on the lost pages when it closes.
  auto creator = child_process::helper("create_then_wait", {"shm:" + name});
  ASSERT_TRUE(creator.wait_ready());
  ASSERT_EQ(::truncate(("/dev/shm" + name).c_str(), 100), 0) << std::strerror(errno);
  auto joined = channel::join("shm:" + name);
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), errc::corrupt_segment) << joined.error().message();
  EXPECT_NE(joined.error().detail().find("does not fit"), std::string::npos)
      << joined.error().message();
  creator.kill(SIGKILL);
  creator.wait_exit();
  EXPECT_TRUE(channel::remove("shm:" + name));
}

TEST_F(ShmChannel, NobodyIsDeniedASegmentCreated0600) {
  ASSERT_EQ(::geteuid(), 0u) << "the permission test runs a helper as nobody: run tests as root";
  for (const auto& address :
       {"shm:" + scratch_.ipc_name("ch"), "sysv-shm:" + std::to_string(scratch_.key("ch"))}) {
    SCOPED_TRACE(address);
    auto ch = channel::create(address, {.remove_on_close = true});
    ASSERT_TRUE(ch) << ch.error().message();
    auto child = child_process::helper("join_denied", {address}, {.as_nobody = true});
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  }
}

TEST_F(ShmChannel, SeveralJoinersSendToOneCreatorEachInOrder) {
  for (const auto& address : every_kind()) {
    SCOPED_TRACE(address);
    auto ch = channel::create(address, {.remove_on_close = true});
    ASSERT_TRUE(ch) << ch.error().message();
    constexpr int senders = 3;
    constexpr int each = 200;
    std::vector<child_process> children;
    for (int id = 0; id < senders; ++id)
      children.push_back(child_process::helper(
          "send_tagged", {address, std::to_string(id), std::to_string(each)}));
    std::map<std::string, int> next;
    std::array<std::byte, 64> buffer{};
    for (int i = 0; i < senders * each; ++i) {
      auto got = ch->recv(buffer, 5s);
      ASSERT_TRUE(got) << "message " << i << ": " << got.error().message();
      auto message = text(std::span(buffer.data(), *got));
      auto colon = message.find(':');
      ASSERT_NE(colon, std::string::npos) << message;
      auto id = message.substr(0, colon);
      EXPECT_EQ(std::stoi(message.substr(colon + 1)), next[id]++) << message;
    }
    EXPECT_EQ(next.size(), static_cast<std::size_t>(senders));
    for (auto& child : children) EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  }
}

TEST_F(ShmChannel, RemoveOfAMissingSegmentFailsWithNotFound) {
  auto removed = channel::remove("shm:" + scratch_.ipc_name("absent"));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::no_such_file_or_directory) << removed.error().message();
}

TEST_F(ShmChannel, ASecondReceivingJoinerIsRefusedWhileTheFirstLives) {
  auto address = "shm:" + scratch_.ipc_name("ch");
  auto ch = channel::create(address, {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  auto first = channel::join(address);
  auto second = channel::join(address);
  ASSERT_TRUE(first && second);
  std::array<std::byte, 64> buffer{};
  auto nothing = first->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  auto refused = second->try_recv(buffer);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::device_or_resource_busy) << refused.error().message();
}

}  // namespace
