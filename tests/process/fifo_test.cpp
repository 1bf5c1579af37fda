// fifo: what is unique to named pipes: unrelated processes meeting by path, lazily opened ends
// (a sender waits for a receiver, a receiver for a writer), permissions, links and other files at
// the path, and removal.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/syscall.hpp"
#include "ipcx/channel.hpp"
#include "support/process.hpp"
#include "support/scratch.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::test::child_process;
using ipcx::test::spawn_options;

constexpr auto kWait = 5s;

std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Echoes what arrives on args[0] to args[1] until the stream ends.
IPCX_HELPER(fifo_echo) {
  auto in = ipcx::channel::join(args.at(0));
  auto out = ipcx::channel::join(args.at(1));
  if (!in || !out) {
    std::fprintf(stderr, "join: %s\n", (!in ? in : out).error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  return ipcx::test::echo_messages(*in, *out, kWait);
}

IPCX_HELPER(fifo_send_one) {
  auto ch = ipcx::channel::join(args.at(0));
  if (!ch) return 2;
  auto sent = ch->send(args.at(1), kWait);
  if (!sent) {
    std::fprintf(stderr, "send: %s\n", sent.error().message().c_str());
    return 3;
  }
  return 0;
}

IPCX_HELPER(fifo_recv_one) {
  auto ch = ipcx::channel::join(args.at(0));
  if (!ch) return 2;
  ipcx::test::ready();
  std::array<std::byte, 64> buffer;
  return ch->recv(buffer, kWait) ? 0 : 3;
}

// Expects join to fail with EACCES; prints the error so the parent can check its text.
IPCX_HELPER(fifo_join_expect_denied) {
  auto ch = ipcx::channel::join(args.at(0));
  if (ch) return 2;
  std::fprintf(stderr, "%s\n", ch.error().message().c_str());
  return ch.error() == std::errc::permission_denied ? 0 : 3;
}

class FifoChannel : public ipcx::test::ipc_test {
 protected:
  std::string fifo(const std::string& stem) { return "fifo:" + scratch_.path(stem); }
};

TEST_F(FifoChannel, UnrelatedProcessesExchangeMessagesByPath) {
  auto requests = ipcx::channel::create(fifo("requests"), {.remove_on_close = true});
  auto replies = ipcx::channel::create(fifo("replies"), {.remove_on_close = true});
  ASSERT_TRUE(requests) << requests.error().message();
  ASSERT_TRUE(replies) << replies.error().message();
  auto info = requests->info();
  EXPECT_EQ(info.kind, ipcx::mechanism::fifo);
  EXPECT_TRUE(info.ordered && info.stream);
  EXPECT_FALSE(info.persistent || info.cross_host);

  auto child = child_process::helper("fifo_echo", {fifo("requests"), fifo("replies")});
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(1 << 20);
  for (std::string m : {std::string("hello"), std::string(), std::string(100'000, 'f')}) {
    ASSERT_TRUE(requests->send(m, kWait));
    auto n = replies->recv(buffer, kWait);
    ASSERT_TRUE(n) << n.error().message() << "\n" << child.stderr_text();
    EXPECT_EQ(as_string(std::span(buffer.data(), *n)), m);
  }
  { ipcx::channel closed(std::move(*requests)); }  // the child sees the end of the stream
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  EXPECT_FALSE(exists(scratch_.path("requests")));  // remove_on_close
}

TEST_F(FifoChannel, SendWithNoReaderTimesOutAtItsDeadline) {
  auto where = fifo("lonely");
  // The creator holds the read end while it lives; once it is gone, the FIFO has no reader.
  ASSERT_TRUE(ipcx::channel::create(where));
  auto ch = ipcx::channel::join(where);
  ASSERT_TRUE(ch) << ch.error().message();
  auto start = std::chrono::steady_clock::now();
  auto sent = ch->send("anyone?", 100ms);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), ipcx::errc::timed_out) << sent.error().message();
  EXPECT_EQ(sent.error().detail(), "no reader has the FIFO open");
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 1s);
  auto tried = ch->try_send(std::as_bytes(std::span("x", 1)));
  ASSERT_TRUE(tried) << tried.error().message();
  EXPECT_FALSE(*tried);
  // Too large is refused at once, not after waiting for a reader.
  std::vector<std::byte> huge(ch->info().max_message + 1);
  auto refused = ch->send(huge);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), ipcx::errc::message_too_large) << refused.error().message();
  EXPECT_TRUE(ipcx::channel::remove(where));
}

TEST_F(FifoChannel, SendersMayWriteBeforeTheCreatorFirstReceives) {
  auto ch = ipcx::channel::create(fifo("mailbox"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  auto child = child_process::helper("fifo_send_one", {fifo("mailbox"), "early bird"});
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();  // sent and gone before any recv
  std::array<std::byte, 64> buffer;
  auto n = ch->recv(buffer, kWait);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "early bird");
  auto end = ch->recv(buffer, kWait);
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error(), ipcx::errc::end_of_stream) << end.error().message();
}

TEST_F(FifoChannel, RecvBeforeAnyWriterWaitsInsteadOfEndingTheStream) {
  auto ch = ipcx::channel::create(fifo("early"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  std::array<std::byte, 64> buffer;
  auto early = ch->recv(buffer, 50ms);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error(), ipcx::errc::timed_out) << early.error().message();
  auto tried = ch->try_recv(buffer);
  ASSERT_TRUE(tried) << tried.error().message();
  EXPECT_FALSE(*tried);

  auto child = child_process::helper("fifo_send_one", {fifo("early"), "finally"});
  auto n = ch->recv(buffer, kWait);
  ASSERT_TRUE(n) << n.error().message() << "\n" << child.stderr_text();
  EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "finally");
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  auto end = ch->recv(buffer, kWait);
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error(), ipcx::errc::end_of_stream) << end.error().message();
}

TEST_F(FifoChannel, WaitFdIsTheReadEndAndStaysQuietUntilAWriterSends) {
  auto ch = ipcx::channel::create(fifo("polled"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  int fd = ch->wait_fd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ch->wait_fd(), fd);
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 20), 0) << "revents " << p.revents;  // neither data nor POLLHUP

  auto child = child_process::helper("fifo_send_one", {fifo("polled"), "ping"});
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  EXPECT_TRUE(p.revents & POLLIN);
  std::array<std::byte, 64> buffer;
  auto n = ch->recv(buffer, kWait);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "ping");
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(FifoChannel, AJoinerBecomesAReceiverOnlyWhenItPollsOrReceives) {
  auto where = fifo("joined");
  ASSERT_TRUE(ipcx::channel::create(where));  // gone at once: the FIFO stays, without a reader
  auto receiver = ipcx::channel::join(where);
  auto sender = ipcx::channel::join(where);
  ASSERT_TRUE(receiver && sender);
  auto before = sender->try_send(std::as_bytes(std::span("x", 1)));
  ASSERT_TRUE(before) << before.error().message();
  EXPECT_FALSE(*before);  // nobody reads yet
  ASSERT_GE(receiver->wait_fd(), 0);
  ASSERT_TRUE(sender->send("now", kWait));
  std::array<std::byte, 64> buffer;
  auto n = receiver->recv(buffer, kWait);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "now");
  EXPECT_TRUE(ipcx::channel::remove(where));
}

TEST_F(FifoChannel, SendAfterTheReaderLeftFailsWithBrokenPipe) {
  auto where = fifo("abandoned");
  ASSERT_TRUE(ipcx::channel::create(where));  // the sender must not be the creator, a reader
  auto ch = ipcx::channel::join(where);
  ASSERT_TRUE(ch) << ch.error().message();
  auto child = child_process::helper("fifo_recv_one", {where});
  ASSERT_TRUE(child.wait_ready());
  ASSERT_TRUE(ch->send("one", kWait));
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  for (ipcx::deadline until : {ipcx::deadline::never(), ipcx::deadline(kWait)}) {
    auto sent = ch->send("two", until);
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error(), std::errc::broken_pipe) << sent.error().message();
  }
  EXPECT_TRUE(ipcx::channel::remove(where));
}

TEST_F(FifoChannel, OneChannelCanSendToItselfThroughInjectedEintr) {
  auto ch = ipcx::channel::create(fifo("loop"), {.remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  std::array<std::byte, 64> buffer;
  for (ipcx::deadline until : {ipcx::deadline(kWait), ipcx::deadline::never()}) {
    ipcx::detail::injected_eintr = 3;
    ASSERT_TRUE(ch->send("round", until));
    EXPECT_EQ(ipcx::detail::injected_eintr, 0);
    ipcx::detail::injected_eintr = 3;
    auto n = ch->recv(buffer, until);
    EXPECT_EQ(ipcx::detail::injected_eintr, 0);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "round");
  }
  ipcx::detail::injected_eintr = 0;
}

TEST_F(FifoChannel, JoinAsAnotherUserOnA0600FifoFailsWithPermissionDeniedNamingThePath) {
  auto path = scratch_.path("private");
  auto ch = ipcx::channel::create("fifo:" + path, {.permissions = 0600, .remove_on_close = true});
  ASSERT_TRUE(ch) << ch.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  spawn_options options;
  options.as_nobody = true;
  auto child = child_process::helper("fifo_join_expect_denied", {"fifo:" + path}, options);
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  EXPECT_NE(child.stderr_text().find(path), std::string::npos) << child.stderr_text();
}

TEST_F(FifoChannel, SymlinkAtThePathIsRefused) {
  auto target = scratch_.path("real");
  auto link = scratch_.path("link");
  auto real = ipcx::channel::create("fifo:" + target);
  ASSERT_TRUE(real) << real.error().message();
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);

  auto joined = ipcx::channel::join("fifo:" + link);
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), std::errc::too_many_symbolic_link_levels) << joined.error().message();
  EXPECT_NE(joined.error().message().find(link), std::string::npos);
  auto opened = ipcx::channel::open("fifo:" + link);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), std::errc::too_many_symbolic_link_levels) << opened.error().message();
  auto created = ipcx::channel::create("fifo:" + link);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error(), std::errc::file_exists) << created.error().message();
  auto removed = ipcx::channel::remove("fifo:" + link);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::too_many_symbolic_link_levels) << removed.error().message();
  EXPECT_TRUE(exists(link));

  ::unlink(link.c_str());
  EXPECT_TRUE(ipcx::channel::remove("fifo:" + target));
}

TEST_F(FifoChannel, ARegularFileAtThePathIsNeitherCreatedOverJoinedNorRemoved) {
  auto path = scratch_.path("plain");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);

  auto created = ipcx::channel::create("fifo:" + path);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error(), std::errc::file_exists) << created.error().message();
  auto joined = ipcx::channel::join("fifo:" + path);
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), std::errc::not_supported) << joined.error().message();
  EXPECT_NE(joined.error().message().find(path + "\"): operation not supported: the path is a "
                                                 "regular file, not a FIFO"),
            std::string::npos)
      << joined.error().message();
  auto removed = ipcx::channel::remove("fifo:" + path);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::not_supported) << removed.error().message();
  EXPECT_TRUE(exists(path));
  ::unlink(path.c_str());
}

TEST_F(FifoChannel, TheFifoOutlivesItsChannelsUntilRemoved) {
  auto path = scratch_.path("kept");
  {
    auto creator = ipcx::channel::create("fifo:" + path);
    ASSERT_TRUE(creator) << creator.error().message();
    auto again = ipcx::channel::open("fifo:" + path);
    ASSERT_TRUE(again) << again.error().message();
  }
  EXPECT_TRUE(exists(path));
  ASSERT_TRUE(ipcx::channel::remove("fifo:" + path));
  EXPECT_FALSE(exists(path));
  auto twice = ipcx::channel::remove("fifo:" + path);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error(), std::errc::no_such_file_or_directory) << twice.error().message();
  auto joined = ipcx::channel::join("fifo:" + path);
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), std::errc::no_such_file_or_directory) << joined.error().message();
}

TEST_F(FifoChannel, RemoveOnCloseIsTheCreatorsAlone) {
  auto path = scratch_.path("owned");
  auto creator = ipcx::channel::create("fifo:" + path, {.remove_on_close = true});
  ASSERT_TRUE(creator) << creator.error().message();
  {
    auto joiner = ipcx::channel::join("fifo:" + path, {.remove_on_close = true});
    ASSERT_TRUE(joiner) << joiner.error().message();
  }
  EXPECT_TRUE(exists(path));
  { ipcx::channel closed(std::move(*creator)); }
  EXPECT_FALSE(exists(path));
}

}  // namespace
