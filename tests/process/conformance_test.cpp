// The contract every transport keeps, run over every transport between two real processes.
// A mechanism's own test file covers only what is unique to it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/syscall.hpp"
#include "ipcx/channel.hpp"
#include "process.hpp"
#include "scratch.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::test::child_process;
using ipcx::test::scratch;
using ipcx::test::spawn_options;

// Message `index` of a test sequence: its size cycles through 0..limit, its bytes depend on both.
std::vector<std::byte> pattern(std::size_t index, std::size_t limit) {
  std::vector<std::byte> bytes(index % (limit + 1));
  for (std::size_t j = 0; j < bytes.size(); ++j) bytes[j] = std::byte((index * 31 + j * 7) & 0xff);
  return bytes;
}

std::size_t pattern_limit(std::size_t max_message) { return std::min<std::size_t>(max_message, 300); }

struct transport_case {
  const char* name;
  // The address the parent creates (empty for the anonymous pipe, made with channel::pipe()).
  std::function<std::string(scratch&)> address;
  bool named;          // a name in a filesystem or IPC namespace, 0600 by default
  bool bidirectional;  // one channel carries both directions
  // Address of the same kind where nothing exists, and the error joining it gives; nullopt where
  // the mechanism cannot tell (a UDP "connect" succeeds with nobody there).
  std::function<std::string(scratch&)> missing;
  std::optional<std::errc> missing_error;
  std::optional<std::errc> exists_error;  // creating it a second time
};

void PrintTo(const transport_case& c, std::ostream* os) { *os << c.name; }

std::string dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return std::to_string(pid);
}

const std::vector<transport_case>& cases() {
  static const std::vector<transport_case> all = {
      {"pipe", [](scratch&) { return std::string(); }, false, true, nullptr, std::nullopt,
       std::nullopt},
      {"fifo", [](scratch& s) { return "fifo:" + s.path("fifo"); }, true, false,
       [](scratch& s) { return "fifo:" + s.path("absent"); }, std::errc::no_such_file_or_directory,
       std::errc::file_exists},
      {"file", [](scratch& s) { return "file:" + s.path("log"); }, true, false,
       [](scratch& s) { return "file:" + s.path("absent"); }, std::errc::no_such_file_or_directory,
       std::errc::file_exists},
      {"signal", [](scratch&) { return std::string("signal:self"); }, false, false,
       [](scratch&) { return "signal:" + dead_pid(); }, std::errc::no_such_process, std::nullopt},
      {"mq", [](scratch& s) { return "mq:" + s.ipc_name("mq"); }, true, false,
       [](scratch& s) { return "mq:" + s.ipc_name("absent"); }, std::errc::no_such_file_or_directory,
       std::errc::file_exists},
      {"sysv_mq", [](scratch& s) { return "sysv-mq:" + std::to_string(s.key("mq")); }, true, false,
       [](scratch& s) { return "sysv-mq:" + std::to_string(s.key("absent")); },
       std::errc::no_such_file_or_directory, std::errc::file_exists},
      {"unix", [](scratch& s) { return "unix:" + s.path("sock"); }, true, true,
       [](scratch& s) { return "unix:" + s.path("absent"); }, std::errc::no_such_file_or_directory,
       std::errc::file_exists},
      {"unix_abstract", [](scratch& s) { return "unix:@" + s.ipc_name("sock").substr(1); }, false,
       true, [](scratch& s) { return "unix:@" + s.ipc_name("absent").substr(1); },
       std::errc::connection_refused, std::errc::address_in_use},
      {"unix_dgram", [](scratch& s) { return "unix-dgram:" + s.path("dgram"); }, true, true,
       [](scratch& s) { return "unix-dgram:" + s.path("absent"); },
       std::errc::no_such_file_or_directory, std::errc::file_exists},
      {"unix_seqpacket", [](scratch& s) { return "unix-seqpacket:" + s.path("seq"); }, true, true,
       [](scratch& s) { return "unix-seqpacket:" + s.path("absent"); },
       std::errc::no_such_file_or_directory, std::errc::file_exists},
      {"tcp4", [](scratch&) { return std::string("tcp://127.0.0.1:0"); }, false, true, nullptr,
       std::errc::connection_refused, std::errc::address_in_use},
      {"tcp6", [](scratch&) { return std::string("tcp://[::1]:0"); }, false, true, nullptr,
       std::errc::connection_refused, std::errc::address_in_use},
      {"udp", [](scratch&) { return std::string("udp://127.0.0.1:0"); }, false, true, nullptr,
       std::nullopt, std::errc::address_in_use},
      {"shm", [](scratch& s) { return "shm:" + s.ipc_name("shm"); }, true, true,
       [](scratch& s) { return "shm:" + s.ipc_name("absent"); }, std::errc::no_such_file_or_directory,
       std::errc::file_exists},
      {"sysv_shm", [](scratch& s) { return "sysv-shm:" + std::to_string(s.key("shm")); }, true,
       true, [](scratch& s) { return "sysv-shm:" + std::to_string(s.key("absent")); },
       std::errc::no_such_file_or_directory, std::errc::file_exists},
      {"memfd", [](scratch& s) { return "memfd:" + s.path("memfd"); }, true, true,
       [](scratch& s) { return "memfd:" + s.path("absent"); }, std::errc::no_such_file_or_directory,
       std::errc::file_exists},
  };
  return all;
}

// The helpers: each joins args[0], says ready, then does its part.

// A sender stays until the parent has read everything, since closing early is a different test:
// on a bidirectional channel until the parent says "bye"; on a one-way channel (where a recv
// would take the parent's own messages off a shared queue) until the parent sends SIGTERM.
void linger(channel& ch, const std::string& how) {
  if (how == "bye") {
    std::array<std::byte, 8> ignored{};
    (void)ch.recv(ignored, 10s);
  } else if (how == "pause") {
    ::pause();
  }
}

// Sends args[1] pattern messages with sizes up to args[2].
IPCX_HELPER(send_sequence) {
  auto ch = channel::join(args[0]);
  if (!ch) {
    std::fprintf(stderr, "%s\n", ch.error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  std::size_t count = std::stoul(args[1]);
  std::size_t limit = std::stoul(args[2]);
  for (std::size_t i = 0; i < count; ++i) {
    auto sent = ch->send(pattern(i, limit), 10s);
    if (!sent) {
      std::fprintf(stderr, "message %zu: %s\n", i, sent.error().message().c_str());
      return 3;
    }
  }
  linger(*ch, args.size() > 3 ? args[3] : "");
  return 0;
}

// Tries one byte more than the maximum (must be refused), then sends exactly the maximum.
IPCX_HELPER(send_maximum) {
  auto ch = channel::join(args[0]);
  if (!ch) {
    std::fprintf(stderr, "%s\n", ch.error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  auto max = ch->info().max_message;
  std::vector<std::byte> message(max + 1, std::byte{0x5a});
  auto refused = ch->send(message, 5s);
  if (refused || refused.error() != errc::message_too_large) {
    std::fprintf(stderr, "a message of max+1 bytes was not refused with message_too_large: %s\n",
                 refused ? "it was sent" : refused.error().message().c_str());
    return 5;
  }
  message.pop_back();
  message.front() = std::byte{1};
  message.back() = std::byte{2};
  auto sent = ch->send(message, 10s);
  if (!sent) {
    std::fprintf(stderr, "%s\n", sent.error().message().c_str());
    return 3;
  }
  linger(*ch, args[1]);
  return 0;
}

// Sends args[1] messages, then dies without closing anything.
IPCX_HELPER(send_then_die) {
  auto ch = channel::join(args[0]);
  if (!ch) return 2;
  ipcx::test::ready();
  for (std::size_t i = 0, n = std::stoul(args[1]); i < n; ++i)
    if (!ch->send(pattern(i, 5), 10s)) return 3;
  ::raise(SIGKILL);
  return 4;
}

// Echoes args[1] messages back.
IPCX_HELPER(echo) {
  auto ch = channel::join(args[0]);
  if (!ch) {
    std::fprintf(stderr, "%s\n", ch.error().message().c_str());
    return 2;
  }
  ipcx::test::ready();
  std::vector<std::byte> buffer(ch->info().max_message);
  for (std::size_t i = 0, n = std::stoul(args[1]); i < n; ++i) {
    auto got = ch->recv(buffer, 10s);
    if (!got) {
      std::fprintf(stderr, "recv %zu: %s\n", i, got.error().message().c_str());
      return 3;
    }
    auto sent = ch->send(std::span(buffer.data(), *got), 10s);
    if (!sent) {
      std::fprintf(stderr, "send %zu: %s\n", i, sent.error().message().c_str());
      return 4;
    }
  }
  return 0;
}

// Joins (and sends) as whatever user it runs as; exit 0 only on "permission denied".
IPCX_HELPER(join_expecting_denial) {
  auto ch = channel::join(args[0]);
  if (ch) {
    auto sent = ch->send(std::string_view("x"), 2s);
    if (sent) return 1;
    std::fprintf(stderr, "%s\n", sent.error().message().c_str());
    return sent.error() == std::errc::permission_denied ? 0 : 2;
  }
  std::fprintf(stderr, "%s\n", ch.error().message().c_str());
  return ch.error() == std::errc::permission_denied ? 0 : 2;
}

class Conformance : public ipcx::test::ipc_test,
                    public ::testing::WithParamInterface<transport_case> {
 protected:
  // Makes the parent's end; returns the address a helper joins and the options to spawn it with.
  struct peer_setup {
    std::string address;
    spawn_options spawn;
  };
  peer_setup make_parent_end(const ipcx::channel_options& options = {.remove_on_close = true}) {
    peer_setup setup;
    if (GetParam().address(scratch_).empty()) {
      auto ends = channel::pipe(options);
      EXPECT_TRUE(ends) << ends.error().message();
      if (!ends) return setup;
      parent_.emplace(std::move(ends->first));
      child_end_.emplace(std::move(ends->second));
      EXPECT_TRUE(child_end_->keep_across_exec());
      setup.address = child_end_->address().to_string();
      setup.spawn.inherit = {child_end_->address().read_fd, child_end_->address().write_fd};
      return setup;
    }
    auto ch = channel::create(GetParam().address(scratch_), options);
    EXPECT_TRUE(ch) << ch.error().message();
    if (!ch) return setup;
    parent_.emplace(std::move(*ch));
    setup.address = parent_->address().to_string();
    if (setup.address == "signal:self") setup.address = "signal:" + std::to_string(::getpid());
    return setup;
  }

  void TearDown() override {
    // The channels go before the leak check, which would otherwise see them as left behind.
    parent_.reset();
    child_end_.reset();
    ipc_test::TearDown();
  }

  static std::string linger_mode() { return GetParam().bidirectional ? "bye" : "pause"; }

  child_process spawn(const std::string& helper, std::vector<std::string> args,
                      const peer_setup& setup) {
    auto child = child_process::helper(helper, std::move(args), setup.spawn);
    child_end_.reset();  // the parent's copy of the child's pipe end must go, or EOF never comes
    return child;
  }

  std::optional<channel> parent_;
  std::optional<channel> child_end_;
};

// Suites over the transports a property applies to (a property that does not apply is not run,
// rather than skipped).
class UniqueNames : public Conformance {};
class DetectsMissing : public Conformance {};
class Named : public Conformance {};
class Bidirectional : public Conformance {};

TEST_P(UniqueNames, CreateFailsWhenTheObjectExists) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto again = channel::create(setup.address);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), *GetParam().exists_error) << again.error().message();
}

TEST_P(DetectsMissing, JoinFailsWhenTheObjectIsMissing) {
  std::string missing;
  if (GetParam().missing) {
    missing = GetParam().missing(scratch_);
  } else {
    // A port that was just free: bind it, note it, release it.
    auto probe = channel::create(GetParam().address(scratch_));
    ASSERT_TRUE(probe) << probe.error().message();
    missing = probe->address().to_string();
  }
  auto ch = channel::join(missing);
  ASSERT_FALSE(ch) << missing;
  EXPECT_EQ(ch.error(), *GetParam().missing_error) << ch.error().message();
  EXPECT_FALSE(ch.error().object().empty()) << ch.error().message();
}

TEST_P(Named, OpenCreatesWhenMissingAndJoinsWhenPresent) {
  auto where = GetParam().address(scratch_);
  auto first = channel::open(where, {.remove_on_close = true});
  ASSERT_TRUE(first) << first.error().message();
  if (GetParam().bidirectional) return;  // a socket is joined by connecting: see Bidirectional
  auto second = channel::open(where);
  ASSERT_TRUE(second) << second.error().message();
}

TEST_P(Conformance, KeepsOrderBoundariesAndContentAcrossProcesses) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto limit = pattern_limit(parent_->info().max_message);
  constexpr std::size_t count = 200;
  auto child = spawn("send_sequence", {setup.address, std::to_string(count), std::to_string(limit),
                                       linger_mode()}, setup);
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(parent_->info().max_message);
  for (std::size_t i = 0; i < count; ++i) {
    auto got = parent_->recv(buffer, 10s);
    ASSERT_TRUE(got) << "message " << i << ": " << got.error().message() << "\nhelper stderr:\n"
                     << child.stderr_text();
    auto expected = pattern(i, limit);
    ASSERT_EQ(*got, expected.size()) << "message " << i;
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(), buffer.begin())) << "message " << i;
  }
  if (GetParam().bidirectional) ASSERT_TRUE(parent_->send(std::string_view("bye"), 5s));
  else child.kill(SIGTERM);
  int status = child.wait_exit();
  EXPECT_TRUE(status == 0 || status == 128 + SIGTERM) << child.stderr_text();
}

TEST_P(Conformance, CarriesAMessageOfExactlyTheMaximumSizeAndRefusesALargerOne) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto max = parent_->info().max_message;
  auto child = spawn("send_maximum", {setup.address, linger_mode()}, setup);
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(max);
  auto got = parent_->recv(buffer, 10s);
  ASSERT_TRUE(got) << got.error().message() << "\n" << child.stderr_text();
  ASSERT_EQ(*got, max);
  EXPECT_EQ(buffer.front(), std::byte{1});
  EXPECT_EQ(buffer.back(), std::byte{2});
  EXPECT_EQ(std::count(buffer.begin(), buffer.end(), std::byte{0x5a}),
            static_cast<std::ptrdiff_t>(max >= 2 ? max - 2 : 0));
  if (GetParam().bidirectional) ASSERT_TRUE(parent_->send(std::string_view("bye"), 5s));
  else child.kill(SIGTERM);
  int status = child.wait_exit();
  EXPECT_TRUE(status == 0 || status == 128 + SIGTERM) << child.stderr_text();
}

TEST_P(Conformance, MessageLargerThanTheBufferIsKeptForTheNextRecv) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto limit = pattern_limit(parent_->info().max_message);
  // Messages 0..3 of the sequence: the last one has `limit` bytes when limit is 3 or more.
  std::size_t count = std::min<std::size_t>(limit, 3) + 1;
  auto child = spawn("send_sequence", {setup.address, std::to_string(count), std::to_string(limit),
                                       linger_mode()}, setup);
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> big(parent_->info().max_message);
  for (std::size_t i = 0; i + 1 < count; ++i) ASSERT_TRUE(parent_->recv(big, 10s));
  auto last = pattern(count - 1, limit);
  ASSERT_GE(last.size(), 1u);
  std::vector<std::byte> small(last.size() - 1);
  // Wait until the message is there, so the check is about size, not timing.
  auto refused = parent_->recv(small, 10s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), errc::message_too_large) << refused.error().message();
  auto again = parent_->recv(small, 100ms);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::message_too_large) << again.error().message();
  auto got = parent_->recv(big, 10s);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(*got, last.size());
  EXPECT_TRUE(std::equal(last.begin(), last.end(), big.begin()));
  if (GetParam().bidirectional) ASSERT_TRUE(parent_->send(std::string_view("bye"), 5s));
  else child.kill(SIGTERM);
  child.wait_exit();
}

TEST_P(Conformance, RecvGivesUpAtItsDeadlineAndTryRecvFindsNothing) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  std::vector<std::byte> buffer(parent_->info().max_message);
  auto nothing = parent_->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());
  auto start = std::chrono::steady_clock::now();
  auto got = parent_->recv(buffer, 100ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::timed_out) << got.error().message();
  EXPECT_GE(waited, 95ms);
  EXPECT_LT(waited, 2s);
}

TEST_P(Conformance, PeerKilledMidStreamGivesACleanErrorNeverAHang) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto child = spawn("send_then_die", {setup.address, "5"}, setup);
  ASSERT_TRUE(child.wait_ready());
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL) << child.stderr_text();
  std::vector<std::byte> buffer(parent_->info().max_message);
  for (std::size_t i = 0; i < 5; ++i) {
    auto got = parent_->recv(buffer, 5s);
    ASSERT_TRUE(got) << "message " << i << ": " << got.error().message();
    auto expected = pattern(i, 5);
    ASSERT_EQ(*got, expected.size());
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(), buffer.begin()));
  }
  auto start = std::chrono::steady_clock::now();
  auto after = parent_->recv(buffer, 500ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ASSERT_FALSE(after);
  bool clean = after.error() == errc::end_of_stream || after.error() == errc::timed_out ||
               after.error() == std::errc::connection_reset || after.error() == errc::peer_dead;
  EXPECT_TRUE(clean) << after.error().message();
}

TEST_P(Bidirectional, EchoesBothWays) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto limit = pattern_limit(parent_->info().max_message);
  constexpr std::size_t count = 50;
  auto child = spawn("echo", {setup.address, std::to_string(count)}, setup);
  ASSERT_TRUE(child.wait_ready());
  std::vector<std::byte> buffer(parent_->info().max_message);
  for (std::size_t i = 0; i < count; ++i) {
    auto message = pattern(i, limit);
    ASSERT_TRUE(parent_->send(message, 5s));
    auto got = parent_->recv(buffer, 10s);
    ASSERT_TRUE(got) << "message " << i << ": " << got.error().message() << "\n"
                     << child.stderr_text();
    ASSERT_EQ(*got, message.size());
    ASSERT_TRUE(std::equal(message.begin(), message.end(), buffer.begin()));
  }
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_P(Named, AnotherUserIsDeniedTheObjectCreated0600) {
  ASSERT_EQ(::geteuid(), 0u) << "the permission test runs a helper as nobody: run tests as root";
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto child = child_process::helper("join_expecting_denial", {setup.address}, {.as_nobody = true});
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  auto text = child.stderr_text();
  EXPECT_NE(text.find("permission denied"), std::string::npos) << text;
  // The error names the object: the path, queue name or key (without the scheme).
  auto object = setup.address.substr(setup.address.find(':') + 1);
  EXPECT_NE(text.find(object), std::string::npos) << text;
}

TEST_P(Bidirectional, InjectedEintrIsRetriedTransparently) {
  auto setup = make_parent_end();
  ASSERT_TRUE(parent_);
  auto child = spawn("echo", {setup.address, "1"}, setup);
  ASSERT_TRUE(child.wait_ready());
  ipcx::detail::injected_eintr = 3;
  ASSERT_TRUE(parent_->send(std::string_view("interrupted"), 5s));
  ipcx::detail::injected_eintr = 3;
  std::vector<std::byte> buffer(parent_->info().max_message);
  auto got = parent_->recv(buffer, 5s);
  ipcx::detail::injected_eintr = 0;
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, 11u);
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

std::vector<transport_case> cases_where(bool (*keep)(const transport_case&)) {
  std::vector<transport_case> out;
  std::copy_if(cases().begin(), cases().end(), std::back_inserter(out), keep);
  return out;
}

std::string case_name(const ::testing::TestParamInfo<transport_case>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(EveryTransport, Conformance, ::testing::ValuesIn(cases()), case_name);
INSTANTIATE_TEST_SUITE_P(
    EveryTransport, UniqueNames,
    ::testing::ValuesIn(cases_where([](const transport_case& c) { return c.exists_error.has_value(); })),
    case_name);
INSTANTIATE_TEST_SUITE_P(
    EveryTransport, DetectsMissing,
    ::testing::ValuesIn(cases_where([](const transport_case& c) { return c.missing_error.has_value(); })),
    case_name);
INSTANTIATE_TEST_SUITE_P(
    EveryTransport, Named,
    ::testing::ValuesIn(cases_where([](const transport_case& c) { return c.named; })), case_name);
INSTANTIATE_TEST_SUITE_P(
    EveryTransport, Bidirectional,
    ::testing::ValuesIn(cases_where([](const transport_case& c) { return c.bidirectional; })),
    case_name);

}  // namespace
