// What is unique to sysv-mq:KEY (System V message queues); the shared contract is in
// conformance_test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/syscall.hpp"
#include "ipcx/channel.hpp"
#include "process.hpp"
#include "queue_helpers.hpp"
#include "scratch.hpp"

namespace {

using namespace ipcx::test::queue;
using ipcx::test::as_nobody;
using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::test::child_process;
using ipcx::test::host_limit;
using ipcx::test::wait_until_blocked_in;

// The queue's msg_qbytes, or -1 when there is no queue under `key`.
long queue_bytes(long key) {
  int id = ::msgget(static_cast<key_t>(key), 0);
  msqid_ds ds{};
  if (id < 0 || ::msgctl(id, IPC_STAT, &ds) != 0) return -1;
  return static_cast<long>(ds.msg_qbytes);
}

// Whether this process holds `capability` in its effective set.
bool has_capability(int capability) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("CapEff:"))
      return (std::stoull(line.substr(7), nullptr, 16) >> capability) & 1;
  return false;
}

// Joins args[0], says ready and waits for a message (args[1]: "never" or a deadline in ms). Exits
// 0 only if the wait ends with EIDRM and a message containing args[2].
IPCX_HELPER(wait_for_removal) {
  auto ch = channel::join(args[0]);
  if (!ch) return report("join", ch.error());
  ipcx::test::ready();
  std::array<std::byte, 64> buffer{};
  auto got = args[1] == "never" ? ch->recv(buffer)
                                : ch->recv(buffer, std::chrono::milliseconds(std::stol(args[1])));
  if (got) {
    std::fprintf(stderr, "received %zu bytes\n", *got);
    return 1;
  }
  auto message = got.error().message();
  std::fprintf(stderr, "%s\n", message.c_str());
  return got.error() == std::errc::identifier_removed && message.find(args[2]) != std::string::npos
             ? 0
             : 1;
}

class SysvMqChannel : public ipcx::test::ipc_test {
 protected:
  // A fresh key for `stem`; the fixture removes its queue if the test leaves it behind.
  std::string address(const std::string& stem) {
    return "sysv-mq:" + std::to_string(scratch_.key(stem));
  }
};

TEST_F(SysvMqChannel, ExchangesMessagesWithAnotherProcessInBothDirections) {
  auto to_address = address("to");
  auto from_address = address("from");
  auto to = channel::create(to_address, {.max_message = 512, .remove_on_close = true});
  ASSERT_TRUE(to) << to.error().message();
  auto from = channel::create(from_address, {.max_message = 512, .remove_on_close = true});
  ASSERT_TRUE(from) << from.error().message();
  const std::array<std::size_t, 5> sizes{0, 1, 100, 511, 512};
  auto child = child_process::helper(
      "echo_between", {to_address, from_address, std::to_string(sizes.size()), "512"});
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(512);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto message = message_for(i, sizes[i]);
    ASSERT_TRUE(to->send(message, 5s));
    auto got = from->recv(buffer, 5s);
    ASSERT_TRUE(got) << got.error().message() << "\n" << child.stderr_text();
    EXPECT_EQ(text(buffer, *got), message);
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SysvMqChannel, CreateExistingQueueFailsWithExists) {
  auto where = address("q");
  auto first = channel::create(where, {.remove_on_close = true});
  ASSERT_TRUE(first) << first.error().message();
  auto second = channel::create(where);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::file_exists);
  EXPECT_EQ(second.error().message(), "msgget(\"" + where + "\"): file exists");
}

TEST_F(SysvMqChannel, JoinMissingQueueFailsWithNotFound) {
  auto where = address("absent");
  auto ch = channel::join(where);
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(ch.error().message(), "msgget(\"" + where + "\"): no such file or directory");
  auto removed = channel::remove(where);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::no_such_file_or_directory);
}

TEST_F(SysvMqChannel, DefaultMaximumMessageFollowsTheHostsMsgmax) {
  auto ch = channel::create(address("q"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  EXPECT_EQ(ch->info().max_message,
            static_cast<std::size_t>(std::min(8192L, host_limit("/proc/sys/kernel/msgmax"))));
  EXPECT_EQ(ch->wait_fd(), -1);
}

TEST_F(SysvMqChannel, MaximumMessageAboveMsgmaxFailsNamingTheLimitAndCreatesNothing) {
  auto msgmax = host_limit("/proc/sys/kernel/msgmax");
  auto where = address("q");
  auto ch = channel::create(where, {.max_message = static_cast<std::size_t>(msgmax) + 1});
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::invalid_argument);
  EXPECT_NE(ch.error().message().find("max_message " + std::to_string(msgmax + 1) +
                                      " is above the host's msgmax " + std::to_string(msgmax) +
                                      " (/proc/sys/kernel/msgmax)"),
            std::string::npos)
      << ch.error().message();
  EXPECT_FALSE(channel::join(where));
}

TEST_F(SysvMqChannel, CapacitySetsTheQueueSizeInBytes) {
  auto where = address("q");
  auto key = scratch_.key("q");
  auto ch = channel::create(where, {.max_message = 64, .capacity = 2, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  EXPECT_EQ(queue_bytes(key), 128);
  std::string full(64, 'x');
  auto first = ch->try_send(std::as_bytes(std::span(full)));
  auto second = ch->try_send(std::as_bytes(std::span(full)));
  auto third = ch->try_send(std::as_bytes(std::span(full)));
  ASSERT_TRUE(first && second && third);
  EXPECT_TRUE(*first);
  EXPECT_TRUE(*second);
  EXPECT_FALSE(*third);
  // The finite deadline polls with IPC_NOWAIT: it must still end on time, not early or much late.
  auto start = std::chrono::steady_clock::now();
  auto late = ch->send(full, 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error(), errc::timed_out) << late.error().message();
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 500ms);
}

TEST_F(SysvMqChannel, CapacityAboveMsgmnbFailsForAnUnprivilegedCreatorAndLeavesNoQueue) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  auto msgmnb = host_limit("/proc/sys/kernel/msgmnb");
  auto where = address("q");
  std::size_t capacity = static_cast<std::size_t>(msgmnb) / 64 + 1;
  auto child = child_process::helper(
      "expect_open_error",
      {"create", where, "64", std::to_string(capacity), std::to_string(EPERM),
       "capacity " + std::to_string(capacity) + " x max_message 64 = " +
           std::to_string(capacity * 64) + " bytes is above the host's msgmnb " +
           std::to_string(msgmnb) + " (/proc/sys/kernel/msgmnb)"},
      as_nobody());
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  EXPECT_EQ(queue_bytes(scratch_.key("q")), -1) << "the failed create left its queue behind";
  // With CAP_SYS_RESOURCE (root, unless a container dropped it) the same create succeeds.
  auto ch =
      channel::create(where, {.max_message = 64, .capacity = capacity, .remove_on_close = true});
  if (has_capability(CAP_SYS_RESOURCE)) {
    ASSERT_TRUE(ch) << ch.error().message();
    EXPECT_EQ(queue_bytes(scratch_.key("q")), static_cast<long>(capacity * 64));
  } else {
    ASSERT_FALSE(ch);
    EXPECT_EQ(ch.error(), std::errc::operation_not_permitted) << ch.error().message();
    EXPECT_EQ(queue_bytes(scratch_.key("q")), -1) << "the failed create left its queue behind";
  }
}

TEST_F(SysvMqChannel, ASmallBufferLeavesTheMessageInTheQueueForAnyReader) {
  auto where = address("q");
  auto ch = channel::create(where, {.max_message = 64, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  ASSERT_TRUE(ch->send(std::string_view("a message of 25 bytes....")));
  std::array<std::byte, 8> small{};
  auto refused = ch->recv(small, 1s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::message_too_large);
  EXPECT_NE(
      refused.error().message().find("larger than the buffer's 8 bytes; it stays in the queue"),
      std::string::npos)
      << refused.error().message();
  // Another process, with a big enough buffer, finds it still at the head of the queue.
  auto child = child_process::helper("join_expect", {where, "a message of 25 bytes...."});
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SysvMqChannel, NobodyCannotJoinAPrivateQueue) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  auto where = address("private");
  auto ch = channel::create(where, {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  auto child = child_process::helper("expect_open_error",
                                     {"join", where, "0", "0", std::to_string(EACCES),
                                      "msgget(\"" + where + "\"): permission denied"},
                                     as_nobody());
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SysvMqChannel, MessagesOutliveTheProcessThatSentThem) {
  auto where = address("kept");
  auto sender = child_process::helper("create_send_exit", {where, "one", "", "three"});
  ASSERT_EQ(sender.wait_exit(), 0) << sender.stderr_text();
  auto receiver = child_process::helper("join_expect", {where, "one", "", "three"});
  EXPECT_EQ(receiver.wait_exit(), 0) << receiver.stderr_text();
  EXPECT_TRUE(channel::remove(where));
}

TEST_F(SysvMqChannel, RemovingTheQueueWakesABlockedReceiverWithIdentifierRemoved) {
  auto where = address("q");
  auto ch = channel::create(where);
  ASSERT_TRUE(ch) << ch.error().message();
  auto key = scratch_.key("q");
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08lx", key);
  auto child = child_process::helper(
      "wait_for_removal",
      {where, "never",
       "msgrcv(\"" + where + "\"): identifier removed: the queue (key " + hex + ", msqid "});
  ASSERT_TRUE(child.wait_ready());
  ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_msgrcv, 5s)) << child.stderr_text();
  ASSERT_TRUE(channel::remove(where));
  EXPECT_EQ(child.wait_exit(5s), 0) << child.stderr_text();
  EXPECT_NE(child.stderr_text().find("was removed while this call waited"), std::string::npos)
      << child.stderr_text();
}

TEST_F(SysvMqChannel, RemovingTheQueueEndsAWaitWithADeadlineWithIdentifierRemoved) {
  auto where = address("q");
  auto ch = channel::create(where);
  ASSERT_TRUE(ch) << ch.error().message();
  auto child = child_process::helper("wait_for_removal",
                                     {where, "5000", "identifier removed: the queue (key "});
  ASSERT_TRUE(child.wait_ready());
  ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_clock_nanosleep, 5s)) << child.stderr_text();
  ASSERT_TRUE(channel::remove(where));
  EXPECT_EQ(child.wait_exit(2s), 0) << child.stderr_text();
}

TEST_F(SysvMqChannel, SendToARemovedQueueFailsWithIdentifierRemoved) {
  auto where = address("q");
  auto ch = channel::create(where);
  ASSERT_TRUE(ch) << ch.error().message();
  ASSERT_TRUE(channel::remove(where));
  auto sent = ch->send(std::string_view("x"));
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), std::errc::identifier_removed);
  EXPECT_NE(sent.error().message().find("no longer exists"), std::string::npos)
      << sent.error().message();
}

TEST_F(SysvMqChannel, AKeyPathNamesTheSameQueueForEveryProcess) {
  auto file = scratch_.path("key");
  { std::ofstream(file) << "key\n"; }
  struct unlink_at_end {
    std::string path;
    ~unlink_at_end() { ::unlink(path.c_str()); }
  } key_file{file};
  auto where = "sysv-mq:" + file;
  auto ch = channel::create(where, {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  // The same queue by its numeric key: ftok(path, 'x').
  key_t key = ::ftok(file.c_str(), 'x');
  ASSERT_NE(key, -1);
  auto by_number = channel::join("sysv-mq:" + std::to_string(key));
  ASSERT_TRUE(by_number) << by_number.error().message();
  ASSERT_TRUE(by_number->send(std::string_view("by number")));
  ASSERT_TRUE(ch->send(std::string_view("by path")));
  auto child = child_process::helper("join_expect", {where, "by number", "by path"});
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SysvMqChannel, AKeyPathThatDoesNotExistFailsNamingThePath) {
  auto missing = scratch_.path("missing");
  auto ch = channel::open("sysv-mq:" + missing);
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(ch.error().message(), "ftok(\"" + missing + "\"): no such file or directory");
}

TEST_F(SysvMqChannel, RemoveOnCloseRemovesTheQueueOnlyWhenItsCreatorCloses) {
  auto where = address("q");
  {
    auto creator = channel::create(where, {.remove_on_close = true});
    ASSERT_TRUE(creator) << creator.error().message();
    {
      auto joiner = channel::join(where, {.remove_on_close = true});
      ASSERT_TRUE(joiner) << joiner.error().message();
    }
    EXPECT_TRUE(channel::join(where)) << "a joiner never removes the queue";
  }
  auto gone = channel::join(where);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), std::errc::no_such_file_or_directory);
}

TEST_F(SysvMqChannel, OpenCreatesOnceAndThenJoins) {
  auto where = address("q");
  auto first = channel::open(where, {.max_message = 32, .capacity = 3, .remove_on_close = true});
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(queue_bytes(scratch_.key("q")), 96);
  // The second open joins: it neither resizes the queue nor removes it on close.
  {
    auto second = channel::open(where, {.max_message = 32, .capacity = 1, .remove_on_close = true});
    ASSERT_TRUE(second) << second.error().message();
  }
  EXPECT_EQ(queue_bytes(scratch_.key("q")), 96);
}

TEST_F(SysvMqChannel, InjectedEintrIsRetriedOnEveryPath) {
  auto ch = channel::create(address("q"), {.max_message = 16, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  std::array<std::byte, 16> buffer{};
  for (ipcx::deadline until :
       {ipcx::deadline::never(), ipcx::deadline(1s), ipcx::deadline::immediate()}) {
    ipcx::detail::injected_eintr = 2;
    ASSERT_TRUE(ch->send(std::string_view("abc"), until));
    ipcx::detail::injected_eintr = 2;
    auto got = ch->recv(buffer, until);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(text(buffer, *got), "abc");
  }
  ipcx::detail::injected_eintr = 0;
}

}  // namespace
