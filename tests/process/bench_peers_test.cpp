// `ipcx bench` over the peer libraries (Boost.Interprocess message_queue, ZeroMQ over ipc:// and
// tcp://, nng over ipc://): the built CLI, run for real. Each peer's rows and the ipcx rows
// measured beside it must all be measured (the peer lossless, its sequence numbers checked by the
// session), and nothing the peer named may outlive the run, even when a process of the case
// crashes. Numbers are checked for sanity only: the machine is shared and noisy.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
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


// What a bench run with this pid may have left: Boost's queues in /dev/shm, the zmq and nng
// socket files in /tmp.
std::vector<std::string> bench_leftovers(pid_t pid) {
  return ipcx::test::named_leftovers({"ipcx-bench-" + std::to_string(pid) + "-"});
}


// Parameter: the peer's name, as --only takes it and as its rows' impl says.
class BenchPeer : public ipcx::test::ipc_test, public ::testing::WithParamInterface<const char*> {
 protected:
  void TearDown() override {
    ::unlink(json_path_.c_str());
    ipc_test::TearDown();
  }

  // Runs `ipcx bench --only PEER ARGS --json FILE`; returns the exit status, or nullopt when this
  // ipcx was built without the peer's library (the CLI then refuses the name).
  std::optional<int> run_bench(std::vector<std::string> args) {
    args.insert(args.begin(), {"bench", "--only", GetParam()});
    args.push_back("--json");
    args.push_back(json_path_);
    auto child = child_process::program(ipcx::test::built_program("ipcx"), args);
    int status = child.wait_exit(30s);
    stdout_ = child.stdout_text();
    stderr_ = child.stderr_text();
    pid_ = child.pid();
    if (status == 2 && stderr_.find(std::string(GetParam()) + " not in") != std::string::npos)
      return std::nullopt;
    return status;
  }

  // The document's rows; `version` gets the peer's entry in its "peers" object.
  std::vector<json> rows(std::string* version = nullptr) {
    auto doc = read_json(json_path_);
    EXPECT_TRUE(doc.has_value()) << "not valid JSON: " << json_path_;
    if (!doc || doc->kind != json::type::object || !doc->has("rows")) {
      ADD_FAILURE() << "no \"rows\" in " << json_path_;
      return {};
    }
    if (version != nullptr && doc->has("peers") && doc->at("peers").has(GetParam()))
      *version = doc->at("peers").at(GetParam()).string;
    return doc->at("rows").array;
  }

  std::string json_path_ = scratch_.path("bench.json");
  std::string stdout_;
  std::string stderr_;
  pid_t pid_ = -1;
};

TEST_P(BenchPeer, QuickRunMeasuresEveryRowOfThePeerAndOfTheIpcxRingBesideIt) {
  const std::string peer = GetParam();
  auto status = run_bench({"--quick", "--reps", "1", "--sizes", "64,4096", "--duration", "0.05"});
  if (!status) GTEST_SKIP() << peer << " is not built into this ipcx";
  EXPECT_EQ(*status, 0) << stdout_ << stderr_;
  bool two_cpus = online_cpus() >= 2;
  std::set<std::string> seen;
  std::string version;
  for (const auto& r : rows(&version)) {
    std::string kind = r.at("kind").string, impl = r.at("impl").string;
    if (impl == "limit") continue;  // the machine's (the null system call), in every run
    std::string placement = r.at("placement").string;
    auto size = static_cast<long>(r.at("size").number);
    std::string name = kind + " " + impl + " " + std::to_string(size) + " " + placement;
    EXPECT_TRUE(seen.insert(name).second) << "two rows named " << name;
    EXPECT_EQ(r.at("mechanism").string, "shm") << name;
    EXPECT_TRUE(size == 64 || size == 4096) << name;
    ASSERT_TRUE(impl == peer || impl == "ipcx") << name;
    if (impl == peer) {
      EXPECT_EQ(r.at("mode").string, "blocking") << name;
    } else {
      EXPECT_EQ(r.at("paired_with").string, peer) << name;
      EXPECT_EQ(r.at("mode").string, kind == "latency" ? "blocking" : "adaptive") << name;
    }
    // Streams are cross-core only.
    if (kind == "throughput") {
      EXPECT_EQ(placement, "cross-core") << name;
    }
    if (placement == "cross-core" && !two_cpus) {
      EXPECT_EQ(r.at("status").string, "n/a") << name;
      continue;
    }
    expect_measured(r, name);
  }
  // "1.74", "4.3.4", "1.5.2": digits and dots.
  EXPECT_FALSE(version.empty()) << "no version of " << peer << " under \"peers\"";
  EXPECT_EQ(version.find_first_not_of("0123456789."), std::string::npos) << version;
  EXPECT_EQ(seen.size(), 12u) << "latency: 2 sizes x 2 placements, throughput: 2 sizes "
                                 "cross-core; a peer row and an ipcx row each";
  EXPECT_EQ(bench_leftovers(pid_), std::vector<std::string>{});
}

TEST_P(BenchPeer, ResponderThatCrashesFailsThePeerRowAndLeavesNothingBehind) {
  const std::string peer = GetParam();
  // The responder dies as the peer's first repetition starts: the initiator is then blocked in
  // the peer's send or receive and is killed, so neither side closes or removes anything itself.
  ::setenv("IPCX_BENCH_FAULT", "raw:exit", 1);
  auto status = run_bench({"--placement", "cross-core", "--reps", "1", "--sizes", "64",
                           "--round-trips", "20", "--duration", "0.02"});
  ::unsetenv("IPCX_BENCH_FAULT");
  if (!status) GTEST_SKIP() << peer << " is not built into this ipcx";
  if (online_cpus() < 2) GTEST_SKIP() << "cross-core cases need two CPUs";
  EXPECT_EQ(*status, 1) << stdout_ << stderr_;
  int peer_rows = 0;
  for (const auto& r : rows()) {
    if (r.at("impl").string != peer) continue;
    ++peer_rows;
    EXPECT_EQ(r.at("status").string, "error") << r.at("kind").string << ": " << note_of(r);
  }
  EXPECT_EQ(peer_rows, 2) << "64 B latency and throughput, cross-core";
  EXPECT_EQ(bench_leftovers(pid_), std::vector<std::string>{});
}

INSTANTIATE_TEST_SUITE_P(Peers, BenchPeer,
                         ::testing::Values("boost-mq", "zmq-ipc", "zmq-tcp", "nng-ipc"),
                         [](const ::testing::TestParamInfo<const char*>& peer) {
                           std::string name = peer.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
