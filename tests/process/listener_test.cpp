// ipcx::listener (one server, many clients in turn) and ipcx::stream (raw bytes over sockets,
// pipes and FIFOs).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ipcx/channel.hpp"
#include "ipcx/listener.hpp"
#include "ipcx/stream.hpp"
#include "support/process.hpp"
#include "support/scratch.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::listener;
using ipcx::stream;
using ipcx::test::child_process;
using ipcx::test::scratch;

constexpr auto kWait = 5s;

std::string as_string(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string recv_text(channel& ch) {
  std::vector<std::byte> buffer(ch.info().max_message);
  auto n = ch.recv(buffer, kWait);
  if (!n) return "error: " + n.error().message();
  return as_string(std::span(buffer.data(), *n));
}

// Reads from `s` until `size` bytes came, the stream ended or failed.
std::string read_exactly(stream& s, std::size_t size) {
  std::string out;
  std::array<std::byte, 64> buffer{};
  while (out.size() < size) {
    auto n = s.read(std::span(buffer).first(std::min(buffer.size(), size - out.size())), kWait);
    if (!n) return out + " [error: " + n.error().message() + "]";
    if (*n == 0) return out + " [end]";
    out += as_string(std::span(buffer.data(), *n));
  }
  return out;
}

// Joins args[0], sends args[1], expects "re: " + args[1] back.
IPCX_HELPER(client) {
  return ipcx::test::request_reply(args.at(0), args.at(1), kWait);
}

// Connects a raw stream to args[0], writes "hello, " and "world" in two writes and expects the
// twelve bytes back in capitals, then the end of the stream.
IPCX_HELPER(stream_client) {
  auto s = stream::join(args.at(0), kWait);
  if (!s) {
    std::fprintf(stderr, "join: %s\n", s.error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  for (std::string_view part : {"hello, ", "world"}) {
    if (auto written = s->write_all(part, kWait); !written) {
      std::fprintf(stderr, "write: %s\n", written.error().message().c_str());
      return 3;
    }
  }
  auto answer = read_exactly(*s, 12);
  if (answer != "HELLO, WORLD") {
    std::fprintf(stderr, "answer: %s\n", answer.c_str());
    return 4;
  }
  std::array<std::byte, 1> one{};
  auto end = s->read(one, kWait);
  if (!end || *end != 0) {
    std::fprintf(stderr, "expected the end of the stream\n");
    return 5;
  }
  return 0;
}

class Listener : public ipcx::test::ipc_test {};

class EveryListenerKind : public Listener,
                          public ::testing::WithParamInterface<const char*> {
 protected:
  std::string address() {
    std::string kind = GetParam();
    if (kind == "unix") return "unix:" + scratch_.path("sock");
    if (kind == "unix_abstract") return "unix:@" + scratch_.ipc_name("sock").substr(1);
    if (kind == "unix_seqpacket") return "unix-seqpacket:" + scratch_.path("seq");
    return "tcp://127.0.0.1:0";
  }
};

TEST_P(EveryListenerKind, AcceptsSeveralClientsInTurn) {
  auto server = listener::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto where = server->address().to_string();
  if (server->address().kind == ipcx::mechanism::tcp) {
    EXPECT_NE(server->address().port, 0);
  }
  // All three connect at once; the backlog holds them until each is accepted.
  std::vector<child_process> clients;
  for (const char* name : {"ann", "bob", "cy"})
    clients.push_back(child_process::helper("client", {where, name}));
  for (auto& c : clients) ASSERT_TRUE(c.wait_ready());
  std::vector<std::string> heard;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    auto ch = server->accept(kWait);
    ASSERT_TRUE(ch) << ch.error().message();
    EXPECT_EQ(ch->address().to_string(), where);
    auto name = recv_text(*ch);
    heard.push_back(name);
    ASSERT_TRUE(ch->send("re: " + name, kWait));
  }
  for (auto& c : clients) EXPECT_EQ(c.wait_exit(), 0) << c.stderr_text();
  std::sort(heard.begin(), heard.end());
  EXPECT_EQ(heard, (std::vector<std::string>{"ann", "bob", "cy"}));
}

INSTANTIATE_TEST_SUITE_P(Sockets, EveryListenerKind,
                         ::testing::Values("unix", "unix_abstract", "unix_seqpacket", "tcp"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

TEST_F(Listener, AcceptGivesUpAtItsDeadline) {
  auto server = listener::create("unix:" + scratch_.path("sock"), {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto start = std::chrono::steady_clock::now();
  auto ch = server->accept(100ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), errc::timed_out) << ch.error().message();
  EXPECT_GE(waited, 95ms);
  EXPECT_LT(waited, 2s);
}

TEST_F(Listener, TryAcceptFindsNothingThenTheWaitingClient) {
  auto server = listener::create("tcp://127.0.0.1:0");
  ASSERT_TRUE(server) << server.error().message();
  auto nothing = server->try_accept();
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());

  auto client = channel::join(server->address());
  ASSERT_TRUE(client) << client.error().message();
  pollfd p{.fd = server->wait_fd(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "wait_fd must poll readable with a client waiting";
  auto accepted = server->try_accept();
  ASSERT_TRUE(accepted) << accepted.error().message();
  ASSERT_TRUE(accepted->has_value());
  ASSERT_TRUE(client->send(std::string_view("hi"), kWait));
  EXPECT_EQ(recv_text(**accepted), "hi");
}

TEST_F(Listener, AcceptedChannelsOutliveTheListener) {
  std::optional<channel> accepted;
  std::optional<channel> client;
  {
    auto server = listener::create("unix-seqpacket:" + scratch_.path("seq"),
                                   {.max_message = 100, .remove_on_close = true});
    ASSERT_TRUE(server) << server.error().message();
    auto joined = channel::join(server->address(), {.max_message = 100});
    ASSERT_TRUE(joined);
    client.emplace(std::move(*joined));
    auto ch = server->accept(kWait);
    ASSERT_TRUE(ch) << ch.error().message();
    EXPECT_EQ(ch->info().max_message, 100u);
    accepted.emplace(std::move(*ch));
  }
  ASSERT_TRUE(client->send(std::string_view("still here"), kWait));
  EXPECT_EQ(recv_text(*accepted), "still here");
}

TEST_F(Listener, CreateRefusesAnExistingPathAndOpenReplacesOnlyAStaleOne) {
  auto path = scratch_.path("sock");
  {
    // A socket file nobody is bound to any more, as a killed server leaves it.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  auto refused = listener::create("unix:" + path);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::file_exists) << refused.error().message();

  auto server = listener::open("unix:" + path, {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  // Now somebody listens: a second open must not steal the name.
  auto second = listener::open("unix:" + path);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), std::errc::file_exists) << second.error().message();
  auto client = channel::join("unix:" + path);
  ASSERT_TRUE(client) << client.error().message();
  auto ch = server->accept(kWait);
  ASSERT_TRUE(ch) << ch.error().message();
}

TEST_F(Listener, SocketFileStaysUnlessRemoveOnClose) {
  auto kept = scratch_.path("kept");
  auto gone = scratch_.path("gone");
  {
    auto a = listener::create("unix:" + kept);
    auto b = listener::create("unix:" + gone, {.remove_on_close = true});
    ASSERT_TRUE(a && b);
    struct stat st {};
    ASSERT_EQ(::lstat(kept.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
  EXPECT_TRUE(exists(kept));
  EXPECT_FALSE(exists(gone));
  EXPECT_TRUE(channel::remove("unix:" + kept));
}

TEST_F(Listener, RefusesMechanismsThatDoNotAccept) {
  for (const char* where : {"udp://127.0.0.1:0", "mq:/nothing"}) {
    auto l = listener::create(where);
    ASSERT_FALSE(l) << where;
    EXPECT_EQ(l.error(), errc::not_supported) << l.error().message();
  }
  auto packets = listener::create("unix-seqpacket:" + scratch_.path("seq"),
                                  {.remove_on_close = true});
  ASSERT_TRUE(packets);
  auto raw = packets->accept_stream(10ms);
  ASSERT_FALSE(raw);
  EXPECT_EQ(raw.error(), errc::not_supported) << raw.error().message();
}

class StreamOverSockets : public Listener, public ::testing::WithParamInterface<const char*> {};

TEST_P(StreamOverSockets, CarriesRawBytesBothWays) {
  std::string kind = GetParam();
  auto server = listener::create(kind == "tcp" ? "tcp://[::1]:0" : "unix:" + scratch_.path("sock"),
                                 {.remove_on_close = true});
  ASSERT_TRUE(server) << server.error().message();
  auto child = child_process::helper("stream_client", {server->address().to_string()});
  ASSERT_TRUE(child.wait_ready());
  {
    auto s = server->accept_stream(kWait);
    ASSERT_TRUE(s) << s.error().message();
    // No framing: the two writes arrive as twelve bytes, however the kernel splits them.
    auto text = read_exactly(*s, 12);
    ASSERT_EQ(text, "hello, world");
    std::transform(text.begin(), text.end(), text.begin(),
                   [](char c) { return static_cast<char>(std::toupper(c)); });
    auto written = s->write_all(text, kWait);
    ASSERT_TRUE(written) << written.error().message();
  }  // closing the stream is the end the client waits for
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

INSTANTIATE_TEST_SUITE_P(Sockets, StreamOverSockets, ::testing::Values("unix", "tcp"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           return std::string(p.param);
                         });

TEST_F(Listener, StreamJoinWithNobodyListeningFails) {
  auto missing = stream::join("unix:" + scratch_.path("absent"), 100ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory) << missing.error().message();
  std::string free_port;
  {
    auto probe = listener::create("tcp://127.0.0.1:0");
    ASSERT_TRUE(probe);
    free_port = probe->address().to_string();
  }
  auto refused = stream::join(free_port, 1s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::connection_refused) << refused.error().message();
  auto packets = stream::join("udp://127.0.0.1:9", 100ms);
  ASSERT_FALSE(packets);
  EXPECT_EQ(packets.error(), errc::not_supported);
}

TEST_F(Listener, StreamPipeReadsWhatWasWrittenAndGivesUpAtTheDeadline) {
  auto ends = stream::pipe();
  ASSERT_TRUE(ends) << ends.error().message();
  auto& [in, out] = *ends;
  std::array<std::byte, 16> buffer{};
  auto start = std::chrono::steady_clock::now();
  auto nothing = in.read(buffer, 50ms);
  ASSERT_FALSE(nothing);
  EXPECT_EQ(nothing.error(), errc::timed_out) << nothing.error().message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);

  ASSERT_TRUE(out.write_all(std::string_view("abc")));
  auto got = in.read(buffer, kWait);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_string(std::span(buffer.data(), *got)), "abc");
  ASSERT_TRUE(out.write_all(std::string_view("de"), kWait));
  got = in.read(buffer);
  ASSERT_TRUE(got);
  EXPECT_EQ(as_string(std::span(buffer.data(), *got)), "de");

  out = std::move(in);  // closes the write end
  auto end = out.read(buffer, kWait);
  ASSERT_TRUE(end) << end.error().message();
  EXPECT_EQ(*end, 0u);
}

TEST_F(Listener, StreamWriteAllToAFullPipeTimesOutSayingHowMuchWentOut) {
  auto ends = stream::pipe();
  ASSERT_TRUE(ends) << ends.error().message();
  std::vector<std::byte> data(4 << 20);
  auto written = ends->second.write_all(data, 100ms);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error(), errc::timed_out) << written.error().message();
  EXPECT_NE(written.error().detail().find("of 4194304 bytes written"), std::string::npos)
      << written.error().message();
}

TEST_F(Listener, StreamWriteToAPipeWithoutReaderIsBrokenPipe) {
  std::optional<stream> write_end;
  {
    auto ends = stream::pipe();
    ASSERT_TRUE(ends) << ends.error().message();
    write_end.emplace(std::move(ends->second));
  }  // the read end is gone
  auto& out = *write_end;
  auto written = out.write_all(std::string_view("x"));
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error(), std::errc::broken_pipe) << written.error().message();
  written = out.write_all(std::string_view("x"), 100ms);
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error(), std::errc::broken_pipe) << written.error().message();
}

TEST_F(Listener, StreamJoinToAFifoWaitsForAReaderUntilTheDeadline) {
  auto path = scratch_.path("fifo");
  auto missing = stream::join("fifo:" + path, 50ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory) << missing.error().message();

  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  auto start = std::chrono::steady_clock::now();
  auto lonely = stream::join("fifo:" + path, 100ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(lonely);
  EXPECT_EQ(lonely.error(), errc::timed_out) << lonely.error().message();
  EXPECT_GE(waited, 95ms);
  EXPECT_LT(waited, 2s);

  int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  {
    auto writer = stream::join("fifo:" + path, kWait);
    ASSERT_TRUE(writer) << writer.error().message();
    ASSERT_TRUE(writer->write_all(std::string_view("through the fifo"), kWait));
  }
  char buffer[64] = {};
  ssize_t n = ::read(reader, buffer, sizeof buffer);
  EXPECT_EQ(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0), "through the fifo");
  ::close(reader);
  ::unlink(path.c_str());
}

}  // namespace
