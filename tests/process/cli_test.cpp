// End-to-end tests of the ipcx CLI: the built `ipcx` binary run as real processes, over every
// address form (send | recv, then rm), and its errors and exit codes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ipcx/channel.hpp"
#include "support/process.hpp"
#include "support/scratch.hpp"

namespace {

using ipcx::test::stdout_to;
using ipcx::test::child_process;
using ipcx::test::scratch;
using ipcx::test::spawn_options;
using namespace std::chrono_literals;

std::string ipcx_path() { return ipcx::test::built_program("ipcx"); }

struct outcome {
  int status = -1;
  std::string out;
  std::string err;
  std::chrono::steady_clock::duration took{};
};

// Runs `ipcx ARGS...` to completion (killed, with a test failure, after 20 s).
outcome run_ipcx(std::vector<std::string> args, spawn_options options = {}) {
  auto start = std::chrono::steady_clock::now();
  auto child = child_process::program(ipcx_path(), std::move(args), options);
  outcome o;
  o.status = child.wait_exit();
  o.took = std::chrono::steady_clock::now() - start;
  o.out = child.stdout_text();
  o.err = child.stderr_text();
  return o;
}

// The CLI's error contract: exactly one line, "ipcx: ...".
::testing::AssertionResult is_one_error_line(const std::string& err) {
  auto lines = std::count(err.begin(), err.end(), '\n');
  if (lines != 1 || err.back() != '\n' || !err.starts_with("ipcx: "))
    return ::testing::AssertionFailure() << "not one \"ipcx: \" line:\n" << err;
  return ::testing::AssertionSuccess();
}

// Waits for recv's `ready` line; fails at once, showing why, if recv reported an error instead.
::testing::AssertionResult became_ready(const child_process& recv) {
  auto until = std::chrono::steady_clock::now() + 10s;
  std::string err;
  while (std::chrono::steady_clock::now() < until) {
    err = recv.stderr_text();
    if (err.find("ready ") != std::string::npos) return ::testing::AssertionSuccess();
    if (err.find("ipcx: ") != std::string::npos) break;
    std::this_thread::sleep_for(2ms);
  }
  return ::testing::AssertionFailure() << "recv did not become ready; its stderr:\n" << err;
}

// The ADDRESS of the `ready ADDRESS` line recv writes on stderr.
std::string ready_address(const std::string& err) {
  auto at = err.find("ready ");
  if (at == std::string::npos) return {};
  at += 6;
  return err.substr(at, err.find('\n', at) - at);
}

// A loopback UDP port nobody uses right now: bound to port 0, read back, released.
std::string free_udp_port() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0;
  if (fd >= 0) ::close(fd);
  return ok ? std::to_string(ntohs(sa.sin_port)) : "0";
}

// A pipe the test hands to the CLI as stdin/stdout; both ends close-on-exec, so only the child
// that gets an end dup'ed onto 0 or 1 holds it.
struct test_pipe {
  int read = -1;
  int write = -1;
  test_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      read = fds[0];
      write = fds[1];
    }
  }
  ~test_pipe() { close(); }
  void close() {
    for (int* fd : {&read, &write})
      if (*fd >= 0) ::close(std::exchange(*fd, -1));
  }
};

spawn_options stdin_from(int fd) {
  spawn_options o;
  o.stdin_fd = fd;
  return o;
}
class CliTest : public ipcx::test::ipc_test {};

// ---- every address form, end to end ---------------------------------------------------------

struct address_form {
  const char* name;
  // The address recv is started with; may prepare what the form needs (a key file).
  std::string (*make)(scratch&);
  // Send to the address recv reports in its ready line (a chosen port, a pid) instead.
  bool send_to_ready = false;
};

void PrintTo(const address_form& f, std::ostream* os) { *os << f.name; }

const address_form forms[] = {
    {"Pipe", [](scratch&) { return std::string("pipe:"); }},
    {"Fifo", [](scratch& s) { return "fifo:" + s.path("fifo"); }},
    {"File", [](scratch& s) { return "file:" + s.path("log"); }},
    {"Signal", [](scratch&) { return std::string("signal:self"); }, true},
    {"PosixMq", [](scratch& s) { return "mq:" + s.ipc_name("q"); }},
    {"SysvMqNumericKey", [](scratch& s) { return "sysv-mq:" + std::to_string(s.key("q")); }},
    {"SysvMqPathKey",
     [](scratch& s) {
       std::ofstream(s.path("key")) << "ftok needs an existing file\n";
       return "sysv-mq:" + s.path("key");
     }},
    {"UnixPath", [](scratch& s) { return "unix:" + s.path("sock"); }},
    {"UnixAbstract", [](scratch& s) { return "unix:@" + s.ipc_name("sock").substr(1); }},
    {"UnixDgram", [](scratch& s) { return "unix-dgram:" + s.path("dgram"); }},
    {"UnixSeqpacket", [](scratch& s) { return "unix-seqpacket:" + s.path("seqpacket"); }},
    {"TcpPortZero", [](scratch&) { return std::string("tcp://127.0.0.1:0"); }, true},
    {"Udp", [](scratch&) { return "udp://127.0.0.1:" + free_udp_port(); }},
    {"UdpPortZero", [](scratch&) { return std::string("udp://127.0.0.1:0"); }, true},
    {"PosixShm", [](scratch& s) { return "shm:" + s.ipc_name("shm"); }},
    {"SysvShm", [](scratch& s) { return "sysv-shm:" + std::to_string(s.key("shm")); }},
    {"Memfd", [](scratch& s) { return "memfd:" + s.path("memfd"); }},
};

class CliRoundTrip : public ipcx::test::ipc_test,
                     public ::testing::WithParamInterface<address_form> {};

TEST_P(CliRoundTrip, RecvPrintsTheThreeMessagesSendSentAndRmLeavesNothing) {
  const auto& form = GetParam();
  const std::string address = form.make(scratch_);
  const bool pipe = address == "pipe:";

  test_pipe p;
  spawn_options recv_options;
  spawn_options send_options;
  if (pipe) {
    recv_options.stdin_fd = p.read;
    send_options.stdout_fd = p.write;
  }
  auto recv = child_process::program(ipcx_path(), {"recv", address, "-n", "3", "--timeout", "10"},
                                     recv_options);
  ASSERT_TRUE(became_ready(recv));
  std::string target = form.send_to_ready ? ready_address(recv.stderr_text()) : address;
  ASSERT_FALSE(target.empty()) << recv.stderr_text();
  if (form.send_to_ready) {
    EXPECT_NE(target, address) << "the ready line names the concrete address";
  }

  auto sent = run_ipcx({"send", target, "a", "b c", "d"}, send_options);
  p.close();  // recv must not wait on the test's own copy of the pipe
  EXPECT_EQ(sent.status, 0) << sent.err;
  EXPECT_EQ(sent.err, "");
  EXPECT_EQ(recv.wait_exit(), 0) << recv.stderr_text();
  EXPECT_EQ(recv.stdout_text(), "a\nb c\nd\n");
  EXPECT_EQ(recv.stderr_text(), "ready " + target + "\n");

  auto removed = run_ipcx({"rm", address});
  EXPECT_EQ(removed.status, 0) << removed.err;
  EXPECT_EQ(removed.err, "");

  if (std::string_view(form.name) == "SysvMqPathKey") {
    // The fixture tracks numeric keys only: check the path's queue is gone through the API.
    auto gone = ipcx::channel::join(address);
    EXPECT_FALSE(gone);
    if (!gone) {
      EXPECT_EQ(gone.error(), std::errc::no_such_file_or_directory) << gone.error().message();
    }
    std::filesystem::remove(scratch_.path("key"));
  }
}

INSTANTIATE_TEST_SUITE_P(EveryAddressForm, CliRoundTrip, ::testing::ValuesIn(forms),
                         [](const auto& test) { return std::string(test.param.name); });

// ---- senders in turn, stdin, end of stream ---------------------------------------------------

TEST_F(CliTest, RecvWithACountAcceptsConnectionsInTurnUntilItHasThem) {
  std::string address = "unix:" + scratch_.path("sock");
  auto recv = child_process::program(ipcx_path(), {"recv", address, "-n", "4", "--timeout", "10"});
  ASSERT_TRUE(became_ready(recv));
  auto first = run_ipcx({"send", address, "a", "b"});
  EXPECT_EQ(first.status, 0) << first.err;
  auto second = run_ipcx({"send", address, "c", "d"});
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(recv.wait_exit(), 0) << recv.stderr_text();
  EXPECT_EQ(recv.stdout_text(), "a\nb\nc\nd\n");
  EXPECT_EQ(run_ipcx({"rm", address}).status, 0);
}

TEST_F(CliTest, RecvWithACountOpensTheFifoAgainForTheNextWriter) {
  std::string address = "fifo:" + scratch_.path("fifo");
  auto recv = child_process::program(ipcx_path(), {"recv", address, "-n", "4", "--timeout", "10"});
  ASSERT_TRUE(became_ready(recv));
  auto first = run_ipcx({"send", address, "a", "b"});
  EXPECT_EQ(first.status, 0) << first.err;
  auto second = run_ipcx({"send", address, "c", "d"});
  EXPECT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(recv.wait_exit(), 0) << recv.stderr_text();
  EXPECT_EQ(recv.stdout_text(), "a\nb\nc\nd\n");
  EXPECT_EQ(run_ipcx({"rm", address}).status, 0);
}

// `ipcx send` may start first: it retries until recv has made the socket or FIFO. The pause only
// makes it likely that send is already retrying; the test holds whichever side wins.
void expect_send_waits_for_recv(const std::string& address) {
  auto send = child_process::program(ipcx_path(), {"send", address, "--timeout", "10", "x", "y"});
  std::this_thread::sleep_for(100ms);
  auto recv = child_process::program(ipcx_path(), {"recv", address, "-n", "2", "--timeout", "10"});
  EXPECT_EQ(send.wait_exit(), 0) << send.stderr_text();
  EXPECT_EQ(recv.wait_exit(), 0) << recv.stderr_text();
  EXPECT_EQ(recv.stdout_text(), "x\ny\n");
  EXPECT_EQ(run_ipcx({"rm", address}).status, 0);
}

TEST_F(CliTest, SendStartedBeforeRecvWaitsForTheListener) {
  expect_send_waits_for_recv("unix:" + scratch_.path("sock"));
}

TEST_F(CliTest, SendStartedBeforeRecvWaitsForTheFifoAndItsReader) {
  expect_send_waits_for_recv("fifo:" + scratch_.path("fifo"));
}

TEST_F(CliTest, SendWithoutMessagesSendsEachStdinLineAndTheQueueKeepsThemForALaterRecv) {
  std::string address = "mq:" + scratch_.ipc_name("q");
  test_pipe input;
  std::string lines = "one\n\ntwo three\nlast without newline";
  ASSERT_EQ(::write(input.write, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
  ::close(std::exchange(input.write, -1));

  auto sent = run_ipcx({"send", address}, stdin_from(input.read));
  EXPECT_EQ(sent.status, 0) << sent.err;
  auto received = run_ipcx({"recv", address, "-n", "4", "--timeout", "5"});
  EXPECT_EQ(received.status, 0) << received.err;
  EXPECT_EQ(received.out, "one\n\ntwo three\nlast without newline\n");
  EXPECT_EQ(run_ipcx({"rm", address}).status, 0);
}

TEST_F(CliTest, RecvWithoutACountStopsAtEndOfStream) {
  test_pipe p;
  auto recv =
      child_process::program(ipcx_path(), {"recv", "pipe:", "--timeout", "10"}, stdin_from(p.read));
  auto sent = run_ipcx({"send", "pipe:", "x", "y"}, stdout_to(p.write));
  p.close();
  EXPECT_EQ(sent.status, 0) << sent.err;
  EXPECT_EQ(recv.wait_exit(), 0) << recv.stderr_text();
  EXPECT_EQ(recv.stdout_text(), "x\ny\n");
}

TEST_F(CliTest, EndOfStreamBeforeTheCountFailsWithOneLineSayingHowManyCame) {
  test_pipe p;
  auto recv = child_process::program(ipcx_path(), {"recv", "pipe:", "-n", "3", "--timeout", "10"},
                                     stdin_from(p.read));
  auto sent = run_ipcx({"send", "pipe:", "x", "y"}, stdout_to(p.write));
  p.close();
  EXPECT_EQ(sent.status, 0) << sent.err;
  EXPECT_EQ(recv.wait_exit(), 1);
  auto err = recv.stderr_text();
  err.erase(0, err.find('\n') + 1);  // the ready line
  EXPECT_TRUE(is_one_error_line(err));
  EXPECT_NE(err.find("end of stream"), std::string::npos) << err;
  EXPECT_NE(err.find("2 of 3"), std::string::npos) << err;
  EXPECT_EQ(recv.stdout_text(), "x\ny\n");
}

// ---- errors and exit codes -------------------------------------------------------------------

TEST_F(CliTest, MalformedAddressesExitTwoWithOneLineQuotingTheAddress) {
  for (std::string bad : {"bogus:x", "mq:no-slash", "tcp://localhost", "sysv-mq:0",
                          "fifo:relative/path", "unix:/a/../b"}) {
    for (std::vector<std::string> args : {std::vector<std::string>{"send", bad, "m"},
                                          {"recv", bad, "--timeout", "1"},
                                          {"rm", bad}}) {
      auto o = run_ipcx(args);
      EXPECT_EQ(o.status, 2) << args[0] << " " << bad << ": " << o.err;
      EXPECT_TRUE(is_one_error_line(o.err)) << args[0] << " " << bad;
      EXPECT_NE(o.err.find("\"" + bad + "\""), std::string::npos) << o.err;
      EXPECT_NE(o.err.find("malformed address"), std::string::npos) << o.err;
    }
  }
}

TEST_F(CliTest, RecvWithNoSenderExitsThreeAtItsTimeoutNamingIt) {
  std::string address = "mq:" + scratch_.ipc_name("q");
  auto o = run_ipcx({"recv", address, "-n", "1", "--timeout", "0.2"});
  EXPECT_EQ(o.status, 3) << o.err;
  ASSERT_TRUE(o.err.starts_with("ready " + address + "\n")) << o.err;
  auto err = o.err.substr(o.err.find('\n') + 1);
  EXPECT_TRUE(is_one_error_line(err));
  EXPECT_NE(err.find("timed out"), std::string::npos) << err;
  EXPECT_NE(err.find("--timeout 0.2 s"), std::string::npos) << err;
  EXPECT_NE(err.find(address), std::string::npos) << err;
  EXPECT_GE(o.took, 200ms);
  EXPECT_LT(o.took, 5s);
  EXPECT_EQ(run_ipcx({"rm", address}).status, 0);
}

TEST_F(CliTest, SendToAUnixPathWithNoListenerGivesUpAtItsTimeoutNamingTheConnectAndPath) {
  std::string path = scratch_.path("nobody");
  auto o = run_ipcx({"send", "unix:" + path, "--timeout", "0.3", "hello"});
  EXPECT_EQ(o.status, 3) << o.err;
  EXPECT_TRUE(is_one_error_line(o.err));
  EXPECT_NE(o.err.find("connect"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(path), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--timeout 0.3 s"), std::string::npos) << o.err;
  EXPECT_GE(o.took, 300ms);
  EXPECT_LT(o.took, 5s);
}

TEST_F(CliTest, SendExitsThreeWhenAMessageIsNotAcceptedWithinItsTimeout) {
  std::string address = "mq:" + scratch_.ipc_name("full");
  {
    auto queue = ipcx::channel::create(address, {.max_message = 64, .capacity = 2});
    ASSERT_TRUE(queue) << queue.error().message();
  }
  auto o = run_ipcx({"send", address, "--timeout", "0.2", "a", "b", "c"});
  EXPECT_EQ(o.status, 3) << o.err;
  EXPECT_TRUE(is_one_error_line(o.err));
  EXPECT_NE(o.err.find("timed out"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--timeout 0.2 s"), std::string::npos) << o.err;
  EXPECT_GE(o.took, 200ms);
  auto removed = ipcx::channel::remove(address);
  EXPECT_TRUE(removed) << removed.error().message();
}

TEST_F(CliTest, RmOfAMissingQueueFailsNamingIt) {
  std::string name = scratch_.ipc_name("missing");
  auto o = run_ipcx({"rm", "mq:" + name});
  EXPECT_EQ(o.status, 1);
  EXPECT_TRUE(is_one_error_line(o.err));
  EXPECT_NE(o.err.find(name), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("no such file or directory"), std::string::npos) << o.err;
}

TEST_F(CliTest, RmOfAnAddressWithNothingNamedSucceedsSilently) {
  for (std::string address : {"tcp://127.0.0.1:9", "udp://127.0.0.1:9", "pipe:", "signal:self",
                              "unix:@nothing-named-here"}) {
    auto o = run_ipcx({"rm", address});
    EXPECT_EQ(o.status, 0) << address << ": " << o.err;
    EXPECT_EQ(o.err, "") << address;
  }
}

TEST_F(CliTest, UsageErrorsExitTwoWithOneLine) {
  for (std::vector<std::string> args : {std::vector<std::string>{},
                                        {"frobnicate"},
                                        {"send"},
                                        {"recv", "mq:/x", "--timeout", "-1"},
                                        {"recv", "mq:/x", "--timeout", "soon"},
                                        {"recv", "mq:/x", "-n", "many"},
                                        {"send", "mq:/x", "--no-such-option"}}) {
    auto o = run_ipcx(args);
    std::string shown;
    for (auto& a : args) shown += a + " ";
    EXPECT_EQ(o.status, 2) << shown << ": " << o.err;
    EXPECT_TRUE(is_one_error_line(o.err)) << shown;
  }
}

TEST_F(CliTest, HelpListsTheAddressesAndExitCodes) {
  auto o = run_ipcx({"--help"});
  EXPECT_EQ(o.status, 0) << o.err;
  for (const char* text : {"send", "recv", "rm", "bench", "Exit codes", "2 bad usage",
                           "3 timed out", "unix-seqpacket:/path"})
    EXPECT_NE(o.out.find(text), std::string::npos) << text << " missing from:\n" << o.out;
}

}  // namespace
