// ipcx::file_lock (OFD locks) between real processes.
#include "ipcx/file_lock.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "process.hpp"
#include "scratch.hpp"

namespace {

using namespace std::chrono_literals;
using ipcx::errc;
using ipcx::file_lock;
using ipcx::lock_mode;
using ipcx::test::child_process;
using ipcx::test::report;
using ipcx::test::wait_until_blocked_in;

lock_mode mode_named(const std::string& name) {
  return name == "shared" ? lock_mode::shared : lock_mode::exclusive;
}

// Opens args[0], takes it in mode args[1], says ready and sleeps until killed.
IPCX_HELPER(hold_until_killed) {
  auto lock = file_lock::open(args[0]);
  if (!lock) return report("open", lock.error());
  if (auto held = lock->lock(mode_named(args[1]), 5s); !held) return report("lock", held.error());
  ipcx::test::ready();
  std::this_thread::sleep_for(30s);
  return 1;
}

// Opens args[0]; try_lock must say false (the parent holds it); says ready, then blocks in lock()
// without a deadline and prints "locked" once it has the lock.
IPCX_HELPER(wait_for_lock) {
  auto lock = file_lock::open(args[0]);
  if (!lock) return report("open", lock.error());
  auto tried = lock->try_lock();
  if (!tried) return report("try_lock", tried.error());
  if (*tried) {
    std::fprintf(stderr, "try_lock succeeded while the parent held the lock\n");
    return 1;
  }
  ipcx::test::ready();
  if (auto held = lock->lock(); !held) return report("lock", held.error());
  std::fprintf(stderr, "locked\n");
  return 0;
}

class FileLock : public ipcx::test::ipc_test {
 protected:
  void TearDown() override {
    ::unlink(scratch_.path("lock").c_str());
    ipc_test::TearDown();
  }
  std::string path() { return scratch_.path("lock"); }
};

TEST_F(FileLock, ASecondProcessIsExcludedWhileTheFirstHoldsTheLockAndGetsItAfter) {
  auto lock = file_lock::open(path());
  ASSERT_TRUE(lock) << lock.error().message();
  ASSERT_TRUE(lock->lock());
  auto child = child_process::helper("wait_for_lock", {path()});
  ASSERT_TRUE(child.wait_ready());
  ASSERT_TRUE(wait_until_blocked_in(child.pid(), SYS_fcntl, 5s)) << child.stderr_text();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(child.stderr_text().find("locked"), std::string::npos) << "it got in while held";
  ASSERT_TRUE(lock->unlock());
  EXPECT_EQ(child.wait_exit(5s), 0) << child.stderr_text();
  EXPECT_NE(child.stderr_text().find("locked"), std::string::npos);
}

TEST_F(FileLock, TryLockIsFalseWhileAnotherProcessHoldsItAndADeadlineEndsTheWait) {
  auto child = child_process::helper("hold_until_killed", {path(), "exclusive"});
  ASSERT_TRUE(child.wait_ready());
  auto lock = file_lock::open(path());
  ASSERT_TRUE(lock) << lock.error().message();
  for (auto mode : {lock_mode::exclusive, lock_mode::shared}) {
    auto tried = lock->try_lock(mode);
    ASSERT_TRUE(tried) << tried.error().message();
    EXPECT_FALSE(*tried);
  }
  auto start = std::chrono::steady_clock::now();
  auto late = lock->lock(lock_mode::exclusive, 50ms);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error(), errc::timed_out);
  EXPECT_EQ(late.error().message(), "file_lock::lock(\"" + path() + "\"): timed out");
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 500ms);
  auto now = lock->lock(lock_mode::exclusive, ipcx::deadline::immediate());
  ASSERT_FALSE(now);
  EXPECT_EQ(now.error(), errc::timed_out);
  child.kill(SIGKILL);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
}

TEST_F(FileLock, ALockIsReleasedWhenItsHolderDies) {
  auto child = child_process::helper("hold_until_killed", {path(), "exclusive"});
  ASSERT_TRUE(child.wait_ready());
  auto lock = file_lock::open(path());
  ASSERT_TRUE(lock) << lock.error().message();
  auto tried = lock->try_lock();
  ASSERT_TRUE(tried && !*tried);
  child.kill(SIGKILL);
  auto held = lock->hold(lock_mode::exclusive, 2s);
  EXPECT_TRUE(held) << held.error().message();
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
}

TEST_F(FileLock, SharedLocksCoexistAndExcludeAnExclusiveOne) {
  auto child = child_process::helper("hold_until_killed", {path(), "shared"});
  ASSERT_TRUE(child.wait_ready());
  auto reader = file_lock::open(path());
  ASSERT_TRUE(reader) << reader.error().message();
  auto shared = reader->try_lock(lock_mode::shared);
  ASSERT_TRUE(shared) << shared.error().message();
  EXPECT_TRUE(*shared);
  auto writer = file_lock::open(path());
  ASSERT_TRUE(writer) << writer.error().message();
  auto exclusive = writer->try_lock(lock_mode::exclusive);
  ASSERT_TRUE(exclusive) << exclusive.error().message();
  EXPECT_FALSE(*exclusive);
  child.kill(SIGKILL);
  EXPECT_EQ(child.wait_exit(), 128 + SIGKILL);
  ASSERT_TRUE(reader->unlock());
  exclusive = writer->try_lock(lock_mode::exclusive);
  ASSERT_TRUE(exclusive) << exclusive.error().message();
  EXPECT_TRUE(*exclusive) << "both shared holders are gone";
}

TEST_F(FileLock, AGuardUnlocksAtTheEndOfItsScope) {
  auto first = file_lock::open(path());
  auto second = file_lock::open(path());
  ASSERT_TRUE(first && second);
  {
    auto held = first->hold();
    ASSERT_TRUE(held) << held.error().message();
    // OFD locks belong to the open, not the process: two opens in one process exclude each other.
    EXPECT_FALSE(second->try_lock().value_or(true));
  }
  EXPECT_TRUE(second->try_lock().value_or(false));
}

TEST_F(FileLock, TheLockFileIsCreatedPrivateAndASymlinkIsRefused) {
  auto lock = file_lock::open(path());
  ASSERT_TRUE(lock) << lock.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto link = scratch_.path("link");
  ASSERT_EQ(::symlink(path().c_str(), link.c_str()), 0);
  auto through_link = file_lock::open(link);
  ::unlink(link.c_str());
  ASSERT_FALSE(through_link);
  EXPECT_EQ(through_link.error(), std::errc::too_many_symbolic_link_levels);
  EXPECT_EQ(through_link.error().message(),
            "open(\"" + link + "\"): too many levels of symbolic links");
}

TEST_F(FileLock, ABorrowedDescriptorNeedsTheAccessItsModeNeeds) {
  { auto made = file_lock::open(path()); }
  int fd = ::open(path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto lock = file_lock::on(fd);
  ASSERT_TRUE(lock) << lock.error().message();
  auto shared = lock->try_lock(lock_mode::shared);
  ASSERT_TRUE(shared) << shared.error().message();
  EXPECT_TRUE(*shared);
  auto exclusive = lock->lock(lock_mode::exclusive);
  ASSERT_FALSE(exclusive);
  EXPECT_EQ(exclusive.error(), std::errc::bad_file_descriptor);
  EXPECT_NE(exclusive.error().message().find("an exclusive lock needs the file open for writing"),
            std::string::npos)
      << exclusive.error().message();
  ::close(fd);
  auto closed = file_lock::on(fd);
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error(), std::errc::bad_file_descriptor);
}

}  // namespace
