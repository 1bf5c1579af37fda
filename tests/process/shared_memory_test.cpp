// ipcx::shared_memory between real processes: POSIX (shm:/name), System V (sysv-shm:KEY) and memfd
// (handed over a socketpair or a memfd:/path socket).
#include "ipcx/shared_memory.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ipcx/unique_fd.hpp"
#include "process.hpp"
#include "scratch.hpp"

namespace {

using ipcx::test::as_nobody;
using namespace std::chrono_literals;
using ipcx::errc;
using ipcx::shared_memory;
using ipcx::unique_fd;
using ipcx::test::child_process;
using ipcx::test::inheriting;
using ipcx::test::report;
using ipcx::test::spawn_options;

constexpr std::size_t kSize = 8192;
constexpr std::size_t kReplyOffset = 4096;

int complain(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  return 1;
}

void put(std::span<std::byte> bytes, std::size_t offset, const std::string& s) {
  std::memcpy(bytes.data() + offset, s.data(), s.size());
}

std::string get(std::span<const std::byte> bytes, std::size_t offset, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(bytes.data()) + offset, size);
}

// True when `e` has code `code` and its message contains `part`.
::testing::AssertionResult is_error(const ipcx::error& e, std::error_code code,
                                    const std::string& part) {
  if (e.code() != code)
    return ::testing::AssertionFailure() << "code " << e.code().message() << ", expected "
                                         << code.message() << ": " << e.message();
  if (e.message().find(part) == std::string::npos)
    return ::testing::AssertionFailure() << "\"" << e.message() << "\" lacks \"" << part << "\"";
  return ::testing::AssertionSuccess();
}

std::error_code posix(std::errc e) { return std::make_error_code(e); }

// The segment checks a hand-over receiver makes on its own copy: writes land in the shared bytes,
// and the seals refuse any change of size.
int check_sealed(const shared_memory& seg) {
  for (off_t size : {off_t{0}, off_t{100}, static_cast<off_t>(seg.size() * 2)}) {
    if (::ftruncate(seg.fd(), size) == 0)
      return complain("ftruncate to " + std::to_string(size) + " succeeded on a sealed memfd");
    if (errno != EPERM)
      return complain("ftruncate to " + std::to_string(size) + ": " + std::strerror(errno) +
                      ", expected EPERM");
  }
  return 0;
}

// Joins args[0] (needing args[1] bytes, and args[2] = "memfd" to wait for the hand-over), checks
// that it starts with args[3] and writes args[4] at kReplyOffset.
IPCX_HELPER(join_check_reply) {
  auto seg = shared_memory::join(args[0], std::stoul(args[1]), {.until = 5s});
  if (!seg) return report("join", seg.error());
  if (seg->size() != std::stoul(args[1]))
    return complain("size " + std::to_string(seg->size()) + ", expected " + args[1]);
  if (get(seg->bytes(), 0, args[3].size()) != args[3])
    return complain("read \"" + get(seg->bytes(), 0, args[3].size()) + "\"");
  put(seg->bytes(), kReplyOffset, args[4]);
  if (args[2] == "memfd") return check_sealed(*seg);
  return 0;
}

// Receives a segment on inherited socket args[0], checks it starts with args[1], writes args[2] at
// kReplyOffset and tries to change its size.
IPCX_HELPER(receive_check_reply) {
  auto seg = ipcx::receive_memfd(std::stoi(args[0]), {}, 5s);
  if (!seg) return report("receive_memfd", seg.error());
  if (get(seg->bytes(), 0, args[1].size()) != args[1])
    return complain("read \"" + get(seg->bytes(), 0, args[1].size()) + "\"");
  put(seg->bytes(), kReplyOffset, args[2]);
  return check_sealed(*seg);
}

// join(args[0]); exits 0 only if that fails with errno args[1] and a message containing args[2].
IPCX_HELPER(expect_join_error) {
  ipcx::segment_options options{.until = 5s};
  if (args.size() > 3) options.peers.uids = {static_cast<uid_t>(std::stoul(args[3]))};
  auto seg = shared_memory::join(args[0], 0, options);
  if (seg) return complain("join succeeded");
  std::fprintf(stderr, "%s\n", seg.error().message().c_str());
  bool right_code =
      seg.error().code() == std::error_code(std::stoi(args[1]), std::generic_category());
  return right_code && seg.error().message().find(args[2]) != std::string::npos ? 0 : 1;
}

// Opens POSIX segment args[0] by name and truncates it to args[1] bytes.
IPCX_HELPER(truncate_posix) {
  unique_fd fd(::shm_open(args[0].c_str(), O_RDWR | O_CLOEXEC, 0));
  if (!fd) return complain(std::string("shm_open: ") + std::strerror(errno));
  if (::ftruncate(fd.get(), std::stol(args[1])) != 0)
    return complain(std::string("ftruncate: ") + std::strerror(errno));
  return 0;
}

// Creates memfd:args[0] (socket file mode 0666) serving uid args[1], says ready, serves one.
IPCX_HELPER(serve_memfd) {
  auto seg = shared_memory::create(
      args[0], kSize,
      {.permissions = 0666, .peers = {.uids = {static_cast<uid_t>(std::stoul(args[1]))}}});
  if (!seg) return report("create", seg.error());
  put(seg->bytes(), 0, "from the creator");
  ipcx::test::ready();
  auto served = seg->serve_one(5s);
  // A joiner that refuses this creator may close its end before the segment is sent.
  if (!served && served.error() != std::errc::broken_pipe &&
      served.error() != std::errc::connection_reset)
    return report("serve_one", served.error());
  return 0;
}

// Sends, on inherited socket args[0], a memfd of 4096 bytes that is not sealed.
IPCX_HELPER(send_unsealed) {
  unique_fd memfd(::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!memfd || ::ftruncate(memfd.get(), 4096) != 0)
    return complain(std::string("memfd: ") + std::strerror(errno));
  char byte = 'S';
  iovec iov{.iov_base = &byte, .iov_len = 1};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int fd = memfd.get();
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (::sendmsg(std::stoi(args[0]), &msg, MSG_NOSIGNAL) != 1)
    return complain(std::string("sendmsg: ") + std::strerror(errno));
  return 0;
}

// Sends `fds` with one byte over `socket`.
bool send_fds(int socket, const std::vector<int>& fds) {
  char byte = 'S';
  iovec iov{.iov_base = &byte, .iov_len = 1};
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL) == 1;
}

std::size_t open_descriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

struct socket_pair {
  unique_fd ours;
  unique_fd theirs;
};

socket_pair make_socket_pair() {
  std::array<int, 2> sv{-1, -1};
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv.data()), 0);
  return {unique_fd(sv[0]), unique_fd(sv[1])};
}

class SharedMemory : public ipcx::test::ipc_test {
 protected:
  std::string posix_address(const std::string& stem) { return "shm:" + scratch_.ipc_name(stem); }
  std::string sysv_address(const std::string& stem) {
    return "sysv-shm:" + std::to_string(scratch_.key(stem));
  }
  std::string memfd_address(const std::string& stem) { return "memfd:" + scratch_.path(stem); }

  // Writes a greeting, has a child join and answer, and checks the answer.
  void exchange_with_child(const std::string& where, bool memfd) {
    auto seg = shared_memory::create(where, kSize, {.remove_on_close = true});
    ASSERT_TRUE(seg) << seg.error().message();
    ASSERT_EQ(seg->size(), kSize);
    put(seg->bytes(), 0, "hello from the writer");
    auto child = child_process::helper("join_check_reply",
                                       {where, std::to_string(kSize), memfd ? "memfd" : "named",
                                        "hello from the writer", "hello from the reader"});
    if (memfd) {
      auto served = seg->serve_one(5s);
      ASSERT_TRUE(served) << served.error().message() << "\n" << child.stderr_text();
    }
    ASSERT_EQ(child.wait_exit(), 0) << child.stderr_text();
    EXPECT_EQ(get(seg->bytes(), kReplyOffset, 21), "hello from the reader");
  }
};

TEST_F(SharedMemory, WriterAndReaderProcessesShareThePosixSegmentsBytes) {
  exchange_with_child(posix_address("seg"), false);
}

TEST_F(SharedMemory, WriterAndReaderProcessesShareTheSysvSegmentsBytes) {
  exchange_with_child(sysv_address("seg"), false);
}

TEST_F(SharedMemory, WriterAndReaderProcessesShareAMemfdHandedOverASocketPath) {
  exchange_with_child(memfd_address("seg"), true);
}

TEST_F(SharedMemory, ASysvKeyPathNamesTheSameSegmentAsItsFtokKey) {
  auto file = scratch_.path("key");
  unique_fd made(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  ASSERT_TRUE(made);
  key_t key = ::ftok(file.c_str(), 'x');
  ASSERT_NE(key, -1);
  {
    auto seg = shared_memory::create("sysv-shm:" + file, 4096, {.remove_on_close = true});
    ASSERT_TRUE(seg) << seg.error().message();
    auto by_number = shared_memory::join("sysv-shm:" + std::to_string(key));
    ASSERT_TRUE(by_number) << by_number.error().message();
    put(seg->bytes(), 0, "same");
    EXPECT_EQ(get(by_number->bytes(), 0, 4), "same");
    EXPECT_EQ(by_number->fd(), -1);
  }
  EXPECT_FALSE(shared_memory::join("sysv-shm:" + std::to_string(key))) << "remove_on_close";
  ::unlink(file.c_str());
}

TEST_F(SharedMemory, CreateExistingSegmentFailsWithExists) {
  for (const auto& where : {posix_address("seg"), sysv_address("seg"), memfd_address("seg")}) {
    auto first = shared_memory::create(where, 4096, {.remove_on_close = true});
    ASSERT_TRUE(first) << first.error().message();
    auto second = shared_memory::create(where, 4096);
    ASSERT_FALSE(second) << where;
    EXPECT_EQ(second.error(), std::errc::file_exists) << second.error().message();
    EXPECT_NE(second.error().message().find("(\"" + where + "\"): file exists"), std::string::npos)
        << second.error().message();
  }
}

TEST_F(SharedMemory, JoinMissingSegmentFailsWithNotFound) {
  for (const auto& where :
       {posix_address("absent"), sysv_address("absent"), memfd_address("absent")}) {
    auto seg = shared_memory::join(where);
    ASSERT_FALSE(seg) << where;
    EXPECT_EQ(seg.error(), std::errc::no_such_file_or_directory) << seg.error().message();
    EXPECT_NE(seg.error().message().find("(\"" + where + "\"): no such file or directory"),
              std::string::npos)
        << seg.error().message();
    auto removed = shared_memory::remove(where);
    ASSERT_FALSE(removed) << where;
    EXPECT_EQ(removed.error(), std::errc::no_such_file_or_directory) << removed.error().message();
  }
}

TEST_F(SharedMemory, APosixSegmentIsCreatedWithExactlyThePermissionsAsked) {
  auto name = scratch_.ipc_name("seg");
  auto old_mask = ::umask(077);
  auto seg =
      shared_memory::create("shm:" + name, 4096, {.permissions = 0640, .remove_on_close = true});
  ::umask(old_mask);
  ASSERT_TRUE(seg) << seg.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm" + name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(SharedMemory, NamedSegmentsOutliveTheirCreatorUntilRemoved) {
  for (const auto& where : {posix_address("kept"), sysv_address("kept")}) {
    {
      auto seg = shared_memory::create(where, 4096);
      ASSERT_TRUE(seg) << seg.error().message();
      put(seg->bytes(), 0, "kept");
    }
    auto again = shared_memory::join(where, 4096);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(get(again->bytes(), 0, 4), "kept");
    ASSERT_TRUE(shared_memory::remove(where));
    auto gone = shared_memory::join(where);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error(), std::errc::no_such_file_or_directory);
  }
}

TEST_F(SharedMemory, OpenCreatesWhenMissingAndJoinsWhenPresent) {
  auto where = posix_address("either");
  auto made = shared_memory::open(where, 4096, {.remove_on_close = true});
  ASSERT_TRUE(made) << made.error().message();
  put(made->bytes(), 0, "made");
  auto joined = shared_memory::open(where, 4096);
  ASSERT_TRUE(joined) << joined.error().message();
  EXPECT_EQ(get(joined->bytes(), 0, 4), "made");
}

TEST_F(SharedMemory, ASegmentTruncatedByAnotherProcessBeforeJoinIsAnErrorNotSigbus) {
  auto name = scratch_.ipc_name("seg");
  auto where = "shm:" + name;
  auto seg = shared_memory::create(where, kSize, {.remove_on_close = true});
  ASSERT_TRUE(seg) << seg.error().message();

  auto shrink = child_process::helper("truncate_posix", {name, "100"});
  ASSERT_EQ(shrink.wait_exit(), 0) << shrink.stderr_text();
  auto needing = shared_memory::join(where, kSize);
  ASSERT_FALSE(needing);
  EXPECT_EQ(needing.error(), errc::corrupt_segment);
  EXPECT_EQ(needing.error().message(),
            "shared_memory::join(\"" + where +
                "\"): corrupt shared-memory segment: the segment "
                "has 100 bytes, fewer than the 8192 required (truncated by "
                "another process?)");
  // Without a minimum, join maps what is there: 100 bytes, every one of them safe to touch.
  auto small = shared_memory::join(where);
  ASSERT_TRUE(small) << small.error().message();
  EXPECT_EQ(small->size(), 100u);
  put(small->bytes(), 99, "x");

  auto empty = child_process::helper("truncate_posix", {name, "0"});
  ASSERT_EQ(empty.wait_exit(), 0) << empty.stderr_text();
  auto none = shared_memory::join(where);
  ASSERT_FALSE(none);
  EXPECT_TRUE(is_error(none.error(), ipcx::make_error_code(errc::corrupt_segment),
                       "the segment is empty (0 bytes)"));
}

TEST_F(SharedMemory, ASysvSegmentSmallerThanRequiredIsAnError) {
  auto where = sysv_address("seg");
  auto seg = shared_memory::create(where, 1000, {.remove_on_close = true});
  ASSERT_TRUE(seg) << seg.error().message();
  auto joined = shared_memory::join(where);
  ASSERT_TRUE(joined) << joined.error().message();
  EXPECT_EQ(joined->size(), 1000u);  // shm_segsz, not the page-rounded size
  auto needing = shared_memory::join(where, 1001);
  ASSERT_FALSE(needing);
  EXPECT_TRUE(is_error(needing.error(), ipcx::make_error_code(errc::corrupt_segment),
                       "has 1000 bytes, fewer than the 1001 required"));
}

TEST_F(SharedMemory, NobodyIsDeniedAPrivateSegment) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  auto posix_where = posix_address("private");
  auto sysv_where = sysv_address("private");
  auto p = shared_memory::create(posix_where, 4096, {.remove_on_close = true});
  ASSERT_TRUE(p) << p.error().message();
  auto s = shared_memory::create(sysv_where, 4096, {.remove_on_close = true});
  ASSERT_TRUE(s) << s.error().message();
  auto posix_child = child_process::helper(
      "expect_join_error",
      {posix_where, std::to_string(EACCES), "shm_open(\"" + posix_where + "\"): permission denied"},
      as_nobody());
  EXPECT_EQ(posix_child.wait_exit(), 0) << posix_child.stderr_text();
  auto sysv_child = child_process::helper(
      "expect_join_error",
      {sysv_where, std::to_string(EACCES), "shmget(\"" + sysv_where + "\"): permission denied"},
      as_nobody());
  EXPECT_EQ(sysv_child.wait_exit(), 0) << sysv_child.stderr_text();
}

TEST_F(SharedMemory, AMemfdHandedToAChildOverASocketpairIsSharedAndSealed) {
  auto seg = shared_memory::create_memfd(kSize);
  ASSERT_TRUE(seg) << seg.error().message();
  EXPECT_EQ(seg->address().to_string(), "memfd:");
  put(seg->bytes(), 0, "over the pair");
  auto pair = make_socket_pair();
  auto child = child_process::helper(
      "receive_check_reply", {std::to_string(pair.theirs.get()), "over the pair", "answered"},
      inheriting({pair.theirs.get()}));
  pair.theirs.reset();
  auto sent = ipcx::send_memfd(pair.ours.get(), *seg);
  ASSERT_TRUE(sent) << sent.error().message();
  ASSERT_EQ(child.wait_exit(), 0) << child.stderr_text();
  EXPECT_EQ(get(seg->bytes(), kReplyOffset, 8), "answered");
  EXPECT_EQ(::ftruncate(seg->fd(), 100), -1) << "the creator itself cannot shrink it";
  EXPECT_EQ(errno, EPERM);
}

TEST_F(SharedMemory, AReceiverRefusesAnUnsealedMemfd) {
  auto pair = make_socket_pair();
  auto child = child_process::helper("send_unsealed", {std::to_string(pair.theirs.get())},
                                     inheriting({pair.theirs.get()}));
  pair.theirs.reset();
  auto before = open_descriptors();
  auto seg = ipcx::receive_memfd(pair.ours.get(), {}, 5s);
  ASSERT_FALSE(seg);
  EXPECT_TRUE(is_error(seg.error(), posix(std::errc::operation_not_permitted),
                       "the memfd is not sealed against shrinking and growing"));
  EXPECT_EQ(open_descriptors(), before) << "the refused descriptor was not closed";
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SharedMemory, AReceiverRefusesAPeerWhoseUidThePolicyExcludes) {
  auto seg = shared_memory::create_memfd(4096);
  ASSERT_TRUE(seg) << seg.error().message();
  auto pair = make_socket_pair();
  ASSERT_TRUE(ipcx::send_memfd(pair.theirs.get(), *seg));
  // A socketpair's credentials are its creator's: this process, uid 0 here.
  auto refused = ipcx::receive_memfd(pair.ours.get(), {.uids = {12345}}, 1s);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(is_error(refused.error(), posix(std::errc::operation_not_permitted),
                       "the peer (uid " + std::to_string(::geteuid()) + ", pid " +
                           std::to_string(::getpid()) +
                           ") is not allowed: the peer policy allows uids 12345"));
  // A pid outside the list is refused too, even for an allowed uid.
  auto wrong_pid = ipcx::receive_memfd(pair.ours.get(), {.uids = {}, .pids = {1}}, 1s);
  ASSERT_FALSE(wrong_pid);
  EXPECT_EQ(wrong_pid.error(), std::errc::operation_not_permitted);
  auto allowed = ipcx::receive_memfd(pair.ours.get(), {.uids = {}, .pids = {::getpid()}}, 1s);
  ASSERT_TRUE(allowed) << allowed.error().message();
}

TEST_F(SharedMemory, AJoinerRefusesACreatorRunningAsAnotherUser) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  // A directory nobody may create its socket in.
  auto dir = scratch_.path("nobody");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);
  auto where = "memfd:" + dir + "/seg";
  {
    auto child = child_process::helper("serve_memfd", {where, "0"}, as_nobody());
    ASSERT_TRUE(child.wait_ready());
    auto seg = shared_memory::join(where, 0, {.until = 5s});  // default policy: uid 0 only
    ASSERT_FALSE(seg);
    EXPECT_TRUE(is_error(seg.error(), posix(std::errc::operation_not_permitted),
                         "receive_memfd(\"" + where +
                             "\"): operation not permitted: the peer (uid "
                             "65534, pid " +
                             std::to_string(child.pid()) + ") is not allowed"));
    EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
  }
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << "the creator left its socket file behind";
}

TEST_F(SharedMemory, ACreatorRefusesAJoinerRunningAsAnotherUser) {
  ASSERT_EQ(::geteuid(), 0u) << "this test drops a helper to nobody: run it as root";
  auto where = memfd_address("seg");
  // 0666, so that nobody may connect and be turned away by the policy rather than the file mode.
  auto seg = shared_memory::create(where, 4096, {.permissions = 0666});
  ASSERT_TRUE(seg) << seg.error().message();
  // bind() narrows the socket file's mode by the umask.
  ASSERT_EQ(::chmod(scratch_.path("seg").c_str(), 0666), 0);
  auto child = child_process::helper(
      "expect_join_error",
      {where, std::to_string(EPERM), "the creator refused this process (uid 65534", "0"},
      as_nobody());
  auto served = seg->serve_one(5s);
  ASSERT_FALSE(served);
  EXPECT_TRUE(is_error(served.error(), posix(std::errc::operation_not_permitted),
                       "serve_one(\"" + where +
                           "\"): operation not permitted: the joiner (uid "
                           "65534, pid " +
                           std::to_string(child.pid()) +
                           ") is not allowed: the peer "
                           "policy allows only this process's uid 0"));
  EXPECT_EQ(child.wait_exit(), 0) << child.stderr_text();
}

TEST_F(SharedMemory, AMessageWithoutADescriptorIsRefusedAndExtraDescriptorsAreClosed) {
  auto pair = make_socket_pair();
  ASSERT_TRUE(send_fds(pair.theirs.get(), {}));
  auto none = ipcx::receive_memfd(pair.ours.get(), {}, 1s);
  ASSERT_FALSE(none);
  EXPECT_TRUE(
      is_error(none.error(), posix(std::errc::bad_message), "a message came without a descriptor"));

  auto seg = shared_memory::create_memfd(4096);
  ASSERT_TRUE(seg) << seg.error().message();
  std::array<int, 2> extra{-1, -1};
  ASSERT_EQ(::pipe2(extra.data(), O_CLOEXEC), 0);
  unique_fd r(extra[0]), w(extra[1]);
  ASSERT_TRUE(send_fds(pair.theirs.get(), {seg->fd(), extra[0], extra[1]}));
  auto before = open_descriptors();
  auto got = ipcx::receive_memfd(pair.ours.get(), {}, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(open_descriptors(), before + 1) << "only the segment's descriptor should remain";
  EXPECT_EQ(got->size(), 4096u);
}

TEST_F(SharedMemory, HandOversEndAtTheirDeadline) {
  auto where = memfd_address("seg");
  auto seg = shared_memory::create(where, 4096);
  ASSERT_TRUE(seg) << seg.error().message();
  auto start = std::chrono::steady_clock::now();
  auto nobody_came = seg->serve_one(50ms);
  ASSERT_FALSE(nobody_came);
  EXPECT_EQ(nobody_came.error(), errc::timed_out) << nobody_came.error().message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  // The creator never serves: the joiner gives up at its deadline.
  auto not_served = shared_memory::join(where, 0, {.until = 50ms});
  ASSERT_FALSE(not_served);
  EXPECT_EQ(not_served.error(), errc::timed_out) << not_served.error().message();
  auto pair = make_socket_pair();
  auto silent = ipcx::receive_memfd(pair.ours.get(), {}, ipcx::deadline::immediate());
  ASSERT_FALSE(silent);
  EXPECT_EQ(silent.error(), errc::timed_out);
  pair.theirs.reset();
  auto closed = ipcx::receive_memfd(pair.ours.get(), {}, 1s);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error(), errc::end_of_stream) << closed.error().message();
}

TEST_F(SharedMemory, AMemfdSocketFileGoesWithItsCreatorAndAStaleOneIsReplaced) {
  auto where = memfd_address("seg");
  auto path = scratch_.path("seg");
  {
    auto seg = shared_memory::create(where, 4096);
    ASSERT_TRUE(seg) << seg.error().message();
    EXPECT_TRUE(std::filesystem::exists(path));
    EXPECT_GE(seg->serve_fd(), 0);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  // A socket file nobody listens on (a creator killed before it could remove it).
  {
    unique_fd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }
  auto refused = shared_memory::join(where, 0, {.until = 1s});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::connection_refused) << refused.error().message();
  auto seg = shared_memory::create(where, 4096);
  ASSERT_TRUE(seg) << seg.error().message();
}

TEST_F(SharedMemory, AMovedFromSegmentOwnsNothing) {
  auto seg = shared_memory::create_memfd(4096);
  ASSERT_TRUE(seg) << seg.error().message();
  shared_memory moved = std::move(*seg);
  EXPECT_EQ(moved.size(), 4096u);
  EXPECT_EQ(seg->size(), 0u);  // NOLINT(bugprone-use-after-move): what is left is the point
  EXPECT_EQ(seg->fd(), -1);
  *seg = std::move(moved);
  EXPECT_EQ(seg->size(), 4096u);
  EXPECT_GE(seg->fd(), 0);
}

TEST_F(SharedMemory, MisuseFailsWithAClearError) {
  auto wrong_kind = shared_memory::create("mq:/x", 4096);
  ASSERT_FALSE(wrong_kind);
  EXPECT_EQ(wrong_kind.error(), errc::bad_address);
  EXPECT_NE(
      wrong_kind.error().message().find("expected shm:/name, sysv-shm:KEY or memfd:/socket-path"),
      std::string::npos);
  auto empty = shared_memory::create(posix_address("empty"), 0);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error(), std::errc::invalid_argument);
  auto named = shared_memory::create(posix_address("named"), 4096, {.remove_on_close = true});
  ASSERT_TRUE(named) << named.error().message();
  auto pair = make_socket_pair();
  auto sent = ipcx::send_memfd(pair.ours.get(), *named);
  ASSERT_FALSE(sent);
  EXPECT_TRUE(is_error(sent.error(), posix(std::errc::invalid_argument),
                       "only a sealed memfd segment can be handed over"));
  auto not_served = named->serve_one(1ms);
  ASSERT_FALSE(not_served);
  EXPECT_EQ(not_served.error(), errc::not_supported);
}

}  // namespace
