// signal:PID / signal:self — what is unique to real-time signal channels: the receiving process
// and its pid, the 7-byte messages, a full signal queue, and joining processes that cannot or may
// not receive.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/syscall.hpp"
#include "ipcx/channel.hpp"
#include "process.hpp"
#include "scratch.hpp"

namespace {

using ipcx::test::as_nobody;
using ipcx::test::pipe_pair;
using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::test::child_process;
using ipcx::test::spawn_options;

int message_signal() { return SIGRTMIN + 4; }

// Message `i` of a sequence: 0 to 7 bytes, each byte depending on i and its position.
std::string pattern(int i) {
  std::string text(static_cast<std::size_t>(i % 8), '\0');
  for (std::size_t j = 0; j < text.size(); ++j)
    text[j] = static_cast<char>((i * 31 + static_cast<int>(j) * 7) & 0xff);
  return text;
}

// A sequence number as a 2-byte message, and back.
std::string counter(int i) {
  return {static_cast<char>(i & 0xff), static_cast<char>((i >> 8) & 0xff)};
}
int counter_of(const std::byte* bytes) {
  return static_cast<int>(bytes[0]) | static_cast<int>(bytes[1]) << 8;
}

std::string as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

spawn_options stdin_from(int fd, bool as_nobody = false) {
  spawn_options options;
  options.stdin_fd = fd;
  options.as_nobody = as_nobody;
  return options;
}
// Waits up to `timeout` for a byte (or EOF) on stdin: the parent's go-ahead.
bool wait_for_go(std::chrono::milliseconds timeout = 10s) {
  pollfd p{.fd = 0, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  char byte = 0;
  return ::read(0, &byte, 1) >= 0;
}

// Makes the receiving end and reports its address on stdout, before ready().
std::optional<channel> make_receiver() {
  auto ch = channel::create("signal:self");
  if (!ch) {
    std::fprintf(stderr, "%s\n", ch.error().message().c_str());
    return std::nullopt;
  }
  std::printf("%s\n", ch->address().to_string().c_str());
  std::fflush(stdout);
  return std::move(*ch);
}

// The address a receiver helper printed (its first line of stdout).
std::string reported_address(const child_process& child) {
  auto text = child.stdout_text();
  return text.substr(0, text.find('\n'));
}

bool signal_blocked_here() {
  sigset_t current;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &current);
  return ::sigismember(&current, message_signal()) == 1;
}

// Helpers.

// Receives args[0] messages of the pattern sequence.
IPCX_HELPER(receive_sequence) {
  auto ch = make_receiver();
  if (!ch) return 2;
  ipcx::test::ready();
  std::vector<std::byte> buffer(7);
  for (int i = 0, n = std::stoi(args[0]); i < n; ++i) {
    auto got = ch->recv(buffer, 10s);
    if (!got) {
      std::fprintf(stderr, "message %d: %s\n", i, got.error().message().c_str());
      return 3;
    }
    if (as_text(std::span(buffer.data(), *got)) != pattern(i)) {
      std::fprintf(stderr, "message %d is wrong\n", i);
      return 4;
    }
  }
  return 0;
}

// Lowers its RLIMIT_SIGPENDING to args[0], receives nothing until stdin says go, then counts the
// messages queued (counters 0, 1, 2... in order) and prints "received N".
IPCX_HELPER(receive_after_go) {
  rlim_t limit = std::stoul(args[0]);
  rlimit small{.rlim_cur = limit, .rlim_max = limit};
  if (::setrlimit(RLIMIT_SIGPENDING, &small) != 0) return 5;
  auto ch = make_receiver();
  if (!ch) return 2;
  ipcx::test::ready();
  if (!wait_for_go()) return 6;
  std::vector<std::byte> buffer(7);
  int count = 0;
  for (;;) {
    auto got = ch->recv(buffer, 200ms);
    if (!got && got.error() == errc::timed_out) break;
    if (!got) {
      std::fprintf(stderr, "%s\n", got.error().message().c_str());
      return 3;
    }
    if (*got != 2 || counter_of(buffer.data()) != count) {
      std::fprintf(stderr, "message %d is out of order\n", count);
      return 4;
    }
    ++count;
  }
  std::printf("received %d\n", count);
  return 0;
}

// Receives until stdin says go, then exits.
IPCX_HELPER(receive_until_go) {
  auto ch = make_receiver();
  if (!ch) return 2;
  ipcx::test::ready();
  return wait_for_go() ? 0 : 6;
}

// A process that does not listen: the message signal at its default action, unblocked.
IPCX_HELPER(not_listening) {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  ::sigaction(message_signal(), &fallback, nullptr);
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, message_signal());
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  ipcx::test::ready();
  return wait_for_go() ? 0 : 6;
}

// Joins args[0]; exit 0 when that fails with EPERM.
IPCX_HELPER(join_expecting_eperm) {
  auto ch = channel::join(args[0]);
  if (ch) return 1;
  std::fprintf(stderr, "%s\n", ch.error().message().c_str());
  return ch.error() == std::errc::operation_not_permitted ? 0 : 2;
}

class SignalChannel : public ipcx::test::ipc_test {};

TEST_F(SignalChannel, AnotherProcessReceivesAHundredMessagesInTheOrderSent) {
  auto receiver = child_process::helper("receive_sequence", {"100"});
  ASSERT_TRUE(receiver.wait_ready());
  auto where = reported_address(receiver);
  EXPECT_EQ(where, "signal:" + std::to_string(receiver.pid()));
  auto ch = channel::join(where);
  ASSERT_TRUE(ch) << ch.error().message();
  EXPECT_EQ(ch->info().max_message, 7u);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ch->send(pattern(i), 5s)) << "message " << i;
  EXPECT_EQ(receiver.wait_exit(), 0) << receiver.stderr_text();
}

TEST_F(SignalChannel, FullSignalQueueMakesTheSenderTimeOutAndDropsNothing) {
  ASSERT_EQ(::geteuid(), 0u) << "the receiver runs as nobody: run tests as root";
  constexpr int limit = 8;
  pipe_pair go;
  // As nobody, so the pending signals counted against its limit are only those of user 65534
  // (the count is per real user id of the receiver, the limit the receiver's own).
  auto receiver =
      child_process::helper("receive_after_go", {std::to_string(limit)}, stdin_from(go.read, true));
  ASSERT_TRUE(receiver.wait_ready());
  auto ch = channel::join(reported_address(receiver));
  ASSERT_TRUE(ch) << ch.error().message();

  int sent = 0;
  std::optional<ipcx::error> refusal;
  for (; sent < 4 * limit; ++sent) {
    auto result = ch->send(counter(sent), 50ms);
    if (!result) {
      refusal = result.error();
      break;
    }
  }
  ASSERT_TRUE(refusal) << "the queue never filled";
  RecordProperty("accepted_before_full", sent);
  EXPECT_EQ(*refusal, errc::timed_out) << refusal->message();
  EXPECT_NE(refusal->detail().find("signal queue is full"), std::string::npos)
      << refusal->message();
  EXPECT_LE(sent, limit);
  EXPECT_GT(sent, 0);
  auto next = counter(sent);
  auto refused_now = ch->try_send(std::as_bytes(std::span(next.data(), next.size())));
  ASSERT_TRUE(refused_now) << refused_now.error().message();
  EXPECT_FALSE(*refused_now);

  ASSERT_EQ(::write(go.write, "g", 1), 1);
  ASSERT_EQ(receiver.wait_exit(), 0) << receiver.stderr_text();
  EXPECT_EQ(receiver.stdout_text().substr(receiver.stdout_text().find('\n') + 1),
            "received " + std::to_string(sent) + "\n");
}

TEST_F(SignalChannel, JoinOnAPidThatDoesNotExistFailsWithNoSuchProcessNamingIt) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  auto ch = channel::join("signal:" + std::to_string(pid));
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::no_such_process) << ch.error().message();
  EXPECT_NE(ch.error().message().find("no such process"), std::string::npos)
      << ch.error().message();
  EXPECT_NE(ch.error().message().find(std::to_string(pid)), std::string::npos)
      << ch.error().message();
}

TEST_F(SignalChannel, JoinOnAProcessThatDoesNotReceiveIsRefusedAndLeavesItAlive) {
  pipe_pair go;
  auto idle = child_process::helper("not_listening", {}, stdin_from(go.read));
  ASSERT_TRUE(idle.wait_ready());
  auto ch = channel::join("signal:" + std::to_string(idle.pid()));
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::connection_refused) << ch.error().message();
  EXPECT_NE(ch.error().detail().find("process " + std::to_string(idle.pid()) +
                                     " is not receiving signal SIGRTMIN+4"),
            std::string::npos)
      << ch.error().message();
  auto opened = channel::open("signal:" + std::to_string(idle.pid()));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), std::errc::connection_refused) << opened.error().message();
  // Nothing was sent: the process, whose default action for the signal is to terminate, lives.
  EXPECT_EQ(::waitpid(idle.pid(), nullptr, WNOHANG), 0);
  ASSERT_EQ(::write(go.write, "g", 1), 1);
  EXPECT_EQ(idle.wait_exit(), 0) << idle.stderr_text();
}

TEST_F(SignalChannel, SendingAsNobodyToARootProcessFailsWithNotPermitted) {
  ASSERT_EQ(::geteuid(), 0u) << "the sender runs as nobody: run tests as root";
  pipe_pair go;
  auto receiver = child_process::helper("receive_until_go", {}, stdin_from(go.read));
  ASSERT_TRUE(receiver.wait_ready());
  auto where = reported_address(receiver);
  auto sender = child_process::helper("join_expecting_eperm", {where}, as_nobody());
  EXPECT_EQ(sender.wait_exit(), 0) << sender.stderr_text();
  EXPECT_NE(sender.stderr_text().find(where), std::string::npos) << sender.stderr_text();
  ASSERT_EQ(::write(go.write, "g", 1), 1);
  EXPECT_EQ(receiver.wait_exit(), 0) << receiver.stderr_text();
}

TEST_F(SignalChannel, SendingToAReceiverThatExitedFailsWithPeerDead) {
  pipe_pair go;
  auto receiver = child_process::helper("receive_until_go", {}, stdin_from(go.read));
  ASSERT_TRUE(receiver.wait_ready());
  auto ch = channel::join(reported_address(receiver));
  ASSERT_TRUE(ch) << ch.error().message();
  EXPECT_EQ(ch->wait_fd(), -1);
  std::array<std::byte, 7> buffer{};
  auto recv = ch->recv(buffer, 10ms);
  ASSERT_FALSE(recv);
  EXPECT_EQ(recv.error(), errc::not_supported) << recv.error().message();
  ASSERT_EQ(::write(go.write, "g", 1), 1);
  ASSERT_EQ(receiver.wait_exit(), 0) << receiver.stderr_text();
  auto sent = ch->send(std::string_view("late"), 1s);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), errc::peer_dead) << sent.error().message();
}

TEST_F(SignalChannel, CreateOnAnotherProcessIsNotSupported) {
  auto ch = channel::create("signal:" + std::to_string(::getppid()));
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), errc::not_supported) << ch.error().message();
  EXPECT_NE(ch.error().detail().find("only the receiving process can create"), std::string::npos)
      << ch.error().message();
}

// The tests below receive in this test process itself.

TEST_F(SignalChannel, ChannelOnSelfSendsToItselfInOrderAndReportsItsPid) {
  auto ch = channel::create("signal:self");
  ASSERT_TRUE(ch) << ch.error().message();
  EXPECT_EQ(ch->address().to_string(), "signal:" + std::to_string(::getpid()));
  EXPECT_TRUE(signal_blocked_here());
  auto info = ch->info();
  EXPECT_EQ(info.kind, ipcx::mechanism::signal);
  EXPECT_EQ(info.max_message, 7u);
  EXPECT_TRUE(info.ordered);
  EXPECT_FALSE(info.persistent);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ch->send(pattern(i), 1s)) << "message " << i;
  pollfd p{.fd = ch->wait_fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1);
  std::vector<std::byte> buffer(7);
  for (int i = 0; i < 20; ++i) {
    auto got = i % 2 == 0 ? ch->recv(buffer) : ch->recv(buffer, 1s);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(as_text(std::span(buffer.data(), *got)), pattern(i)) << "message " << i;
  }
  auto nothing = ch->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());
  // signal:PID naming this process is the same receiving end.
  auto same = channel::join("signal:" + std::to_string(::getpid()));
  ASSERT_TRUE(same) << same.error().message();
  ASSERT_TRUE(same->send(std::string_view("via pid"), 1s));
  auto got = ch->recv(buffer, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "via pid");
}

TEST_F(SignalChannel, MessageLargerThanTheBufferIsKeptAlthoughTheSignalIsDequeued) {
  auto ch = channel::create("signal:self");
  ASSERT_TRUE(ch) << ch.error().message();
  ASSERT_TRUE(ch->send(std::string_view("seven!!"), 1s));
  ASSERT_TRUE(ch->send(std::string_view("next"), 1s));
  std::vector<std::byte> small(3), big(7);
  auto refused = ch->recv(small, 1s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::message_too_large) << refused.error().message();
  auto got = ch->recv(big, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_text(std::span(big.data(), *got)), "seven!!");
  got = ch->recv(big, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_text(std::span(big.data(), *got)), "next");
  auto too_big = ch->send(std::string_view("eight!!!"), 1s);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error(), errc::message_too_large) << too_big.error().message();
}

TEST_F(SignalChannel, SignalsNotSentBySigqueueCarryNoMessageAndAreSkipped) {
  auto ch = channel::create("signal:self");
  ASSERT_TRUE(ch) << ch.error().message();
  ASSERT_EQ(::kill(::getpid(), message_signal()), 0);  // SI_USER: no value
  std::vector<std::byte> buffer(7);
  auto nothing = ch->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());
  ASSERT_EQ(::kill(::getpid(), message_signal()), 0);
  ASSERT_TRUE(ch->send(std::string_view("real"), 1s));
  auto got = ch->recv(buffer);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "real");
}

TEST_F(SignalChannel, ClosingTheLastReceiverDrainsItsMessagesAndRestoresTheMask) {
  ASSERT_FALSE(signal_blocked_here());
  {
    auto first = channel::create("signal:self");
    ASSERT_TRUE(first) << first.error().message();
    {
      auto second = channel::open("signal:self");
      ASSERT_TRUE(second) << second.error().message();
    }
    EXPECT_TRUE(signal_blocked_here()) << "closing one of two receivers unblocked the signal";
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(first->send(pattern(i + 1), 1s));
  }
  // Unblocked again, and the three queued messages did not terminate this process.
  EXPECT_FALSE(signal_blocked_here());
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(::sigismember(&pending, message_signal()), 0);
  // A sender that joined earlier and sends late meets SIG_IGN rather than the default action.
  struct sigaction action {};
  ::sigaction(message_signal(), nullptr, &action);
  EXPECT_EQ(action.sa_handler, SIG_IGN);
  ASSERT_EQ(::kill(::getpid(), message_signal()), 0);

  // A new receiver starts empty.
  auto again = channel::create("signal:self");
  ASSERT_TRUE(again) << again.error().message();
  std::vector<std::byte> buffer(7);
  auto nothing = again->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());
}

TEST_F(SignalChannel, SignalBlockedBeforeTheChannelStaysBlockedAfterIt) {
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, message_signal());
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &set, nullptr), 0);
  {
    auto ch = channel::create("signal:self");
    ASSERT_TRUE(ch) << ch.error().message();
    ASSERT_TRUE(ch->send(std::string_view("x"), 1s));
  }
  EXPECT_TRUE(signal_blocked_here());
  sigset_t pending;
  ::sigpending(&pending);
  EXPECT_EQ(::sigismember(&pending, message_signal()), 0) << "the message was not drained";
  ASSERT_EQ(::pthread_sigmask(SIG_UNBLOCK, &set, nullptr), 0);
}

TEST_F(SignalChannel, CreateIsRefusedWhileAThreadStartedEarlierDoesNotBlockTheSignal) {
  std::promise<void> started, stop;
  std::thread earlier([&started, done = stop.get_future()] {
    started.set_value();
    done.wait();
  });
  // Until its start routine runs, a new thread blocks every signal (glibc creates it so).
  started.get_future().wait();
  auto ch = channel::create("signal:self");
  stop.set_value();
  earlier.join();
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::invalid_argument) << ch.error().message();
  EXPECT_NE(ch.error().detail().find("before starting threads"), std::string::npos)
      << ch.error().message();
  EXPECT_FALSE(signal_blocked_here()) << "the failed create left the signal blocked";
  // Once that thread is gone (it may linger in /proc briefly after join), create succeeds.
  auto until = std::chrono::steady_clock::now() + 2s;
  auto again = channel::create("signal:self");
  while (!again && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
    again = channel::create("signal:self");
  }
  EXPECT_TRUE(again) << again.error().message();
}

TEST_F(SignalChannel, InjectedEintrIsRetriedOnEveryPath) {
  auto ch = channel::create("signal:self");
  ASSERT_TRUE(ch) << ch.error().message();
  std::vector<std::byte> buffer(7);
  for (int interruptions : {1, 2, 3}) {
    ipcx::detail::injected_eintr = interruptions;
    ASSERT_TRUE(ch->send(std::string_view("one"))) << interruptions;
    ipcx::detail::injected_eintr = interruptions;
    ASSERT_TRUE(ch->send(std::string_view("two"), 1s)) << interruptions;
    ipcx::detail::injected_eintr = interruptions;
    auto got = ch->recv(buffer);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "one");
    ipcx::detail::injected_eintr = interruptions;
    got = ch->recv(buffer, 1s);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "two");
  }
  ipcx::detail::injected_eintr = 0;
}

TEST_F(SignalChannel, MaximumAboveSevenBytesIsRefused) {
  auto ch = channel::create("signal:self", {.max_message = 8});
  ASSERT_FALSE(ch);
  EXPECT_EQ(ch.error(), std::errc::invalid_argument) << ch.error().message();
  EXPECT_FALSE(signal_blocked_here());
}

}  // namespace
