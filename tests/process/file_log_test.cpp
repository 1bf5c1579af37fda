// file:/path — what is unique to the record log: following by inotify, concurrent writers, the log
// outliving its processes, and corrupt or torn records.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/crc32c.hpp"
#include "core/syscall.hpp"
#include "ipcx/channel.hpp"
#include "process.hpp"
#include "scratch.hpp"

namespace {

using ipcx::test::as_nobody;
using ipcx::test::pipe_pair;
using ipcx::test::stdout_to;
using namespace std::chrono_literals;
using ipcx::channel;
using ipcx::errc;
using ipcx::test::child_process;
using ipcx::test::spawn_options;

// Record `seq` of writer `writer`: "writer:seq:" and a tail whose length varies with seq, so
// records of many sizes (up to ~1.5 KiB) cross page and buffer boundaries.
std::string record_text(int writer, int seq) {
  std::string text = std::to_string(writer) + ":" + std::to_string(seq) + ":";
  text.append(static_cast<std::size_t>((seq * 97) % 1500), static_cast<char>('a' + writer % 26));
  return text;
}

std::string as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A raw record as the log stores it, for writing by hand.
std::string raw_record(std::uint32_t length, std::uint32_t crc, std::string_view payload) {
  std::string out(8, '\0');
  for (int i = 0; i < 4; ++i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
    out[static_cast<std::size_t>(4 + i)] = static_cast<char>((crc >> (8 * i)) & 0xff);
  }
  out += payload;
  return out;
}

std::uint32_t crc_of(std::string_view text) {
  return ipcx::detail::crc32c(std::as_bytes(std::span(text.data(), text.size())));
}

// Appends `bytes` to the file directly: no lock, no checksum computed.
void append_raw(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Waits until `fd` has a byte to read, and reads it; false after `timeout`.
bool read_byte(int fd, std::chrono::milliseconds timeout, char* byte = nullptr) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
  char c = 0;
  if (::read(fd, &c, 1) != 1) return false;
  if (byte != nullptr) *byte = c;
  return true;
}

// Waits (up to 5 s) until process `pid` sleeps in the kernel: then it is blocked in its recv.
bool wait_until_sleeping(pid_t pid) {
  auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'S')
      return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// spawn_options built field by field: with designated initializers, g++ 12 warns about the
// members left out (-Wmissing-field-initializers), and the build treats warnings as errors.
spawn_options stdin_from(int fd) {
  spawn_options options;
  options.stdin_fd = fd;
  return options;
}
int report(const ipcx::error& e, int code) {
  std::fprintf(stderr, "%s\n", e.message().c_str());
  return code;
}

// Helpers.

// Joins args[0] and receives args[1] records of writer 0 without deadline, writing one byte to
// stdout after each one, so the parent knows when it arrived.
IPCX_HELPER(follow_and_ack) {
  auto log = channel::join(args[0]);
  if (!log) return report(log.error(), 2);
  ipcx::test::ready();
  std::vector<std::byte> buffer(4096);
  for (int i = 0, n = std::stoi(args[1]); i < n; ++i) {
    auto got = log->recv(buffer);
    if (!got) return report(got.error(), 3);
    if (as_text(std::span(buffer.data(), *got)) != record_text(0, i)) {
      std::fprintf(stderr, "record %d is wrong\n", i);
      return 4;
    }
    if (::write(1, "+", 1) != 1) return 5;
  }
  return 0;
}

// Joins args[0] (or opens it, when args[3] == "open"), waits for EOF on stdin (the starting gun),
// then appends args[2] records as writer args[1].
IPCX_HELPER(append_records) {
  bool open = args.size() > 3 && args[3] == "open";
  auto log = open ? channel::open(args[0]) : channel::join(args[0]);
  if (!log) return report(log.error(), 2);
  ipcx::test::ready();
  char ignored = 0;
  pollfd p{.fd = 0, .events = POLLIN, .revents = 0};
  if (!open && (::poll(&p, 1, 10'000) != 1 || ::read(0, &ignored, 1) != 0)) return 6;
  int writer = std::stoi(args[1]);
  int first = args.size() > 4 ? std::stoi(args[4]) : 0;
  for (int i = first, n = first + std::stoi(args[2]); i < n; ++i) {
    auto sent = log->send(record_text(writer, i), 10s);
    if (!sent) return report(sent.error(), 3);
  }
  return 0;
}

// Joins args[0], reads exactly args[1] records of writer 0 and finds nothing more.
IPCX_HELPER(read_all) {
  auto log = channel::join(args[0]);
  if (!log) return report(log.error(), 2);
  ipcx::test::ready();
  std::vector<std::byte> buffer(4096);
  for (int i = 0, n = std::stoi(args[1]); i < n; ++i) {
    auto got = log->recv(buffer, 5s);
    if (!got) return report(got.error(), 3);
    if (as_text(std::span(buffer.data(), *got)) != record_text(0, i)) return 4;
  }
  auto more = log->try_recv(buffer);
  if (!more) return report(more.error(), 5);
  return more->has_value() ? 6 : 0;
}

// Takes the writers' lock on args[0] as ipcx does, writes a header and half of a 10-byte payload,
// says ready, and writes the other half when a byte arrives on stdin.
IPCX_HELPER(write_half_locked) {
  int fd = ::open(args[0].c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return 2;
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLKW, &lock) != 0) return 3;
  std::string record = raw_record(10, crc_of("0123456789"), "0123456789");
  if (::write(fd, record.data(), 13) != 13) return 4;
  ipcx::test::ready();
  if (!read_byte(0, 10s)) return 5;
  if (::write(fd, record.data() + 13, record.size() - 13) != 5) return 6;
  return 0;
}

// Joins args[0], skips args[1] records (if given), receives one record without a deadline and
// prints "data:..." or the error.
IPCX_HELPER(recv_once_forever) {
  auto log = channel::join(args[0]);
  if (!log) return report(log.error(), 2);
  std::vector<std::byte> buffer(4096);
  for (int i = 0, n = args.size() > 1 ? std::stoi(args[1]) : 0; i < n; ++i)
    if (auto skipped = log->recv(buffer, 5s); !skipped) return report(skipped.error(), 3);
  ipcx::test::ready();
  auto got = log->recv(buffer);
  if (got)
    std::printf("data:%s", as_text(std::span(buffer.data(), *got)).c_str());
  else
    std::printf("error:%s", got.error().message().c_str());
  return 0;
}

// Joins args[0] as whoever it runs as; exit 0 when that fails with "permission denied".
IPCX_HELPER(join_denied) {
  auto log = channel::join(args[0]);
  if (log) return 1;
  std::fprintf(stderr, "%s\n", log.error().message().c_str());
  return log.error() == std::errc::permission_denied ? 0 : 2;
}

// Joins args[0], which it may read but not write: receives one record, and sending fails.
IPCX_HELPER(follow_read_only) {
  auto log = channel::join(args[0]);
  if (!log) return report(log.error(), 2);
  std::vector<std::byte> buffer(64);
  auto got = log->recv(buffer, 5s);
  if (!got) return report(got.error(), 3);
  std::printf("%s", as_text(std::span(buffer.data(), *got)).c_str());
  auto sent = log->send(std::string_view("not allowed"), 1s);
  if (sent) return 4;
  std::fprintf(stderr, "%s\n", sent.error().message().c_str());
  return sent.error() == std::errc::permission_denied ? 0 : 5;
}

class FileLog : public ipcx::test::ipc_test {
 protected:
  std::string path(const std::string& stem = "log") { return scratch_.path(stem); }
  std::string address(const std::string& stem = "log") { return "file:" + path(stem); }
};

TEST_F(FileLog, FollowerBlockedAtTheEndIsWokenForEachRecordAsItIsAppended) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  pipe_pair acks;
  auto follower =
      child_process::helper("follow_and_ack", {address(), "100"}, stdout_to(acks.write));
  acks.close_write();
  ASSERT_TRUE(follower.wait_ready());
  ASSERT_TRUE(wait_until_sleeping(follower.pid()));
  // Each record is written only after the previous one was acknowledged, so the follower is
  // asleep at the end of the log every time: a follower that polled the file on a timer would
  // need 100 timer periods.
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(log->send(record_text(0, i), 1s));
    ASSERT_TRUE(read_byte(acks.read, 2s)) << "record " << i << " was not received; stderr:\n"
                                          << follower.stderr_text();
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 1s);
  EXPECT_EQ(follower.wait_exit(), 0) << follower.stderr_text();
}

TEST_F(FileLog, WaitFdPollsReadableWhenAnotherProcessAppends) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  pollfd p{.fd = log->wait_fd(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 0), 0);
  auto writer = child_process::helper("append_records", {address(), "0", "1", "open"});
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  std::vector<std::byte> buffer(4096);
  auto got = log->try_recv(buffer);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(as_text(std::span(buffer.data(), **got)), record_text(0, 0));
  EXPECT_EQ(writer.wait_exit(), 0) << writer.stderr_text();
}

TEST_F(FileLog, ConcurrentWritersNeverInterleaveAndEachKeepsItsOrder) {
  constexpr int writers = 4;
  constexpr int per_writer = 1000;
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  pipe_pair gun;  // closed to start every writer at once
  std::vector<child_process> children;
  for (int w = 0; w < writers; ++w)
    children.push_back(child_process::helper(
        "append_records", {address(), std::to_string(w), std::to_string(per_writer)},
        stdin_from(gun.read)));
  for (auto& child : children) ASSERT_TRUE(child.wait_ready());
  gun.close_write();

  // Read while they write, so the reader also meets records still being written.
  std::array<int, writers> next{};
  std::vector<std::byte> buffer(4096);
  for (int i = 0; i < writers * per_writer; ++i) {
    auto got = log->recv(buffer, 10s);
    ASSERT_TRUE(got) << "record " << i << ": " << got.error().message();
    auto text = as_text(std::span(buffer.data(), *got));
    int writer = text[0] - '0';
    ASSERT_TRUE(writer >= 0 && writer < writers) << text.substr(0, 20);
    ASSERT_EQ(text, record_text(writer, next[static_cast<std::size_t>(writer)]))
        << "record " << i << " of writer " << writer;
    ++next[static_cast<std::size_t>(writer)];
  }
  for (auto& child : children) EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  auto more = log->try_recv(buffer);
  ASSERT_TRUE(more);
  EXPECT_FALSE(more->has_value());
}

TEST_F(FileLog, SurvivesEveryProcessRestartingAndANewReaderSeesEverything) {
  auto first = child_process::helper("append_records", {address(), "0", "10", "open", "0"});
  ASSERT_EQ(first.wait_exit(), 0) << first.stderr_text();
  auto reader = child_process::helper("read_all", {address(), "10"});
  ASSERT_EQ(reader.wait_exit(), 0) << reader.stderr_text();
  auto second = child_process::helper("append_records", {address(), "0", "10", "open", "10"});
  ASSERT_EQ(second.wait_exit(), 0) << second.stderr_text();
  auto again = child_process::helper("read_all", {address(), "20"});
  EXPECT_EQ(again.wait_exit(), 0) << again.stderr_text();
  EXPECT_TRUE(channel::remove(address()));
}

TEST_F(FileLog, TornTailWithNoWriterIsACorruptRecordNotDataNorAHang) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  ASSERT_TRUE(log->send(std::string_view("first"), 1s));
  // A header promising 100 bytes and only 50 of them, written without the lock: a dead writer.
  append_raw(path(), raw_record(100, crc_of(std::string(100, 'x')), std::string(50, 'x')));

  auto reader = channel::join(address());
  ASSERT_TRUE(reader) << reader.error().message();
  std::vector<std::byte> buffer(4096);
  auto got = reader->recv(buffer, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "first");
  auto start = std::chrono::steady_clock::now();
  auto torn = reader->recv(buffer, 2s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  ASSERT_FALSE(torn);
  EXPECT_EQ(torn.error(), errc::corrupt_record) << torn.error().message();
  EXPECT_NE(torn.error().detail().find("torn record at offset 13"), std::string::npos)
      << torn.error().message();
  // It stays reported: the offset does not move past it.
  auto again = reader->try_recv(buffer);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), errc::corrupt_record);

  // The never-deadline path reports it too (in a helper, so a hang would be caught).
  auto forever = child_process::helper("recv_once_forever", {address(), "1"});
  ASSERT_TRUE(forever.wait_ready());
  ASSERT_EQ(forever.wait_exit(5s), 0) << forever.stderr_text();
  EXPECT_NE(forever.stdout_text().find("error:"), std::string::npos) << forever.stdout_text();
  EXPECT_NE(forever.stdout_text().find("torn record at offset 13"), std::string::npos)
      << forever.stdout_text();
}

TEST_F(FileLog, FlippedPayloadByteIsACorruptRecordNamingItsOffset) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  ASSERT_TRUE(log->send(std::string_view("good"), 1s));
  ASSERT_TRUE(log->send(std::string_view("hello world"), 1s));
  int fd = ::open(path().c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char byte = 0;
  off_t at = 12 + 8 + 4;  // the 'o' of "hello"
  ASSERT_EQ(::pread(fd, &byte, 1, at), 1);
  byte ^= 0x01;
  ASSERT_EQ(::pwrite(fd, &byte, 1, at), 1);
  ::close(fd);

  std::vector<std::byte> buffer(4096);
  auto good = log->recv(buffer, 1s);
  ASSERT_TRUE(good) << good.error().message();
  auto bad = log->recv(buffer, 1s);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), errc::corrupt_record) << bad.error().message();
  EXPECT_NE(bad.error().detail().find("checksum mismatch in the record at offset 12"),
            std::string::npos)
      << bad.error().message();
}

TEST_F(FileLog, HeaderClaimingMoreThanTheMaximumIsACorruptRecord) {
  auto log = channel::create(address(), {.max_message = 64, .remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  append_raw(path(), raw_record(65, 0, std::string(65, 'z')));
  std::vector<std::byte> buffer(128);
  auto got = log->recv(buffer, 1s);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), errc::corrupt_record) << got.error().message();
  EXPECT_NE(got.error().detail().find("at offset 0 claims 65 bytes"), std::string::npos)
      << got.error().message();
}

// Record sizes chosen to walk the reader's buffer through every case: page-sized records starting
// at many offsets within a cache line (bytes land at addresses that follow the file offset),
// records that straddle the end of the 64 KiB buffer (kept bytes moved back), and records larger
// than the buffer arriving after others it still holds (kept bytes carried into a bigger buffer).
TEST_F(FileLog, BurstOfRecordsLargerAndSmallerThanThePageAndTheReadBufferComesBackByteExact) {
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < 40; ++i) sizes.push_back(4096 + (i % 3) - 1);  // 4095, 4096, 4097
  sizes.insert(sizes.end(), {0, 1, 7, 70'000, 200, 4096, 130'000, 64 * 1024 - 8, 3});
  for (std::size_t i = 0; i < 40; ++i) sizes.push_back(1000 + 61 * i);
  // Byte j of record i: a value that differs between neighbours and between records.
  auto byte_of = [](std::size_t i, std::size_t j) {
    return std::byte(static_cast<unsigned char>((i * 131 + j * 7 + (j >> 8)) & 0xff));
  };
  auto log = channel::create(address(), {.max_message = 256 * 1024, .remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  std::vector<std::byte> message;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    message.resize(sizes[i]);
    for (std::size_t j = 0; j < sizes[i]; ++j) message[j] = byte_of(i, j);
    ASSERT_TRUE(log->send(message, 1s)) << "record " << i;
  }

  // A reader that joins now finds them all written: it reads them in bursts of one buffer.
  auto reader = channel::join(address(), {.max_message = 256 * 1024});
  ASSERT_TRUE(reader) << reader.error().message();
  std::vector<std::byte> buffer(256 * 1024);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto got = reader->recv(buffer, 1s);
    ASSERT_TRUE(got) << "record " << i << ": " << got.error().message();
    ASSERT_EQ(*got, sizes[i]) << "record " << i;
    for (std::size_t j = 0; j < sizes[i]; ++j)
      ASSERT_EQ(buffer[j], byte_of(i, j)) << "record " << i << " byte " << j;
  }
  auto more = reader->try_recv(buffer);
  ASSERT_TRUE(more) << more.error().message();
  EXPECT_FALSE(more->has_value());
}

TEST_F(FileLog, RecordBeingWrittenUnderTheLockIsWaitedForNotReported) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  pipe_pair go;
  auto writer = child_process::helper("write_half_locked", {path()}, stdin_from(go.read));
  go.close_read();
  ASSERT_TRUE(writer.wait_ready());
  auto forever = child_process::helper("recv_once_forever", {address()});
  ASSERT_TRUE(forever.wait_ready());

  std::vector<std::byte> buffer(4096);
  auto waiting = log->recv(buffer, 200ms);
  ASSERT_FALSE(waiting);
  EXPECT_EQ(waiting.error(), errc::timed_out) << waiting.error().message();
  auto nothing = log->try_recv(buffer);
  ASSERT_TRUE(nothing) << nothing.error().message();
  EXPECT_FALSE(nothing->has_value());

  ASSERT_EQ(::write(go.write, "g", 1), 1);
  auto got = log->recv(buffer, 5s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "0123456789");
  EXPECT_EQ(writer.wait_exit(), 0) << writer.stderr_text();
  ASSERT_EQ(forever.wait_exit(5s), 0) << forever.stderr_text();
  EXPECT_EQ(forever.stdout_text(), "data:0123456789");
}

TEST_F(FileLog, WriterDyingInTheMiddleOfARecordLeavesATornRecordNotAHang) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  pipe_pair go;
  auto writer = child_process::helper("write_half_locked", {path()}, stdin_from(go.read));
  go.close_read();
  ASSERT_TRUE(writer.wait_ready());
  // One reader waits without a deadline (on the lock), one with a deadline (retrying it).
  auto forever = child_process::helper("recv_once_forever", {address()});
  ASSERT_TRUE(forever.wait_ready());
  ASSERT_TRUE(wait_until_sleeping(forever.pid()));
  std::vector<std::byte> buffer(4096);
  auto waiting = log->recv(buffer, 100ms);
  ASSERT_FALSE(waiting);
  EXPECT_EQ(waiting.error(), errc::timed_out) << waiting.error().message();

  writer.kill(SIGKILL);
  EXPECT_EQ(writer.wait_exit(), 128 + SIGKILL);
  auto torn = log->recv(buffer, 5s);
  ASSERT_FALSE(torn);
  EXPECT_EQ(torn.error(), errc::corrupt_record) << torn.error().message();
  EXPECT_NE(torn.error().detail().find("torn record at offset 0"), std::string::npos)
      << torn.error().message();
  ASSERT_EQ(forever.wait_exit(5s), 0) << forever.stderr_text();
  EXPECT_NE(forever.stdout_text().find("torn record at offset 0"), std::string::npos)
      << forever.stdout_text();
}

TEST_F(FileLog, AnotherUserJoiningFailsWithPermissionDeniedNamingThePath) {
  ASSERT_EQ(::geteuid(), 0u) << "the permission test runs a helper as nobody: run tests as root";
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto child = child_process::helper("join_denied", {address()}, as_nobody());
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  EXPECT_NE(child.stderr_text().find("open(\"" + path() + "\"): permission denied"),
            std::string::npos)
      << child.stderr_text();
}

TEST_F(FileLog, AUserWhoMayOnlyReadTheLogFollowsItButCannotWrite) {
  ASSERT_EQ(::geteuid(), 0u) << "the permission test runs a helper as nobody: run tests as root";
  auto log = channel::create(address(), {.permissions = 0644, .remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  ASSERT_TRUE(log->send(std::string_view("public"), 1s));
  auto child = child_process::helper("follow_read_only", {address()}, as_nobody());
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  EXPECT_EQ(child.stdout_text(), "public");
  EXPECT_NE(child.stderr_text().find("read-only"), std::string::npos) << child.stderr_text();
}

TEST_F(FileLog, SymbolicLinkIsRefused) {
  auto log = channel::create(address("real"), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  ASSERT_EQ(::symlink(path("real").c_str(), path("link").c_str()), 0);
  auto joined = channel::join(address("link"));
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), std::errc::too_many_symbolic_link_levels) << joined.error().message();
  EXPECT_EQ(joined.error().object(), path("link"));
  auto opened = channel::open(address("link"));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error(), std::errc::too_many_symbolic_link_levels) << opened.error().message();
  auto created = channel::create(address("link"));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error(), std::errc::file_exists) << created.error().message();
  auto removed = channel::remove(address("link"));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error(), std::errc::not_supported) << removed.error().message();
  ::unlink(path("link").c_str());
}

TEST_F(FileLog, JoinRefusesAPathThatIsNotARegularFile) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  auto joined = channel::join(address("fifo"));
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error(), std::errc::not_supported) << joined.error().message();
  EXPECT_NE(joined.error().detail().find("a FIFO"), std::string::npos) << joined.error().message();
  auto dir = channel::join("file:" + scratch_.dir());
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error(), std::errc::is_a_directory) << dir.error().message();
  ::unlink(path("fifo").c_str());
}

TEST_F(FileLog, RemoveDeletesTheLogAndFailsWithNotFoundWhenAbsent) {
  {
    auto log = channel::create(address());
    ASSERT_TRUE(log) << log.error().message();
    ASSERT_TRUE(log->send(std::string_view("kept"), 1s));
  }
  // Closed without remove_on_close: the log and its record are still there.
  {
    auto log = channel::join(address(), {.remove_on_close = true});  // a joiner never removes
    ASSERT_TRUE(log) << log.error().message();
    std::vector<std::byte> buffer(16);
    auto got = log->recv(buffer, 1s);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "kept");
  }
  ASSERT_TRUE(channel::remove(address()));
  auto again = channel::remove(address());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::no_such_file_or_directory) << again.error().message();
}

TEST_F(FileLog, InjectedEintrIsRetriedOnEveryPath) {
  auto log = channel::create(address(), {.remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  std::vector<std::byte> buffer(64);
  for (int interruptions : {1, 2, 3, 5}) {
    ipcx::detail::injected_eintr = interruptions;
    ASSERT_TRUE(log->send(std::string_view("one"))) << interruptions;
    ipcx::detail::injected_eintr = interruptions;
    ASSERT_TRUE(log->send(std::string_view("two"), 1s)) << interruptions;
    ipcx::detail::injected_eintr = interruptions;
    auto got = log->recv(buffer);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "one");
    ipcx::detail::injected_eintr = interruptions;
    got = log->recv(buffer, 1s);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(as_text(std::span(buffer.data(), *got)), "two");
  }
  ipcx::detail::injected_eintr = 0;
}

TEST_F(FileLog, InfoDescribesAPersistentOrderedLog) {
  auto log = channel::create(address(), {.max_message = 1000, .remove_on_close = true});
  ASSERT_TRUE(log) << log.error().message();
  auto info = log->info();
  EXPECT_EQ(info.kind, ipcx::mechanism::file);
  EXPECT_EQ(info.max_message, 1000u);
  EXPECT_TRUE(info.persistent);
  EXPECT_TRUE(info.ordered);
  EXPECT_FALSE(info.stream);
  EXPECT_FALSE(info.cross_host);
  EXPECT_GE(log->wait_fd(), 0);
}

}  // namespace
