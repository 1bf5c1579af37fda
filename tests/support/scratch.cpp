#include "scratch.hpp"

#include <fcntl.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace ipcx::test {
namespace {

std::atomic<int> counter{0};

// Keys of the SysV objects listed in /proc/sysvipc/<table> (second column).
std::vector<long> sysv_keys(const char* table) {
  std::vector<long> keys;
  std::ifstream in(std::string("/proc/sysvipc/") + table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    long key = 0;
    if (fields >> key) keys.push_back(key);
  }
  return keys;
}

std::vector<std::string> shm_entries_with(const std::string& token) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    auto name = entry.path().filename().string();
    if (name.find(token) != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

}  // namespace

std::vector<std::string> named_leftovers(const std::vector<std::string>& prefixes) {
  std::vector<std::string> found;
  for (const char* dir : {"/tmp", "/dev/shm", "/dev/mqueue"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      auto name = entry.path().filename().string();
      for (const auto& prefix : prefixes)
        if (name.starts_with(prefix)) {
          found.push_back(entry.path().string());
          break;
        }
    }
  }
  return found;
}

scratch::scratch() {
  token_ = "ipcx-t" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  dir_ = "/tmp/" + token_;
  std::filesystem::remove_all(dir_);
  ::mkdir(dir_.c_str(), 0755);  // searchable, so a helper running as nobody meets 0600 files
}

scratch::~scratch() {
  remove_all();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string scratch::ipc_name(const std::string& stem) const { return "/" + token_ + "-" + stem; }

std::string scratch::path(const std::string& stem) const { return dir_ + "/" + stem; }

long scratch::key(const std::string& stem) {
  auto h = std::hash<std::string>{}(token_ + "/" + stem);
  long k = 0x10000000L + static_cast<long>(h % 0x6fffffffUL);
  keys_.push_back(k);
  return k;
}

std::vector<std::string> scratch::leftovers() const {
  std::vector<std::string> left;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec))
    left.push_back(entry.path().string());
  for (auto& s : shm_entries_with(token_)) left.push_back(s);
  // POSIX queues: /dev/mqueue may not be mounted, so ask for this test's names by prefix via the
  // mount when it exists, and otherwise rely on the tests' own mq_open checks.
  for (const auto& entry : std::filesystem::directory_iterator("/dev/mqueue", ec)) {
    auto name = entry.path().filename().string();
    if (name.find(token_) != std::string::npos) left.push_back("mq /" + name);
  }
  for (const char* table : {"msg", "shm", "sem"}) {
    auto present = sysv_keys(table);
    for (long k : keys_)
      for (long p : present)
        if (k == p) left.push_back(std::string("sysv ") + table + " key " + std::to_string(k));
  }
  return left;
}

void scratch::remove_all() const {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec))
    std::filesystem::remove_all(entry.path(), ec);
  for (auto& s : shm_entries_with(token_)) ::unlink(s.c_str());
  for (const auto& entry : std::filesystem::directory_iterator("/dev/mqueue", ec)) {
    auto name = entry.path().filename().string();
    if (name.find(token_) != std::string::npos) ::mq_unlink(("/" + name).c_str());
  }
  for (long k : keys_) {
    auto key = static_cast<key_t>(k);
    if (int id = ::msgget(key, 0); id >= 0) ::msgctl(id, IPC_RMID, nullptr);
    if (int id = ::shmget(key, 0, 0); id >= 0) ::shmctl(id, IPC_RMID, nullptr);
    if (int id = ::semget(key, 0, 0); id >= 0) ::semctl(id, 0, IPC_RMID);
  }
}

void ipc_test::TearDown() {
  auto left = scratch_.leftovers();
  std::string list;
  for (auto& l : left) list += "  " + l + "\n";
  EXPECT_TRUE(left.empty()) << "the test left these behind:\n" << list;
  scratch_.remove_all();
}

}  // namespace ipcx::test
