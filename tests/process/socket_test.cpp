// Sockets: what is unique to them. Every kind between two processes (tcp and udp over IPv4 and
// IPv6 loopback, with the port the kernel chose), abstract names, datagram replies going back to
// their sender, raw datagram peers, stuffed messages, stale socket files, the file's permissions,
// kept datagrams, peers dying in the middle of a frame, and the errors of joining nobody. The shared contract is conformance_test.cpp.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ipcx/channel.hpp"
#include "ipcx/stream.hpp"
#include "support/process.hpp"
#include "support/scratch.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::mechanism;
using ipcx::test::child_process;
using ipcx::test::scratch;

constexpr auto kWait = 5s;

std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::span<const std::byte> as_bytes(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Receives one message as text, or the error's message prefixed with "error: ".
std::string recv_text(channel& ch, ipcx::deadline until = kWait) {
  std::vector<std::byte> buffer(ch.info().max_message);
  auto n = ch.recv(buffer, until);
  if (!n) return "error: " + n.error().message();
  return as_string(std::span(buffer.data(), *n));
}

// A socket file with nobody bound to it, as a killed server leaves behind.
void make_stale_socket_file(const std::string& path, int type = SOCK_STREAM) {
  int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  ::close(fd);
  ASSERT_TRUE(exists(path));
}

// Joins args[0], sends args[1], expects "re: " + args[1] back.
IPCX_HELPER(request_reply) {
  return ipcx::test::request_reply(args.at(0), args.at(1), kWait);
}

// Joins args[0] and waits to be told something by the side that created it.
IPCX_HELPER(wait_for_greeting) {
  auto ch = channel::join(args.at(0));
  if (!ch) {
    std::fprintf(stderr, "join: %s\n", ch.error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  auto greeting = recv_text(*ch);
  if (greeting != "hello, joiner") {
    std::fprintf(stderr, "greeting: %s\n", greeting.c_str());
    return 4;
  }
  return 0;
}

// Joins args[0] as whatever user it runs as; exits 0 only on EACCES naming the address.
IPCX_HELPER(join_expecting_eacces) {
  auto ch = channel::join(args.at(0));
  if (ch) return 1;
  std::fprintf(stderr, "%s\n", ch.error().message().c_str());
  if (ch.error() != std::errc::permission_denied) return 2;
  return ch.error().message().find(args.at(0)) == std::string::npos ? 3 : 0;
}

// Writes, as raw bytes to a stream channel, a frame header claiming 100 bytes and then only 10,
// and dies there.
IPCX_HELPER(die_in_the_middle_of_a_frame) {
  auto s = ipcx::stream::join(args.at(0), kWait);
  if (!s) {
    std::fprintf(stderr, "join: %s\n", s.error().message().c_str());
    return 2;
  }
  std::array<std::byte, 14> partial{std::byte{100}};  // little-endian length 100, then 10 bytes
  if (auto written = s->write_all(partial, kWait); !written) return 3;
  ipcx::test::ready();
  ::raise(SIGKILL);
  return 4;
}

// Joins args[0] and exits at once, closing its end.
IPCX_HELPER(join_and_leave) {
  auto ch = channel::join(args.at(0));
  if (!ch) return 2;
  ipcx::test::ready();
  return 0;
}

// Joins args[0] and idles, reading nothing, until killed.
IPCX_HELPER(join_and_idle) {
  auto ch = channel::join(args.at(0));
  if (!ch) return 2;
  ipcx::test::ready();
  std::this_thread::sleep_for(10s);
  return 0;
}

class SocketChannel : public ipcx::test::ipc_test {};

struct socket_kind {
  const char* name;
  std::function<std::string(scratch&)> address;
  bool stream;
  bool cross_host;
  bool ordered;
};

void PrintTo(const socket_kind& k, std::ostream* os) { *os << k.name; }

class EverySocketKind : public SocketChannel, public ::testing::WithParamInterface<socket_kind> {};

TEST_P(EverySocketKind, CarriesARequestAndItsReplyBetweenTwoProcesses) {
  auto server = channel::create(GetParam().address(scratch_), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto where = server->address();
  if (where.kind == mechanism::tcp || where.kind == mechanism::udp) {
    EXPECT_NE(where.port, 0) << "port 0 must be reported as the port the kernel chose";
  }
  auto info = server->info();
  EXPECT_EQ(info.kind, where.kind);
  EXPECT_EQ(info.stream, GetParam().stream);
  EXPECT_EQ(info.cross_host, GetParam().cross_host);
  EXPECT_EQ(info.ordered, GetParam().ordered);
  EXPECT_FALSE(info.persistent);

  auto child = child_process::helper("request_reply", {where.to_string(), "ping"});
  ASSERT_TRUE(child.wait_ready());
  EXPECT_EQ(recv_text(*server), "ping");
  ASSERT_TRUE(server->send(std::string_view("re: ping"), kWait));
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

std::string short_abstract_name(scratch& s) { return "unix:@" + s.ipc_name("sock").substr(1); }

INSTANTIATE_TEST_SUITE_P(
    Sockets, EverySocketKind,
    ::testing::Values(
        socket_kind{"unix", [](scratch& s) { return "unix:" + s.path("sock"); }, true, false, true},
        socket_kind{"unix_abstract", short_abstract_name, true, false, true},
        socket_kind{"unix_seqpacket", [](scratch& s) { return "unix-seqpacket:" + s.path("seq"); },
                    false, false, true},
        socket_kind{"unix_dgram", [](scratch& s) { return "unix-dgram:" + s.path("dgram"); },
                    false, false, true},
        socket_kind{"tcp4", [](scratch&) { return std::string("tcp://127.0.0.1:0"); }, true, true,
                    true},
        socket_kind{"tcp6", [](scratch&) { return std::string("tcp://[::1]:0"); }, true, true, true},
        socket_kind{"tcp_localhost", [](scratch&) { return std::string("tcp://localhost:0"); }, true,
                    true, true},
        socket_kind{"udp4", [](scratch&) { return std::string("udp://127.0.0.1:0"); }, false, true,
                    false},
        socket_kind{"udp6", [](scratch&) { return std::string("udp://[::1]:0"); }, false, true,
                    false}),
    [](const ::testing::TestParamInfo<socket_kind>& p) { return std::string(p.param.name); });

TEST_F(SocketChannel, AbstractSocketLeavesNoFileAndHasNothingToRemove) {
  auto where = short_abstract_name(scratch_);
  auto server = channel::create(where);
  ASSERT_TRUE(server) << server.error().message();
  auto again = channel::create(where);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::address_in_use) << again.error().message();
  EXPECT_TRUE(channel::remove(where));
  // Closing the socket is what frees the name.
  server = channel::create("unix:@" + scratch_.ipc_name("other").substr(1));
  ASSERT_TRUE(server);
  auto reborn = channel::create(where);
  EXPECT_TRUE(reborn) << reborn.error().message();
}

class DatagramReplies : public SocketChannel,
                        public ::testing::WithParamInterface<const char*> {
 protected:
  std::string address() {
    std::string kind = GetParam();
    return kind == "udp" ? "udp://127.0.0.1:0" : "unix-dgram:" + scratch_.path("dgram");
  }
};

TEST_P(DatagramReplies, GoToWhoeverSentLast) {
  auto server = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto where = server->address().to_string();
  auto first = child_process::helper("request_reply", {where, "first"});
  ASSERT_TRUE(first.wait_ready());
  EXPECT_EQ(recv_text(*server), "first");
  // The second client joins while the first still waits for its answer.
  auto second = child_process::helper("request_reply", {where, "second"});
  ASSERT_TRUE(second.wait_ready());
  ASSERT_TRUE(server->send(std::string_view("re: first"), kWait));
  EXPECT_EQ(recv_text(*server), "second");
  ASSERT_TRUE(server->send(std::string_view("re: second"), kWait));
  EXPECT_EQ(first.wait_exit(), 0) << first.stderr_text();
  EXPECT_EQ(second.wait_exit(), 0) << second.stderr_text();
}

TEST_P(DatagramReplies, CreatorCanSpeakFirstOnceSomeoneJoined) {
  auto server = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto nobody = server->send(std::string_view("anyone?"), 100ms);
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error(), errc::no_peer) << nobody.error().message();

  auto child = child_process::helper("wait_for_greeting", {server->address().to_string()});
  ASSERT_TRUE(child.wait_ready());
  auto greeted = server->send(std::string_view("hello, joiner"), kWait);
  ASSERT_TRUE(greeted) << greeted.error().message();
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  // The joiner's hello was used up, not delivered as a message.
  std::array<std::byte, 16> buffer{};
  auto nothing = server->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());
}

TEST_P(DatagramReplies, MessageTooLargeForTheBufferIsKept) {
  auto server = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto client = channel::join(server->address());
  ASSERT_TRUE(client) << client.error().message();
  std::string message(100, 'x');
  ASSERT_TRUE(client->send(message, kWait));
  std::array<std::byte, 10> small{};
  auto refused = server->recv(small, kWait);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::message_too_large) << refused.error().message();
  auto refused_again = server->try_recv(small);
  ASSERT_FALSE(refused_again);
  EXPECT_EQ(refused_again.error(), errc::message_too_large);
  EXPECT_EQ(recv_text(*server), message);
}

INSTANTIATE_TEST_SUITE_P(Sockets, DatagramReplies, ::testing::Values("unix_dgram", "udp"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

TEST_F(SocketChannel, RawDatagramPeersAreUnderstood) {
  // Messages travel as they are: a program using plain sockets can talk to a channel.
  auto path = scratch_.path("dgram");
  auto server = channel::create("unix-dgram:" + path, {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  int raw = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(raw, 0);
  sa_family_t autobind = AF_UNIX;
  ASSERT_EQ(::bind(raw, reinterpret_cast<sockaddr*>(&autobind), sizeof autobind), 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  EXPECT_EQ(::sendto(raw, "raw", 3, 0, reinterpret_cast<sockaddr*>(&a), sizeof a), 3);
  EXPECT_EQ(recv_text(*server), "raw");
  ASSERT_TRUE(server->send(std::string_view("cooked"), kWait));
  char reply[16] = {};
  EXPECT_EQ(::recv(raw, reply, sizeof reply, 0), 6);
  EXPECT_EQ(std::string(reply), "cooked");
  ::close(raw);
}

// Messages made only of the stuffing byte (0xA5), the empty one included, travel one byte longer
// so that no message is an empty packet (the end of a seqpacket stream, a datagram hello).
class StuffedMessages : public SocketChannel,
                        public ::testing::WithParamInterface<const char*> {};

TEST_P(StuffedMessages, ArriveIntactAtEverySizeAndBufferSize) {
  std::string kind = GetParam();
  std::string where = kind == "udp"         ? "udp://127.0.0.1:0"
                      : kind == "seqpacket" ? "unix-seqpacket:" + scratch_.path("seq")
                                            : "unix-dgram:" + scratch_.path("dgram");
  constexpr std::size_t max = 8;
  auto server = channel::create(where, {.max_message = max, .remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto client = channel::join(server->address(), {.max_message = max});
  ASSERT_TRUE(client) << client.error().message();
  const std::byte s{0xA5};
  std::vector<std::vector<std::byte>> messages;
  for (std::size_t size = 0; size <= max; ++size) messages.emplace_back(size, s);
  messages.push_back({s, std::byte{1}});  // starts like one, but is not
  messages.push_back({std::byte{1}, s});
  for (const auto& m : messages) {
    // Through a buffer of max_message (one recv), of the message's size and one byte short.
    for (std::size_t buffer_size : {max, m.size(), m.size() == 0 ? std::size_t{0} : m.size() - 1}) {
      ASSERT_TRUE(client->send(m, kWait));
      std::vector<std::byte> buffer(buffer_size);
      auto got = server->recv(buffer, kWait);
      if (buffer_size < m.size()) {
        ASSERT_FALSE(got) << m.size() << " bytes into " << buffer_size;
        EXPECT_EQ(got.error(), errc::message_too_large) << got.error().message();
        std::vector<std::byte> big(max);
        got = server->recv(big, kWait);
        buffer = big;
      }
      ASSERT_TRUE(got) << m.size() << " bytes into " << buffer_size << ": "
                       << got.error().message();
      ASSERT_EQ(*got, m.size()) << "into a buffer of " << buffer_size;
      EXPECT_TRUE(std::equal(m.begin(), m.end(), buffer.begin()));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sockets, StuffedMessages,
                         ::testing::Values("seqpacket", "unix_dgram", "udp"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

TEST_F(SocketChannel, UnixDatagramCarriesAMessageAboveTheDefaultSocketBuffer) {
  constexpr std::size_t big = 1 << 20;
  auto server = channel::create("unix-dgram:" + scratch_.path("dgram"),
                                {.max_message = big, .remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto client = channel::join(server->address(), {.max_message = big});
  ASSERT_TRUE(client) << client.error().message();
  std::string message(big, 'b');
  auto sent = client->send(message, kWait);
  ASSERT_TRUE(sent) << sent.error().message();
  EXPECT_EQ(recv_text(*server), message);
}

TEST_F(SocketChannel, UdpRefusesAMaximumAboveWhatADatagramCarries) {
  auto ch = channel::create("udp://127.0.0.1:0", {.max_message = 70000});
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), errc::message_too_large) << ch.error().message();
}

TEST_F(SocketChannel, SeqpacketTellsAnEmptyMessageFromTheEnd) {
  auto server = channel::create("unix-seqpacket:" + scratch_.path("seq"), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  {
    auto client = channel::join(server->address());
    ASSERT_TRUE(client) << client.error().message();
    ASSERT_TRUE(client->send(std::string_view(), kWait));
    ASSERT_TRUE(client->send(std::string_view(), kWait));
  }
  EXPECT_EQ(recv_text(*server), "");
  EXPECT_EQ(recv_text(*server), "");
  auto end = recv_text(*server);
  EXPECT_NE(end.find("end of stream"), std::string::npos) << end;
}

TEST_F(SocketChannel, StaleSocketFileIsRefusedByCreateAndReplacedByOpen) {
  auto path = scratch_.path("sock");
  make_stale_socket_file(path);
  auto refused = channel::create("unix:" + path);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::file_exists) << refused.error().message();

  auto server = channel::open("unix:" + path, {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto child = child_process::helper("request_reply", {"unix:" + path, "after"});
  ASSERT_TRUE(child.wait_ready());
  EXPECT_EQ(recv_text(*server), "after");
  ASSERT_TRUE(server->send(std::string_view("re: after"), kWait));
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SocketChannel, OpenJoinsASocketSomebodyListensOn) {
  auto path = scratch_.path("seq");
  auto server = channel::create("unix-seqpacket:" + path, {.remove_on_close = true});
  ASSERT_TRUE(server);
  auto client = channel::open("unix-seqpacket:" + path);
  ASSERT_TRUE(client) << client.error().message();
  ASSERT_TRUE(client->send(std::string_view("joined"), kWait));
  EXPECT_EQ(recv_text(*server), "joined");
}

TEST_F(SocketChannel, OpenAndRemoveRefuseAFileThatIsNotASocket) {
  auto path = scratch_.path("plain");
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto opened = channel::open("unix:" + path);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), std::errc::not_a_socket) << opened.error().message();
  auto removed = channel::remove("unix:" + path);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::not_a_socket) << removed.error().message();
  EXPECT_TRUE(exists(path));
  ::unlink(path.c_str());
}

TEST_F(SocketChannel, SocketFileIsCreated0600AndAnotherUserCannotConnect) {
  ASSERT_EQ(::geteuid(), 0u) << "the permission test runs a helper as nobody: run tests as root";
  for (std::string kind : {"unix:", "unix-seqpacket:", "unix-dgram:"}) {
    auto path = scratch_.path("sock");
    auto server = channel::create(kind + path, {.remove_on_close = true});
    ASSERT_TRUE(server) << server.error().message();
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u) << kind;
    auto child =
        child_process::helper("join_expecting_eacces", {kind + path},
                              {.as_nobody = true, .stdin_fd = -1, .stdout_fd = -1, .inherit = {}});
    EXPECT_EQ(child.wait_exit(), 0) << kind << ": " << child.stderr_text();
  }
}

TEST_F(SocketChannel, SocketFileTakesThePermissionsAsked) {
  mode_t mask = ::umask(0);
  ::umask(mask);
  auto path = scratch_.path("sock");
  auto server = channel::create("unix:" + path, {.permissions = 0640, .remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u & ~mask);
}

TEST_F(SocketChannel, SocketFileStaysUnlessRemoveOnCloseAndRemoveDeletesIt) {
  auto kept = scratch_.path("kept");
  auto gone = scratch_.path("gone");
  {
    auto a = channel::create("unix:" + kept);
    auto b = channel::create("unix-dgram:" + gone, {.remove_on_close = true});
    ASSERT_TRUE(a && b);
  }
  EXPECT_TRUE(exists(kept));
  EXPECT_FALSE(exists(gone));
  EXPECT_TRUE(channel::remove("unix:" + kept));
  EXPECT_FALSE(exists(kept));
  auto again = channel::remove("unix:" + kept);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::no_such_file_or_directory) << again.error().message();
}

TEST_F(SocketChannel, PeerKilledInTheMiddleOfAFrameEndsTheStream) {
  for (std::string where : {"unix:" + scratch_.path("sock"), std::string("tcp://127.0.0.1:0")}) {
    auto server = channel::create(where, {.remove_on_close = true});
    ASSERT_TRUE(server) << server.error().message();
    auto child = child_process::helper("die_in_the_middle_of_a_frame",
                                       {server->address().to_string()});
    ASSERT_TRUE(child.wait_ready());
    EXPECT_EQ(child.wait_exit(), 128 + SIGKILL) << child.stderr_text();
    std::array<std::byte, 256> buffer{};
    auto start = std::chrono::steady_clock::now();
    auto got = server->recv(buffer, kWait);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    ASSERT_FALSE(got) << where;
    EXPECT_EQ(got.error(), errc::end_of_stream) << got.error().message();
    EXPECT_NE(got.error().detail().find("middle"), std::string::npos) << got.error().message();
  }
}

TEST_F(SocketChannel, PeerKilledWithDataUnreadResetsTheConnectionIntoEndOfStream) {
  auto server = channel::create("tcp://127.0.0.1:0");
  ASSERT_TRUE(server) << server.error().message();
  auto child = child_process::helper("join_and_idle", {server->address().to_string()});
  ASSERT_TRUE(child.wait_ready());
  // The helper never reads this: when it dies the kernel answers with a reset.
  ASSERT_TRUE(server->send(std::string_view("unread"), kWait));
  child.kill(SIGKILL);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
  std::array<std::byte, 64> buffer{};
  auto got = server->recv(buffer, kWait);
  ASSERT_FALSE(got);
  bool clean = got.error() == errc::end_of_stream || got.error() == std::errc::connection_reset;
  EXPECT_TRUE(clean) << got.error().message();
}

TEST_F(SocketChannel, SendingToAPeerThatLeftFailsWithBrokenPipeNotSigpipe) {
  // Default SIGPIPE: a send without MSG_NOSIGNAL would kill this test.
  struct sigaction previous {};
  struct sigaction by_default {};
  by_default.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGPIPE, &by_default, &previous), 0);
  for (std::string where : {"unix:" + scratch_.path("sock"), "unix-seqpacket:" + scratch_.path("seq"),
                            std::string("tcp://127.0.0.1:0")}) {
    auto server = channel::create(where, {.remove_on_close = true});
    ASSERT_TRUE(server) << server.error().message();
    auto child = child_process::helper("join_and_leave", {server->address().to_string()});
    ASSERT_TRUE(child.wait_ready());
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
    // TCP may take the first send or two before the peer's reset arrives.
    ipcx::result<void> sent;
    for (int i = 0; i < 20 && sent; ++i) {
      sent = server->send(std::string_view("anyone?"), kWait);
      if (sent) std::this_thread::sleep_for(5ms);
    }
    ASSERT_FALSE(sent) << where;
    bool broken = sent.error() == std::errc::broken_pipe ||
                  sent.error() == std::errc::connection_reset;
    EXPECT_TRUE(broken) << sent.error().message();
  }
  ::sigaction(SIGPIPE, &previous, nullptr);
}

TEST_F(SocketChannel, JoinWithNobodyListeningNamesTheAddress) {
  std::string free_port;
  {
    auto probe = channel::create("tcp://127.0.0.1:0");
    ASSERT_TRUE(probe);
    free_port = probe->address().to_string();
  }
  auto refused = channel::join(free_port);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::connection_refused) << refused.error().message();
  EXPECT_EQ(refused.error().object(), free_port);
  EXPECT_NE(refused.error().message().find(free_port), std::string::npos);

  auto missing = channel::join("unix:" + scratch_.path("absent"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory) << missing.error().message();
  auto missing_dgram = channel::join("unix-dgram:" + scratch_.path("absent"));
  ASSERT_FALSE(missing_dgram);
  EXPECT_EQ(missing_dgram.error(), std::errc::no_such_file_or_directory);
  auto nobody = channel::join("unix:@" + scratch_.ipc_name("absent").substr(1));
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.error(), std::errc::connection_refused) << nobody.error().message();
}

TEST_F(SocketChannel, CreatorAcceptsOnlyOnePeer) {
  auto server = channel::create("unix:" + scratch_.path("sock"), {.remove_on_close = true});
  ASSERT_TRUE(server);
  auto first = channel::join(server->address());
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->send(std::string_view("one"), kWait));
  EXPECT_EQ(recv_text(*server), "one");
  // The listening socket is closed once a peer was accepted.
  auto second = channel::join(server->address());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::connection_refused) << second.error().message();
}

TEST_F(SocketChannel, TrySendBeforeAnyPeerConnectedIsFalse) {
  auto server = channel::create("tcp://127.0.0.1:0");
  ASSERT_TRUE(server);
  auto sent = server->try_send(as_bytes("early"));
  ASSERT_TRUE(sent) << sent.error().message();
  EXPECT_FALSE(*sent);
  EXPECT_GE(server->wait_fd(), 0);
}

}  // namespace
