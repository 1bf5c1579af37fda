#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "process.hpp"

namespace {

// POSIX queues are listed under /dev/mqueue only when it is mounted; the leak check reads it.
void mount_mqueue_if_root() {
  struct stat st {};
  if (::geteuid() != 0 || ::stat("/dev/mqueue", &st) != 0) {
    if (::geteuid() == 0) ::mkdir("/dev/mqueue", 01777);
  }
  struct stat parent {};
  if (::stat("/dev/mqueue", &st) == 0 && ::stat("/dev", &parent) == 0 && st.st_dev == parent.st_dev)
    ::mount("mqueue", "/dev/mqueue", "mqueue", 0, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  ipcx::test::run_helper_if_requested(argc, argv);
  mount_mqueue_if_root();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
