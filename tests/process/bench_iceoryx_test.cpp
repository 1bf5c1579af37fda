// `ipcx bench` over iceoryx (busy-polling and WaitSet), with the RouDi daemon the bench starts and
// stops itself: the built CLI, run for real. Every iceoryx row and the ipcx row beside it must be
// measured; afterwards no RouDi of the run may be left, nor anything it made in /dev/shm or /tmp.
// Only one RouDi can run on a machine, so these tests take turns (a lock on the test binary) and
// skip when another one runs.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/bench_rows.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/scratch.hpp"

namespace {

using ipcx::test::child_process;
using ipcx::test::online_cpus;
using ipcx::test::expect_measured;
using ipcx::test::json;
using ipcx::test::note_of;
using ipcx::test::read_json;
using namespace std::chrono_literals;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::set<std::string> list_dir(const char* path) {
  std::set<std::string> names;
  if (DIR* d = ::opendir(path)) {
    while (dirent* e = ::readdir(d)) names.insert(e->d_name);
    ::closedir(d);
  }
  return names;
}

// RouDi's fixed names: its management segment and the data segment named after its group in
// /dev/shm, its socket and lock files in /tmp.
std::vector<std::string> roudi_objects() {
  std::vector<std::string> paths = {"/dev/shm/iceoryx_mgmt", "/tmp/roudi", "/tmp/roudi.lock",
                                    "/tmp/iox-unique-roudi.lock"};
  if (const group* g = ::getgrgid(::getegid()))
    paths.push_back(std::string("/dev/shm/") + g->gr_name);
  return paths;
}
std::set<std::string> existing(const std::vector<std::string>& paths) {
  std::set<std::string> found;
  struct stat st {};
  for (const auto& p : paths)
    if (::lstat(p.c_str(), &st) == 0) found.insert(p);
  return found;
}

// True while some RouDi runs: it holds an flock on its lock file.
bool roudi_running() {
  int fd = ::open("/tmp/iox-unique-roudi.lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return held;
}

// What a bench run with this pid may have left: the runtimes' sockets and lock files
// (/tmp/ipcx-bench-PID-N-i...), RouDi's private directory (/tmp/ipcx-bench-roudi-PID-...), and
// anything named with the run's tag in /dev/shm.
std::vector<std::string> bench_leftovers(pid_t pid) {
  return ipcx::test::named_leftovers({"ipcx-bench-" + std::to_string(pid) + "-",
                                      "ipcx-bench-roudi-" + std::to_string(pid) + "-"});
}

// iox-roudi processes started by the bench with this pid (its config path names the pid), alive
// or not yet reaped.
std::vector<pid_t> bench_roudis(pid_t pid) {
  std::vector<pid_t> found;
  std::string mark = "/tmp/ipcx-bench-roudi-" + std::to_string(pid) + "-";
  for (const auto& entry : list_dir("/proc")) {
    if (entry.empty() || !std::isdigit(static_cast<unsigned char>(entry[0]))) continue;
    std::string cmdline = read_text("/proc/" + entry + "/cmdline");
    if (cmdline.find("iox-roudi") != std::string::npos && cmdline.find(mark) != std::string::npos)
      found.push_back(static_cast<pid_t>(std::stol(entry)));
  }
  return found;
}

// The iceoryx peer a row belongs to (its own row, or the ipcx row paired with it), or "" for the
// rows every run has (the limits).
std::string peer_of(const json& r) {
  const std::string& impl = r.at("impl").string;
  std::string paired = r.has("paired_with") ? r.at("paired_with").string : "";
  std::string peer = impl == "ipcx" ? paired : impl;
  return peer.starts_with("iceoryx-") ? peer : "";
}

class BenchIceoryx : public ipcx::test::ipc_test {
 protected:
  void SetUp() override {
    // One test of this file at a time, across the processes ctest runs them in.
    turn_fd_ = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (turn_fd_ >= 0) ::flock(turn_fd_, LOCK_EX);
    roudi_before_ = existing(roudi_objects());
  }
  void TearDown() override {
    ::unlink(json_path_.c_str());
    if (pid_ > 0) {
      EXPECT_EQ(bench_roudis(pid_), std::vector<pid_t>{}) << "an iox-roudi outlived the bench";
      EXPECT_EQ(bench_leftovers(pid_), std::vector<std::string>{});
    }
    std::set<std::string> after = existing(roudi_objects());
    for (const auto& path : after)
      EXPECT_TRUE(roudi_before_.count(path)) << path << " is left behind";
    ipc_test::TearDown();
    if (turn_fd_ >= 0) ::close(turn_fd_);
  }

  // Runs `ipcx bench --only PEERS ARGS --json FILE`; returns the exit status, or nullopt when this
  // ipcx was built without iceoryx (the CLI then refuses the name).
  std::optional<int> run_bench(const std::string& only, std::vector<std::string> args) {
    args.insert(args.begin(), {"bench", "--only", only});
    args.push_back("--json");
    args.push_back(json_path_);
    auto child = child_process::program(ipcx::test::built_program("ipcx"), args);
    int status = child.wait_exit(60s);
    stdout_ = child.stdout_text();
    stderr_ = child.stderr_text();
    pid_ = child.pid();
    if (status == 2 && stderr_.find("iceoryx-") != std::string::npos &&
        stderr_.find(" not in") != std::string::npos)
      return std::nullopt;
    return status;
  }

  // The rows: the JSON is an array of rows, or an object with "rows".
  std::vector<json> rows() {
    auto doc = read_json(json_path_);
    EXPECT_TRUE(doc.has_value()) << "not valid JSON: " << json_path_;
    if (!doc) return {};
    if (doc->kind == json::type::object && doc->has("rows")) return doc->at("rows").array;
    EXPECT_EQ(doc->kind, json::type::array);
    return doc->array;
  }

  int turn_fd_ = -1;
  std::set<std::string> roudi_before_;
  std::string json_path_ = scratch_.path("bench.json");
  std::string stdout_;
  std::string stderr_;
  pid_t pid_ = -1;
};

TEST_F(BenchIceoryx, QuickRunMeasuresEveryIceoryxRowAndTheIpcxRingBesideIt) {
  if (roudi_running()) GTEST_SKIP() << "an iox-roudi is running already: the rows would be n/a";
  auto status = run_bench("iceoryx-poll,iceoryx-waitset",
                          {"--quick", "--reps", "1", "--sizes", "64,4096", "--duration", "0.05"});
  if (!status) GTEST_SKIP() << "iceoryx is not built into this ipcx";
  bool two_cpus = online_cpus() >= 2;
  std::set<std::string> seen;
  auto all = rows();
  for (const auto& r : all)
    if (note_of(r).find("another iox-roudi") != std::string::npos)
      GTEST_SKIP() << "an iox-roudi started meanwhile: " << note_of(r);
  EXPECT_EQ(*status, 0) << stdout_ << stderr_;
  for (const auto& r : all) {
    std::string peer = peer_of(r);
    if (peer.empty()) continue;
    std::string kind = r.at("kind").string, impl = r.at("impl").string;
    std::string placement = r.at("placement").string, mode = r.at("mode").string;
    auto size = static_cast<long>(r.at("size").number);
    std::string name =
        kind + " " + impl + " " + peer + " " + std::to_string(size) + " " + placement;
    EXPECT_TRUE(seen.insert(name).second) << "two rows named " << name;
    EXPECT_EQ(r.at("mechanism").string, "shm") << name;
    EXPECT_TRUE(size == 64 || size == 4096) << name;
    ASSERT_TRUE(peer == "iceoryx-poll" || peer == "iceoryx-waitset") << name;
    ASSERT_TRUE(impl == peer || impl == "ipcx") << name;
    bool poll = peer == "iceoryx-poll";
    if (impl == peer) {
      EXPECT_EQ(mode, poll ? "spin" : "blocking") << name;
    } else {
      ASSERT_EQ(impl, "ipcx") << name;
      EXPECT_EQ(mode, poll ? "spin" : kind == "latency" ? "blocking" : "adaptive") << name;
    }
    // Busy-polling on one core makes no sense: poll rows, and every throughput row, are
    // cross-core only.
    if (poll || kind == "throughput") {
      EXPECT_EQ(placement, "cross-core") << name;
    }
    if (placement == "cross-core" && !two_cpus) {
      EXPECT_EQ(r.at("status").string, "n/a") << name;
      continue;
    }
    expect_measured(r, name);
  }
  // poll: latency 2 sizes cross-core + throughput 2 sizes; waitset: latency 2 sizes x 2
  // placements + throughput 2 sizes; a peer row and an ipcx row each.
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_NE(stderr_.find("starting iceoryx-poll's daemon"), std::string::npos) << stderr_;
}

TEST_F(BenchIceoryx, ResponderThatCrashesFailsTheRowsAndRouDiStillStopsCleanly) {
  if (roudi_running()) GTEST_SKIP() << "an iox-roudi is running already: the rows would be n/a";
  if (online_cpus() < 2) GTEST_SKIP() << "cross-core cases need two CPUs";
  // The responder dies as iceoryx's first repetition starts, its runtime still registered with
  // RouDi, and the initiator, busy-polling for a reply, is killed. RouDi must drop both runtimes
  // before it is asked to stop (it aborts on a registered process that is gone).
  ::setenv("IPCX_BENCH_FAULT", "raw:exit", 1);
  auto status = run_bench("iceoryx-poll", {"--reps", "1", "--sizes", "64", "--round-trips", "20",
                                           "--duration", "0.02"});
  ::unsetenv("IPCX_BENCH_FAULT");
  if (!status) GTEST_SKIP() << "iceoryx is not built into this ipcx";
  EXPECT_EQ(*status, 1) << stdout_ << stderr_;
  int peer_rows = 0;
  for (const auto& r : rows()) {
    if (r.at("impl").string != "iceoryx-poll") continue;
    ++peer_rows;
    EXPECT_EQ(r.at("status").string, "error") << r.at("kind").string << ": " << note_of(r);
  }
  EXPECT_EQ(peer_rows, 2) << "64 B latency and throughput";
  EXPECT_EQ(stderr_.find("iox-roudi ended badly"), std::string::npos) << stderr_;
  EXPECT_EQ(stderr_.find("did not stop"), std::string::npos) << stderr_;
}

TEST_F(BenchIceoryx, RouDiAlreadyRunningMakesTheRowsNotAvailableWithThatReason) {
  if (roudi_running()) GTEST_SKIP() << "an iox-roudi is running already";
  if (::access("/usr/bin/iox-roudi", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/iox-roudi";
  auto roudi = child_process::program("/usr/bin/iox-roudi", {});
  bool up = false;
  for (auto until = std::chrono::steady_clock::now() + 5s;
       !up && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(10ms))
    up = roudi_running();
  std::optional<int> status;
  if (up)
    status = run_bench("iceoryx-poll", {"--reps", "1", "--sizes", "64", "--duration", "0.02"});
  // Our RouDi cleans up after SIGTERM; the harness's SIGKILL would leave its shared memory.
  roudi.kill(SIGTERM);
  EXPECT_EQ(roudi.wait_exit(5s), 0) << roudi.stdout_text();
  ASSERT_TRUE(up) << "iox-roudi did not start: " << roudi.stdout_text() << roudi.stderr_text();
  if (!status) GTEST_SKIP() << "iceoryx is not built into this ipcx";
  EXPECT_EQ(*status, 0) << stdout_ << stderr_;
  int peer_rows = 0;
  for (const auto& r : rows()) {
    if (peer_of(r).empty()) continue;
    if (r.at("impl").string == "iceoryx-poll") ++peer_rows;
    EXPECT_EQ(r.at("status").string, "n/a") << r.at("impl").string;
    EXPECT_NE(note_of(r).find("another iox-roudi is running"), std::string::npos) << note_of(r);
  }
  EXPECT_EQ(peer_rows, 2) << "64 B latency and throughput";
}

}  // namespace
