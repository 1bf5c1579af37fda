// pipe: what is unique to anonymous pipes: pairs handed to exec'd children, stdio adoption, raw
// frames written by a dying or hostile writer, and descriptors that are not pipes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <climits>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/syscall.hpp"
#include "ipcx/channel.hpp"
#include "ipcx/unique_fd.hpp"
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

// The header of a message on a plain pipe (a 32-bit length), or, for a packet-mode pipe as
// channel::pipe() makes, the header of a long message (escape 0xA5, tag 0x01, 32-bit length).
std::vector<std::byte> frame_header(std::uint32_t size, bool packets = true) {
  std::vector<std::byte> header;
  if (packets) header = {std::byte{0xA5}, std::byte{0x01}};
  for (std::size_t i = 0; i < 4; ++i) header.push_back(std::byte((size >> (8 * i)) & 0xff));
  return header;
}

// A channel over two plain pipes (no packet mode), joined as an exec'd child would: the framed
// protocol. `feed` is the write end of the pipe the channel reads.
struct plain_pipe_channel {
  ipcx::unique_fd feed;
  ipcx::unique_fd drain;
  std::optional<ipcx::channel> channel;
};
plain_pipe_channel make_plain_pipe_channel(const ipcx::channel_options& options = {}) {
  int in[2];
  int out[2];
  EXPECT_EQ(::pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  plain_pipe_channel p;
  p.feed.reset(in[1]);
  p.drain.reset(out[0]);
  auto ch = ipcx::channel::join("pipe:" + std::to_string(in[0]) + "," + std::to_string(out[1]),
                                options);
  EXPECT_TRUE(ch) << ch.error().message();
  if (ch) p.channel.emplace(std::move(*ch));
  return p;
}

// Drops the parent's copy of the end a child now owns, so the child's exit is our end of stream.
void close_our_copy(ipcx::channel& end) { ipcx::channel dropped(std::move(end)); }

spawn_options inheriting(const ipcx::channel& end) {
  spawn_options options;
  options.inherit = {end.address().read_fd, end.address().write_fd};
  return options;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// Echoes every message back until the stream ends.
IPCX_HELPER(pipe_echo) {
  auto ch = ipcx::channel::join(args.at(0));
  if (!ch) {
    std::fprintf(stderr, "join: %s\n", ch.error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  return ipcx::test::echo_messages(*ch, *ch, kWait);
}

IPCX_HELPER(pipe_send_and_exit) {
  auto ch = ipcx::channel::join(args.at(0));
  if (!ch || !ch->send("last words", kWait)) return 2;
  return 0;
}

IPCX_HELPER(pipe_exit_at_once) {
  auto ch = ipcx::channel::join(args.at(0));
  return ch ? 0 : 2;
}

// Writes a header claiming 100 bytes and only 10 of them, then waits to be killed.
IPCX_HELPER(pipe_half_frame) {
  int fd = std::stoi(args.at(0));
  auto header = frame_header(100, args.at(1) == "packets");
  char body[10] = {};
  if (::write(fd, header.data(), header.size()) != static_cast<ssize_t>(header.size()) ||
      ::write(fd, body, sizeof body) != 10)
    return 2;
  ipcx::test::ready();
  ::pause();
  return 0;
}

// Writes plain frames to descriptor args[0], cut at awkward places: "alpha" and "beta" alone, a
// pause apart (so the receiver finds each whole in one read); "" and the first bytes of
// "gamma-delta" in one write; the rest after the receiver is blocked; then a 300-byte frame and a
// 5000-byte one in 1000-byte writes.
IPCX_HELPER(pipe_raw_frames) {
  int fd = std::stoi(args.at(0));
  auto frame = [](std::string_view text) {
    auto bytes = frame_header(static_cast<std::uint32_t>(text.size()), false);
    for (char c : text) bytes.push_back(std::byte(c));
    return bytes;
  };
  auto put = [&](std::span<const std::byte> bytes) {
    return ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  };
  std::vector<std::byte> burst;
  for (auto part : {frame(""), frame("gamma-delta")})
    burst.insert(burst.end(), part.begin(), part.end());
  std::size_t cut = burst.size() - 8;  // header and "gam" of the third frame
  ipcx::test::ready();
  if (!put(frame("alpha"))) return 2;
  std::this_thread::sleep_for(50ms);
  if (!put(frame("beta"))) return 2;
  std::this_thread::sleep_for(50ms);
  if (!put(std::span(burst).first(cut))) return 2;
  std::this_thread::sleep_for(100ms);
  if (!put(std::span(burst).subspan(cut))) return 3;
  if (!put(frame(std::string(300, 'm')))) return 4;
  auto big = frame(std::string(5000, 'z'));
  for (std::size_t at = 0; at < big.size(); at += 1000) {
    if (!put(std::span(big).subspan(at, std::min<std::size_t>(1000, big.size() - at)))) return 5;
    std::this_thread::sleep_for(5ms);
  }
  return 0;
}

// Joins stdin/stdout ("pipe:"), echoes until the stream ends, and checks that closing the channel
// left descriptors 0 and 1 open.
IPCX_HELPER(pipe_stdio_echo) {
  {
    auto ch = ipcx::channel::join("pipe:");
    if (!ch) {
      std::fprintf(stderr, "join: %s\n", ch.error().message().c_str());
      return 2;
    }
    ipcx::test::ready();
    std::array<std::byte, 256> buffer;
    for (;;) {
      auto n = ch->recv(buffer, kWait);
      if (!n) {
        if (n.error() == ipcx::errc::end_of_stream) break;
        std::fprintf(stderr, "recv: %s\n", n.error().message().c_str());
        return 3;
      }
      if (!ch->send(std::span(buffer.data(), *n), kWait)) return 4;
    }
  }
  return is_open(0) && is_open(1) ? 0 : 5;
}

// stdin is not a pipe: the channel still sends on stdout, and only recv reports stdin.
IPCX_HELPER(pipe_stdio_send_only) {
  auto ch = ipcx::channel::join("pipe:");
  if (!ch) {
    std::fprintf(stderr, "join: %s\n", ch.error().message().c_str());
    return 2;
  }
  std::array<std::byte, 16> buffer;
  auto n = ch->recv(buffer, kWait);
  if (n || n.error() != std::errc::not_supported ||
      n.error().message().find("descriptor 0") == std::string::npos) {
    std::fprintf(stderr, "recv: %s\n", n ? "succeeded" : n.error().message().c_str());
    return 3;
  }
  return ch->send("via stdout", kWait) ? 0 : 4;
}

// Blocks in a never-deadline recv on a read end whose shared description is O_NONBLOCK.
IPCX_HELPER(pipe_blocking_recv_on_nonblocking_description) {
  auto ch = ipcx::channel::join(args.at(0));
  if (!ch) return 2;
  int fd = ch->address().read_fd;
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) return 3;
  ipcx::test::ready();
  std::array<std::byte, 64> buffer;
  auto n = ch->recv(buffer);
  if (!n) {
    std::fprintf(stderr, "recv: %s\n", n.error().message().c_str());
    return 4;
  }
  return as_string(std::span(buffer.data(), *n)) == "late" ? 0 : 5;
}

class PipeChannel : public ipcx::test::ipc_test {};

TEST_F(PipeChannel, ExecedChildExchangesMessagesBothWays) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair) << pair.error().message();
  auto& [mine, theirs] = *pair;
  ASSERT_TRUE(theirs.keep_across_exec());
  auto child =
      child_process::helper("pipe_echo", {theirs.address().to_string()}, inheriting(theirs));
  close_our_copy(theirs);
  ASSERT_TRUE(child.wait_ready());

  // Larger than the pipe's 64 KiB buffer, so the frame crosses in several reads and writes.
  std::string big(200'000, 'x');
  std::vector<std::string> messages = {"hello", "", "world", big};
  std::vector<std::byte> buffer(1 << 20);
  for (const auto& m : messages) {
    ASSERT_TRUE(mine.send(m, kWait));
    auto n = mine.recv(buffer, kWait);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(as_string(std::span(buffer.data(), *n)), m);
  }
  close_our_copy(mine);
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(PipeChannel, KeepAcrossExecClearsCloseOnExecAndGivesTheDescriptorsInTheAddress) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& end = pair->second;
  int r = end.address().read_fd;
  int w = end.address().write_fd;
  EXPECT_EQ(end.address().to_string(), "pipe:" + std::to_string(r) + "," + std::to_string(w));
  EXPECT_TRUE(::fcntl(r, F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(w, F_GETFD) & FD_CLOEXEC);
  ASSERT_TRUE(end.keep_across_exec());
  EXPECT_FALSE(::fcntl(r, F_GETFD) & FD_CLOEXEC);
  EXPECT_FALSE(::fcntl(w, F_GETFD) & FD_CLOEXEC);
  EXPECT_EQ(end.wait_fd(), r);
}

TEST_F(PipeChannel, RecvAfterTheWriterExitsIsEndOfStream) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [mine, theirs] = *pair;
  auto child = child_process::helper("pipe_send_and_exit", {theirs.address().to_string()},
                                     inheriting(theirs));
  close_our_copy(theirs);
  std::array<std::byte, 64> buffer;
  auto n = mine.recv(buffer, kWait);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "last words");
  auto end = mine.recv(buffer, kWait);
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error(), ipcx::errc::end_of_stream) << end.error().message();
  EXPECT_EQ(end.error().detail(), "");
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(PipeChannel, WriterKilledInTheMiddleOfAMessageIsEndOfStreamNotAHang) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [mine, theirs] = *pair;
  auto child = child_process::helper(
      "pipe_half_frame", {std::to_string(theirs.address().write_fd), "packets"}, inheriting(theirs));
  close_our_copy(theirs);
  ASSERT_TRUE(child.wait_ready());
  child.kill(SIGKILL);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);

  std::array<std::byte, 256> buffer;
  auto start = std::chrono::steady_clock::now();
  auto n = mine.recv(buffer, kWait);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), ipcx::errc::end_of_stream) << n.error().message();
  EXPECT_NE(n.error().detail().find("middle of a message"), std::string::npos)
      << n.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // The never-deadline path too; it cannot block, since no writer is left.
  auto again = mine.recv(buffer);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), ipcx::errc::end_of_stream) << again.error().message();
}

TEST_F(PipeChannel, FrameClaimingMoreThanMaxMessageIsBadFrame) {
  auto pair = ipcx::channel::pipe({.max_message = 1024});
  ASSERT_TRUE(pair);
  auto& [mine, theirs] = *pair;
  EXPECT_EQ(mine.info().max_message, 1024u);
  auto header = frame_header(1025);
  ASSERT_EQ(::write(theirs.address().write_fd, header.data(), header.size()), 6);
  std::vector<std::byte> buffer(4096);
  auto n = mine.recv(buffer, kWait);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), ipcx::errc::bad_frame) << n.error().message();
}

TEST_F(PipeChannel, OnAPlainPipeAFrameClaimingMoreThanMaxMessageIsBadFrame) {
  auto plain = make_plain_pipe_channel({.max_message = 1024});
  ASSERT_TRUE(plain.channel);
  auto header = frame_header(1025, false);
  ASSERT_EQ(::write(plain.feed.get(), header.data(), header.size()), 4);
  std::vector<std::byte> buffer(4096);
  auto n = plain.channel->recv(buffer, kWait);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), ipcx::errc::bad_frame) << n.error().message();
}

TEST_F(PipeChannel, OnAPlainPipeAHalfFrameAtEndOfStreamIsReportedNotReturned) {
  auto plain = make_plain_pipe_channel();
  ASSERT_TRUE(plain.channel);
  auto header = frame_header(100, false);
  ASSERT_EQ(::write(plain.feed.get(), header.data(), header.size()), 4);
  ASSERT_EQ(::write(plain.feed.get(), "0123456789", 10), 10);
  plain.feed.reset();
  std::array<std::byte, 256> buffer;
  auto n = plain.channel->recv(buffer, kWait);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), ipcx::errc::end_of_stream) << n.error().message();
  EXPECT_NE(n.error().detail().find("middle of a message"), std::string::npos)
      << n.error().message();
}

TEST_F(PipeChannel, PacketModeCarriesEveryKindOfMessageWhole) {
  // Verbatim, stuffed (starting with the escape byte 0xA5), long (over PIPE_BUF), and empty; with
  // a deadline and without one (never-deadline calls take their own inline path).
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  std::vector<std::vector<std::byte>> messages;
  messages.emplace_back(64, std::byte{1});
  messages.emplace_back(4096, std::byte{2});
  messages.emplace_back(1, std::byte{0xA5});
  messages.emplace_back(100, std::byte{0xA5});
  messages.emplace_back(4096, std::byte{0xA5});
  messages.emplace_back(40000, std::byte{3});  // fits the pipe: this test is one process
  messages.emplace_back();
  messages.emplace_back(4095, std::byte{0xA5});
  std::vector<std::byte> buffer(80000);
  for (ipcx::deadline until : {ipcx::deadline(kWait), ipcx::deadline::never()}) {
    SCOPED_TRACE(until.is_never() ? "never" : "deadline");
    for (auto& m : messages) {
      // Into a buffer of exactly its size (under a page: through the channel's own buffer), into
      // a large one (read in place), and into one too small and then the exact one: kept, then
      // returned.
      std::vector<std::byte> exact(m.size());
      ASSERT_TRUE(a.send(m, until));
      auto n = b.recv(exact, until);
      ASSERT_TRUE(n) << n.error().message();
      ASSERT_EQ(*n, m.size());
      EXPECT_EQ(exact, m);
      ASSERT_TRUE(a.send(m, until));
      n = b.recv(buffer, until);
      ASSERT_TRUE(n) << n.error().message();
      ASSERT_EQ(*n, m.size());
      EXPECT_TRUE(std::equal(m.begin(), m.end(), buffer.begin()));
      ASSERT_TRUE(a.send(m, until));
      if (!m.empty()) {
        std::vector<std::byte> small(m.size() - 1);
        auto refused = b.recv(small, until);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error(), ipcx::errc::message_too_large);
      }
      std::ranges::fill(exact, std::byte{0});
      n = b.recv(exact, until);
      ASSERT_TRUE(n) << n.error().message();
      ASSERT_EQ(*n, m.size());
      EXPECT_EQ(exact, m);
    }
  }
}

TEST_F(PipeChannel, OnAPlainPipeFramesSplitAndBatchedAnyWayComeBackWhole) {
  // A writer process cuts the byte stream at awkward places (several frames in one write, a frame
  // across writes with a pause that leaves the receiver blocked in the middle of it); the
  // receiver uses never-deadline calls, whose inline path reads first and parses after.
  auto plain = make_plain_pipe_channel({.max_message = 8000});
  ASSERT_TRUE(plain.channel);
  spawn_options options;
  options.inherit = {plain.feed.get()};
  auto child =
      child_process::helper("pipe_raw_frames", {std::to_string(plain.feed.get())}, options);
  ASSERT_TRUE(child.wait_ready());
  plain.feed.reset();
  auto& ch = *plain.channel;
  std::vector<std::byte> buffer(8000);
  auto next = [&]() -> std::string {
    auto n = ch.recv(buffer);
    if (!n) return "error: " + n.error().message();
    return as_string(std::span(buffer.data(), *n));
  };
  EXPECT_EQ(next(), "alpha");
  EXPECT_EQ(next(), "beta");
  EXPECT_EQ(next(), "");
  EXPECT_EQ(next(), "gamma-delta");
  std::array<std::byte, 100> small;
  auto refused = ch.recv(small);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), ipcx::errc::message_too_large);
  EXPECT_EQ(next(), std::string(300, 'm'));
  EXPECT_EQ(next(), std::string(5000, 'z'));
  auto end = ch.recv(buffer);
  ASSERT_FALSE(end);
  EXPECT_EQ(end.error(), ipcx::errc::end_of_stream) << end.error().message();
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST_F(PipeChannel, JoinDescriptorsThatAreNotOpenFailsNamingTheDescriptor) {
  ASSERT_FALSE(is_open(99));
  ASSERT_FALSE(is_open(98));
  auto ch = ipcx::channel::join("pipe:99,98");
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::bad_file_descriptor) << ch.error().message();
  EXPECT_NE(ch.error().message().find("descriptor 99"), std::string::npos) << ch.error().message();
}

TEST_F(PipeChannel, JoinADescriptorThatIsNotAPipeFailsWithNotSupported) {
  auto path = scratch_.path("plain-file");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  auto text = "pipe:" + std::to_string(fd) + "," + std::to_string(fd);
  auto ch = ipcx::channel::join(text);
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::not_supported) << ch.error().message();
  EXPECT_NE(ch.error().message().find("descriptor " + std::to_string(fd) +
                                      " (read end) is a "
                                      "regular file, not a pipe or FIFO"),
            std::string::npos)
      << ch.error().message();
  EXPECT_TRUE(is_open(fd));  // a failed join takes nothing
  ::close(fd);
  ::unlink(path.c_str());
}

TEST_F(PipeChannel, JoinAWriteOnlyDescriptorAsTheReadEndFailsWithBadFileDescriptor) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  auto ch = ipcx::channel::join("pipe:" + std::to_string(fds[1]) + "," + std::to_string(fds[1]));
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::bad_file_descriptor) << ch.error().message();
  EXPECT_NE(ch.error().message().find("not open for reading"), std::string::npos)
      << ch.error().message();
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(PipeChannel, AdoptedDescriptorsAreClosedWithTheChannel) {
  int a[2];
  int b[2];
  ASSERT_EQ(::pipe2(a, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(b, O_CLOEXEC), 0);
  {
    auto ch = ipcx::channel::join("pipe:" + std::to_string(a[0]) + "," + std::to_string(b[1]));
    ASSERT_TRUE(ch) << ch.error().message();
    EXPECT_EQ(ch->info().kind, ipcx::mechanism::pipe);
    EXPECT_TRUE(ch->info().stream);
    EXPECT_FALSE(ch->info().persistent);
  }
  EXPECT_FALSE(is_open(a[0]));
  EXPECT_FALSE(is_open(b[1]));
  ::close(a[1]);
  ::close(b[0]);
}

TEST_F(PipeChannel, CreateIsNotSupportedAndPointsToChannelPipe) {
  auto ch = ipcx::channel::create("pipe:");
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), ipcx::errc::not_supported);
  EXPECT_NE(ch.error().detail().find("channel::pipe()"), std::string::npos) << ch.error().message();
}

TEST_F(PipeChannel, SendAfterTheReaderExitedFailsWithBrokenPipeInsteadOfSigpipe) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [mine, theirs] = *pair;
  auto child = child_process::helper("pipe_exit_at_once", {theirs.address().to_string()},
                                     inheriting(theirs));
  close_our_copy(theirs);
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  auto sent = mine.send("anyone there?");
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), std::errc::broken_pipe) << sent.error().message();
  auto with_deadline = mine.send("anyone there?", kWait);
  ASSERT_FALSE(with_deadline);
  EXPECT_EQ(with_deadline.error(), std::errc::broken_pipe) << with_deadline.error().message();
}

TEST_F(PipeChannel, InjectedEintrIsRetriedBySendAndRecv) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  std::array<std::byte, 64> buffer;
  for (ipcx::deadline until : {ipcx::deadline::never(), ipcx::deadline(kWait)}) {
    ipcx::detail::injected_eintr = 3;
    ASSERT_TRUE(a.send("through EINTR", until));
    EXPECT_EQ(ipcx::detail::injected_eintr, 0);
    ipcx::detail::injected_eintr = 3;
    auto n = b.recv(buffer, until);
    EXPECT_EQ(ipcx::detail::injected_eintr, 0);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(as_string(std::span(buffer.data(), *n)), "through EINTR");
  }
  ipcx::detail::injected_eintr = 0;
}

TEST_F(PipeChannel, TryCallsUseThePrivateNonblockingDescriptionsAndNeverBlock) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  // Frames of at most PIPE_BUF bytes: the kernel writes those whole or not at all. (A partly
  // written larger frame is completed past the deadline, so try_send would wait for the reader.)
  std::array<std::byte, PIPE_BUF - 4> buffer{};
  auto none = b.try_recv(buffer);
  ASSERT_TRUE(none) << none.error().message();
  EXPECT_FALSE(*none);
  // Fill the pipe: try_send reports false instead of blocking, and every frame stays whole.
  int sent = 0;
  for (;;) {
    auto ok = a.try_send(buffer);
    ASSERT_TRUE(ok) << ok.error().message();
    if (!*ok) break;
    ASSERT_LT(++sent, 1000);
  }
  EXPECT_GT(sent, 0);
  // The shared descriptors stayed blocking: only the private twins are O_NONBLOCK.
  EXPECT_FALSE(::fcntl(a.address().write_fd, F_GETFL) & O_NONBLOCK);
  EXPECT_FALSE(::fcntl(b.address().read_fd, F_GETFL) & O_NONBLOCK);
  for (int i = 0; i < sent; ++i) {
    auto n = b.try_recv(buffer);
    ASSERT_TRUE(n && *n) << i;
    EXPECT_EQ(**n, buffer.size());
  }
  auto drained = b.try_recv(buffer);
  ASSERT_TRUE(drained);
  EXPECT_FALSE(*drained);
}

TEST_F(PipeChannel, BlockingRecvWaitsEvenIfSomeoneSetNonblockOnTheSharedDescription) {
  auto pair = ipcx::channel::pipe();
  ASSERT_TRUE(pair);
  auto& [mine, theirs] = *pair;
  auto child = child_process::helper("pipe_blocking_recv_on_nonblocking_description",
                                     {theirs.address().to_string()}, inheriting(theirs));
  close_our_copy(theirs);
  ASSERT_TRUE(child.wait_ready());
  std::this_thread::sleep_for(50ms);  // let the child block in recv first
  ASSERT_TRUE(mine.send("late", kWait));
  EXPECT_EQ(child.wait_exit(kWait), 0) << child.stderr_text();  // killed if it hangs
}

TEST_F(PipeChannel, StdioChannelUsesStdinAndStdoutAndLeavesThemOpen) {
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(from_child, O_CLOEXEC), 0);
  spawn_options options;
  options.stdin_fd = to_child[0];
  options.stdout_fd = from_child[1];
  auto child = child_process::helper("pipe_stdio_echo", {}, options);
  ::close(to_child[0]);
  ::close(from_child[1]);
  {
    auto ch = ipcx::channel::join("pipe:" + std::to_string(from_child[0]) + "," +
                                  std::to_string(to_child[1]));
    ASSERT_TRUE(ch) << ch.error().message();
    ASSERT_TRUE(child.wait_ready());
    std::array<std::byte, 256> buffer;
    for (std::string m : {"one", "two", ""}) {
      ASSERT_TRUE(ch->send(m, kWait));
      auto n = ch->recv(buffer, kWait);
      ASSERT_TRUE(n) << n.error().message() << "\n" << child.stderr_text();
      EXPECT_EQ(as_string(std::span(buffer.data(), *n)), m);
    }
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(PipeChannel, StdioDirectionThatIsNoPipeFailsOnlyWhenUsed) {
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  int from_child[2];
  ASSERT_EQ(::pipe2(from_child, O_CLOEXEC), 0);
  spawn_options options;
  options.stdin_fd = null_fd;
  options.stdout_fd = from_child[1];
  auto child = child_process::helper("pipe_stdio_send_only", {}, options);
  ::close(null_fd);
  ::close(from_child[1]);
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();

  // The frame on the wire of a plain pipe: a 4-byte little-endian length, then the bytes.
  std::string expected = "via stdout";
  auto header = frame_header(static_cast<std::uint32_t>(expected.size()), false);
  std::vector<std::byte> wire(64);
  ssize_t got = ::read(from_child[0], wire.data(), wire.size());
  ::close(from_child[0]);
  ASSERT_EQ(got, static_cast<ssize_t>(4 + expected.size()));
  EXPECT_TRUE(std::equal(header.begin(), header.end(), wire.begin()));
  EXPECT_EQ(as_string(std::span(wire.data() + 4, expected.size())), expected);
}

}  // namespace
