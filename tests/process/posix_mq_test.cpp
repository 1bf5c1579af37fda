// What is unique to mq:/name (POSIX message queues); the shared contract is in conformance_test.
#include <gtest/gtest.h>
#include <mqueue.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
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

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Opens args[0] with open() and sends one message naming itself.
IPCX_HELPER(open_and_send) {
  auto ch = channel::open(args[0], {.max_message = 64, .capacity = 8});
  if (!ch) return report("open", ch.error());
  ipcx::test::ready();
  if (auto sent = ch->send("from " + args[1], 5s); !sent) return report("send", sent.error());
  return 0;
}

class MqChannel : public ipcx::test::ipc_test {
 protected:
  std::string address(const std::string& stem) { return "mq:" + scratch_.ipc_name(stem); }
};

TEST_F(MqChannel, ExchangesMessagesWithAnotherProcessInBothDirections) {
  auto to =
      channel::create(address("to"), {.max_message = 256, .capacity = 4, .remove_on_close = true});
  ASSERT_TRUE(to) << to.error().message();
  auto from = channel::create(address("from"),
                              {.max_message = 256, .capacity = 4, .remove_on_close = true});
  ASSERT_TRUE(from) << from.error().message();
  const std::array<std::size_t, 5> sizes{0, 1, 100, 255, 256};
  auto child = child_process::helper(
      "echo_between", {address("to"), address("from"), std::to_string(sizes.size())});
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(256);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto message = message_for(i, sizes[i]);
    ASSERT_TRUE(to->send(message, 5s));
    auto got = from->recv(buffer, 5s);
    ASSERT_TRUE(got) << got.error().message() << "\n" << child.stderr_text();
    EXPECT_EQ(text(buffer, *got), message);
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(MqChannel, CreateExistingQueueFailsWithExists) {
  auto first = channel::create(address("q"), {.remove_on_close = true});
  ASSERT_TRUE(first) << first.error().message();
  auto second = channel::create(address("q"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::file_exists);
  EXPECT_EQ(second.error().message(), "mq_open(\"" + scratch_.ipc_name("q") + "\"): file exists");
}

TEST_F(MqChannel, JoinMissingQueueFailsWithNotFound) {
  auto ch = channel::join(address("absent"));
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(ch.error().message(),
            "mq_open(\"" + scratch_.ipc_name("absent") + "\"): no such file or directory");
}

TEST_F(MqChannel, RemoveMissingQueueFailsWithNotFound) {
  auto removed = channel::remove(address("absent"));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(removed.error().message(),
            "mq_unlink(\"" + scratch_.ipc_name("absent") + "\"): no such file or directory");
}

TEST_F(MqChannel, JoinTakesTheMaximumMessageFromTheQueue) {
  auto made =
      channel::create(address("q"), {.max_message = 100, .capacity = 3, .remove_on_close = true});
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_EQ(made->info().max_message, 100u);
  auto joined = channel::join(address("q"), {.max_message = 5000});
  ASSERT_TRUE(joined) << joined.error().message();
  EXPECT_EQ(joined->info().max_message, 100u);
  auto refused = joined->send(std::string(101, 'x'));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::message_too_large) << refused.error().message();
}

TEST_F(MqChannel, DefaultsFollowTheHostsQueueSettings) {
  auto ch = channel::create(address("q"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  auto msgsize_max = host_limit("/proc/sys/fs/mqueue/msgsize_max");
  EXPECT_EQ(ch->info().max_message, static_cast<std::size_t>(std::min(8192L, msgsize_max)));
  mq_attr attr{};
  ASSERT_EQ(::mq_getattr(ch->wait_fd(), &attr), 0);
  EXPECT_EQ(attr.mq_maxmsg, std::min(host_limit("/proc/sys/fs/mqueue/msg_default"),
                                     host_limit("/proc/sys/fs/mqueue/msg_max")));
  EXPECT_EQ(attr.mq_flags, 0) << "wait_fd is the blocking descriptor";
}

TEST_F(MqChannel, SizeBeyondTheKernelsHardLimitNamesTheLimitAndTheSizeAsked) {
  auto ch = channel::create(address("huge"), {.max_message = 16 * 1024 * 1024 + 1});
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::invalid_argument);
  auto message = ch.error().message();
  EXPECT_NE(message.find("mq_open(\"" + scratch_.ipc_name("huge") + "\"): invalid argument"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("max_message 16777217 is above the host's msgsize_max " +
                         std::to_string(host_limit("/proc/sys/fs/mqueue/msgsize_max"))),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("16777216 bytes"), std::string::npos) << message;
}

TEST_F(MqChannel, SizeBeyondTheHostLimitFailsForAnUnprivilegedCreatorNamingTheLimit) {
  auto msgsize_max = host_limit("/proc/sys/fs/mqueue/msgsize_max");
  auto msg_max = host_limit("/proc/sys/fs/mqueue/msg_max");
  auto size = child_process::helper(
      "expect_open_error",
      {"create", address("big"), std::to_string(msgsize_max + 1), "1", std::to_string(EINVAL),
       "max_message " + std::to_string(msgsize_max + 1) + " is above the host's msgsize_max " +
           std::to_string(msgsize_max) + " (/proc/sys/fs/mqueue/msgsize_max)"},
      as_nobody());
  auto count = child_process::helper(
      "expect_open_error",
      {"create", address("long"), "16", std::to_string(msg_max + 1), std::to_string(EINVAL),
       "capacity " + std::to_string(msg_max + 1) + " is above the host's msg_max " +
           std::to_string(msg_max) + " (/proc/sys/fs/mqueue/msg_max)"},
      as_nobody());
  EXPECT_EQ(size.wait_exit(), 0) << size.stderr_text();
  EXPECT_EQ(count.wait_exit(), 0) << count.stderr_text();
}

TEST_F(MqChannel, ASmallBufferLeavesTheMessagePendingInThisChannel) {
  auto ch =
      channel::create(address("q"), {.max_message = 64, .capacity = 4, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  ASSERT_TRUE(ch->send(std::string_view("a message of 25 bytes....")));
  ASSERT_TRUE(ch->send(std::string_view("second")));

  std::array<std::byte, 8> small{};
  auto refused = ch->recv(small, 1s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::message_too_large);
  EXPECT_NE(refused.error().message().find("the message has 25 bytes, the buffer 8"),
            std::string::npos)
      << refused.error().message();
  // Still pending: not "nothing", and not the next message either.
  auto again = ch->try_recv(small);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::message_too_large);

  std::array<std::byte, 64> big{};
  auto first = ch->recv(big, 1s);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(text(big, *first), "a message of 25 bytes....");
  // A short buffer that fits is served through the channel's own buffer.
  auto second = ch->recv(small, 1s);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(text(small, *second), "second");
  auto none = ch->try_recv(small);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_FALSE(none->has_value());
}

TEST_F(MqChannel, NobodyCannotJoinAPrivateQueue) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  auto ch = channel::create(address("private"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  auto child = child_process::helper(
      "expect_open_error",
      {"join", address("private"), "0", "0", std::to_string(EACCES),
       "mq_open(\"" + scratch_.ipc_name("private") + "\"): permission denied"},
      as_nobody());
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(MqChannel, MessagesOutliveTheProcessThatSentThem) {
  auto sender = child_process::helper("create_send_exit", {address("kept"), "one", "", "three"});
  ASSERT_EQ(sender.wait_exit(), 0) << sender.stderr_text();
  auto receiver = child_process::helper("join_expect", {address("kept"), "one", "", "three"});
  EXPECT_EQ(receiver.wait_exit(), 0) << receiver.stderr_text();
  // Neither process removed it: the queue is still there until someone does.
  EXPECT_TRUE(channel::remove(address("kept")));
}

TEST_F(MqChannel, RemovingTheNameLeavesAWaitingReceiverItsQueue) {
  // POSIX queues have no EIDRM: unlinking removes the name, and the queue lives on while open.
  auto ch = channel::create(address("q"));
  ASSERT_TRUE(ch) << ch.error().message();
  auto child = child_process::helper("join_expect", {address("q"), "after the unlink"});
  ASSERT_TRUE(child.wait_ready());
  ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_mq_timedreceive, 5s)) << child.stderr_text();
  ASSERT_TRUE(channel::remove(address("q")));
  auto rejoin = channel::join(address("q"));
  ASSERT_FALSE(rejoin);
  EXPECT_EQ(rejoin.error(), std::errc::no_such_file_or_directory);
  ASSERT_TRUE(ch->send(std::string_view("after the unlink"), 1s));
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(MqChannel, RemoveOnCloseRemovesTheQueueOnlyWhenItsCreatorCloses) {
  {
    auto creator = channel::create(address("q"), {.remove_on_close = true});
    ASSERT_TRUE(creator) << creator.error().message();
    {
      auto joiner = channel::join(address("q"), {.remove_on_close = true});
      ASSERT_TRUE(joiner) << joiner.error().message();
    }
    EXPECT_TRUE(channel::join(address("q"))) << "a joiner never removes the queue";
  }
  auto gone = channel::join(address("q"));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error(), std::errc::no_such_file_or_directory);
}

TEST_F(MqChannel, AFullQueueRefusesTrySendAndTimesOutASend) {
  auto ch =
      channel::create(address("q"), {.max_message = 16, .capacity = 2, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  auto first = ch->try_send(bytes("1"));
  auto second = ch->try_send(bytes("2"));
  auto third = ch->try_send(bytes("3"));
  ASSERT_TRUE(first && second && third);
  EXPECT_TRUE(*first);
  EXPECT_TRUE(*second);
  EXPECT_FALSE(*third);
  auto start = std::chrono::steady_clock::now();
  auto late = ch->send(std::string_view("4"), 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error(), errc::timed_out) << late.error().message();
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 1s);
  std::array<std::byte, 16> buffer{};
  auto got = ch->recv(buffer);
  ASSERT_TRUE(got);
  EXPECT_EQ(text(buffer, *got), "1");
}

TEST_F(MqChannel, WaitFdPollsReadableOnlyWhenAMessageWaits) {
  auto ch =
      channel::create(address("q"), {.max_message = 16, .capacity = 2, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  pollfd p{.fd = ch->wait_fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  ASSERT_TRUE(ch->send(std::string_view("x")));
  EXPECT_EQ(::poll(&p, 1, 1000), 1);
  EXPECT_TRUE(p.revents & POLLIN);
}

TEST_F(MqChannel, ConcurrentOpensShareOneQueue) {
  std::vector<child_process> children;
  for (int i = 0; i < 4; ++i)
    children.push_back(
        child_process::helper("open_and_send", {address("shared"), std::to_string(i)}));
  for (auto& child : children) EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  auto ch = channel::join(address("shared"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  std::vector<std::string> got;
  std::array<std::byte, 64> buffer{};
  while (auto n = ch->try_recv(buffer)) {
    if (!n->has_value()) break;
    got.push_back(text(buffer, **n));
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"from 0", "from 1", "from 2", "from 3"}));
  EXPECT_TRUE(channel::remove(address("shared")));
}

TEST_F(MqChannel, InjectedEintrIsRetriedOnEveryPath) {
  auto ch =
      channel::create(address("q"), {.max_message = 16, .capacity = 4, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  std::array<std::byte, 16> big{};
  std::array<std::byte, 4> small{};
  for (ipcx::deadline until :
       {ipcx::deadline::never(), ipcx::deadline(1s), ipcx::deadline::immediate()}) {
    ipcx::detail::injected_eintr = 2;
    ASSERT_TRUE(ch->send(std::string_view("abc"), until));
    ipcx::detail::injected_eintr = 2;
    auto got = ch->recv(big, until);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(text(big, *got), "abc");
    ASSERT_TRUE(ch->send(std::string_view("de"), until));
    ipcx::detail::injected_eintr = 2;
    got = ch->recv(small, until);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(text(small, *got), "de");
  }
  ipcx::detail::injected_eintr = 0;
}

}  // namespace
