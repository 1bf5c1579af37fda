// Unique names for one test, and the check that the test left nothing behind.
//
// Each test gets a token (pid + counter) that every name it makes contains, so tests running in
// parallel never collide and the leak check looks only at this test's objects: /dev/shm entries,
// POSIX queues, SysV objects with this test's keys, and files in the test's own directory.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ipcx::test {

class scratch {
 public:
  scratch();
  ~scratch();  // removes the directory and whatever is left, after leftovers() was checked

  // "/ipcx-TOKEN-stem": a POSIX IPC name.
  std::string ipc_name(const std::string& stem) const;
  // "DIR/stem" inside this test's private directory.
  std::string path(const std::string& stem) const;
  // A SysV key unique to this test and stem.
  long key(const std::string& stem);
  const std::string& dir() const { return dir_; }

  // Everything of this test's that still exists; empty when the test cleaned up.
  std::vector<std::string> leftovers() const;
  // Removes leftovers so a failed test does not leak into the next one.
  void remove_all() const;

 private:
  std::string token_;
  std::string dir_;
  std::vector<long> keys_;
};

// The entries of /tmp, /dev/shm and /dev/mqueue whose names start with one of `prefixes`, as paths:
// what a program the test ran, which names its objects itself, left behind.
std::vector<std::string> named_leftovers(const std::vector<std::string>& prefixes);

// Fixture: TearDown fails the test if it left anything behind.
class ipc_test : public ::testing::Test {
 protected:
  void TearDown() override;
  scratch scratch_;
};

}  // namespace ipcx::test
