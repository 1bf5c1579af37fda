// `ipcx bench`: the built CLI, run for real over a few mechanisms. Numbers are checked for sanity
// (ordered percentiles, samples taken), never for speed: the test machine is shared and noisy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
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
using ipcx::test::json;
using ipcx::test::note_of;
using ipcx::test::read_json;
using namespace std::chrono_literals;

// Names a bench run with this pid may have left behind.
std::vector<std::string> bench_leftovers(pid_t pid) {
  return ipcx::test::named_leftovers({"ipcx-bench-" + std::to_string(pid) + "-"});
}

class BenchCommand : public ipcx::test::ipc_test {
 protected:
  void TearDown() override {
    ::unlink(json_path_.c_str());
    ipc_test::TearDown();
  }

  // Runs `ipcx bench ARGS --json FILE`; returns the exit status.
  int run_bench(std::vector<std::string> args, std::chrono::milliseconds limit = 90s) {
    args.insert(args.begin(), "bench");
    args.push_back("--json");
    args.push_back(json_path_);
    auto child = child_process::program(ipcx::test::built_program("ipcx"), args);
    int status = child.wait_exit(limit);
    stdout_ = child.stdout_text();
    stderr_ = child.stderr_text();
    pid_ = child.pid();
    return status;
  }

  // The rows of the JSON file of `kind` ("latency", "throughput", or "" for both; the machine's
  // limit rows only `with_limits`), each checked for the keys every row has.
  std::vector<json> rows(const std::string& kind = "latency", bool with_limits = false) {
    auto doc = read_json(json_path_);
    EXPECT_TRUE(doc.has_value()) << "not valid JSON: " << json_path_;
    if (!doc) return {};
    EXPECT_EQ(doc->kind, json::type::object);
    if (doc->kind != json::type::object || !doc->has("rows") || !doc->has("machine")) {
      ADD_FAILURE() << "no \"rows\" or \"machine\" in " << json_path_;
      return {};
    }
    for (const char* key : {"cpu_model", "cpus_online", "kernel", "clocksource"})
      EXPECT_TRUE(doc->at("machine").has(key)) << "machine without \"" << key << "\"";
    EXPECT_TRUE(doc->has("peers"));
    const json& rows = doc->at("rows");
    for (const auto& r : rows.array) {
      for (const char* key : {"kind", "mode", "mechanism", "impl", "size", "placement", "status",
                              "rtt_p50_ns", "rtt_p99_ns", "rtt_p999_ns", "rtt_max_ns", "samples"})
        EXPECT_TRUE(r.has(key)) << "a row without \"" << key << "\"";
    }
    std::vector<json> out;
    for (const auto& r : rows.array)
      if ((with_limits || r.at("impl").string != "limit") &&
          (kind.empty() || r.at("kind").string == kind))
        out.push_back(r);
    return out;
  }

  std::string json_path_ = scratch_.path("bench.json");
  std::string stdout_;
  std::string stderr_;
  pid_t pid_ = -1;
};

TEST_F(BenchCommand, QuickRunOverPipeAndMqWritesSaneRowsForEveryCase) {
  ASSERT_EQ(run_bench({"--quick", "--only", "pipe,mq", "--sizes", "64,4K", "--duration", "0.02"}),
            0)
      << stdout_ << stderr_;
  std::set<std::string> seen;
  for (const auto& r : rows()) {
    std::string mechanism = r.at("mechanism").string;
    std::string placement = r.at("placement").string;
    std::string impl = r.at("impl").string;
    auto size = static_cast<long>(r.at("size").number);
    std::string name = mechanism + " " + impl + " " + std::to_string(size) + " " + placement;
    seen.insert(name);
    EXPECT_EQ(r.at("kind").string, "latency") << name;
    EXPECT_EQ(r.at("mode").string, "default") << name;
    EXPECT_TRUE(r.at("sched").string == "fifo" || r.at("sched").string == "other") << name;
    EXPECT_TRUE(mechanism == "pipe" || mechanism == "mq") << name;
    EXPECT_TRUE(impl == "raw" || impl == "ipcx") << name;
    EXPECT_TRUE(size == 64 || size == 4096) << name;
    EXPECT_TRUE(placement == "same-core" || placement == "cross-core") << name;
    // Every row is measured: this host takes 4 KiB POSIX queue messages, and cross-core needs
    // two CPUs.
    if (placement == "cross-core" && online_cpus() < 2) {
      EXPECT_EQ(r.at("status").string, "n/a") << name;
      continue;
    }
    ASSERT_EQ(r.at("status").string, "ok")
        << name << ": " << note_of(r);
    double p50 = r.at("rtt_p50_ns").number, p99 = r.at("rtt_p99_ns").number,
           p999 = r.at("rtt_p999_ns").number, max = r.at("rtt_max_ns").number;
    EXPECT_GT(p50, 0) << name;
    EXPECT_LE(p50, p99) << name;
    EXPECT_LE(p99, p999) << name;
    EXPECT_LE(p999, max) << name;
    EXPECT_GT(r.at("samples").number, 0) << name;
    if (impl == "ipcx") {
      EXPECT_GT(r.at("ratio_p50").number, 0) << name;
    }
  }
  EXPECT_EQ(seen.size(), 16u) << "2 mechanisms x 2 sizes x 2 placements x 2 implementations";
  // One-way streams of the same sizes, cross-core in --quick: rates, CPU, RSS, the paired ratio.
  std::set<std::string> streamed;
  for (const auto& r : rows("throughput")) {
    std::string name = r.at("mechanism").string + " " + r.at("impl").string + " " +
                       std::to_string(static_cast<long>(r.at("size").number));
    streamed.insert(name);
    EXPECT_EQ(r.at("placement").string, "cross-core") << name;
    if (online_cpus() < 2) continue;
    ASSERT_EQ(r.at("status").string, "ok")
        << name << ": " << note_of(r);
    EXPECT_GT(r.at("msgs_per_s").number, 0) << name;
    EXPECT_GT(r.at("mb_per_s").number, 0) << name;
    EXPECT_GT(r.at("cpu_ns_per_msg").number, 0) << name;
    EXPECT_GT(r.at("peak_rss_kib").number, 0) << name;
    if (r.at("impl").string == "ipcx") {
      EXPECT_GT(r.at("ratio_msgs").number, 0) << name;
    }
  }
  EXPECT_EQ(streamed.size(), 8u) << "2 mechanisms x 2 sizes x 2 implementations";
  EXPECT_NE(stdout_.find("ipcx/raw"), std::string::npos) << stdout_;
  EXPECT_NE(stdout_.find("mq               4096 B same-core"), std::string::npos) << stdout_;
  EXPECT_NE(stderr_.find("[12/12] mq throughput 4096 B cross-core"), std::string::npos) << stderr_;
  EXPECT_EQ(bench_leftovers(pid_), std::vector<std::string>{});
}

TEST_F(BenchCommand, RepsAndRoundTripsSetTheSamplesOfEveryRow) {
  ASSERT_EQ(run_bench({"--only", "mq", "--placement", "same-core", "--reps", "2", "--round-trips",
                       "20", "--sizes", "64,4096", "--duration", "0.02"}),
            0)
      << stdout_ << stderr_;
  auto all = rows();
  EXPECT_EQ(all.size(), 4u) << "mq: 2 sizes x 2 implementations, same-core only";
  for (const auto& r : all) {
    EXPECT_EQ(r.at("placement").string, "same-core");
    EXPECT_EQ(r.at("status").string, "ok");
    EXPECT_EQ(r.at("samples").number, 40);
    EXPECT_EQ(r.at("reps").number, 2);
  }
}

TEST_F(BenchCommand, ResponderThatDiesFailsItsRowAndTheRunButNotTheOtherImplementation) {
  ::setenv("IPCX_BENCH_FAULT", "ipcx:exit", 1);
  int status = run_bench({"--only", "pipe", "--placement", "same-core", "--reps", "1",
                          "--round-trips", "20", "--sizes", "64,4096", "--duration", "0.02"},
                         30s);
  ::unsetenv("IPCX_BENCH_FAULT");
  EXPECT_EQ(status, 1) << stdout_ << stderr_;
  for (const auto& r : rows("")) {
    std::string size =
        r.at("kind").string + " " + std::to_string(static_cast<long>(r.at("size").number));
    if (r.at("impl").string == "raw") {
      EXPECT_EQ(r.at("status").string, "ok") << size;
    } else {
      EXPECT_EQ(r.at("status").string, "error") << size;
      // The initiator's next call sees the responder gone: its write, or its read.
      const std::string& note = r.at("note").string;
      EXPECT_TRUE(note.find("end of stream") != std::string::npos ||
                  note.find("broken pipe") != std::string::npos)
          << note;
    }
  }
}

TEST_F(BenchCommand, ResponderThatHangsIsKilledAfterTheRepetitionLimit) {
  ::setenv("IPCX_BENCH_FAULT", "ipcx:hang", 1);
  ::setenv("IPCX_BENCH_REP_LIMIT_MS", "200", 1);
  auto started = std::chrono::steady_clock::now();
  int status = run_bench({"--only", "mq", "--placement", "same-core", "--reps", "1",
                          "--round-trips", "20", "--sizes", "64", "--duration", "0.02"},
                         30s);
  auto took = std::chrono::steady_clock::now() - started;
  ::unsetenv("IPCX_BENCH_FAULT");
  ::unsetenv("IPCX_BENCH_REP_LIMIT_MS");
  EXPECT_EQ(status, 1) << stdout_ << stderr_;
  EXPECT_LT(took, 10s);
  for (const auto& r : rows("")) {
    if (r.at("impl").string != "ipcx") continue;
    EXPECT_EQ(r.at("status").string, "error");
    EXPECT_NE(r.at("note").string.find("killed"), std::string::npos) << r.at("note").string;
  }
  EXPECT_EQ(bench_leftovers(pid_), std::vector<std::string>{});
}

TEST_F(BenchCommand, WrongSequenceNumberFailsTheRow) {
  ::setenv("IPCX_BENCH_FAULT", "raw:bad-seq", 1);
  int status = run_bench({"--only", "sysv-mq", "--placement", "same-core", "--reps", "1",
                          "--round-trips", "20", "--sizes", "64", "--duration", "0.02"},
                         30s);
  ::unsetenv("IPCX_BENCH_FAULT");
  EXPECT_EQ(status, 1) << stdout_ << stderr_;
  for (const auto& r : rows("")) {
    if (r.at("impl").string != "raw") continue;
    EXPECT_EQ(r.at("status").string, "error");
    EXPECT_NE(r.at("note").string.find("sequence"), std::string::npos) << r.at("note").string;
  }
}

TEST_F(BenchCommand, SharedMemoryRowsCarryKindModeAndTheirFieldsBesideTheLimits) {
  // Short repetitions: the keys and the set of rows matter here, not the numbers.
  ASSERT_EQ(run_bench({"--quick", "--only", "shm", "--reps", "1", "--round-trips", "200", "--sizes",
                       "64,4096", "--duration", "0.02"}),
            0)
      << stdout_ << stderr_;
  bool two_cpus = online_cpus() >= 2;
  std::set<std::string> seen;
  for (const auto& r : rows("", true)) {
    std::string kind = r.at("kind").string, mode = r.at("mode").string;
    std::string mechanism = r.at("mechanism").string, impl = r.at("impl").string;
    std::string placement = r.at("placement").string;
    auto size = static_cast<long>(r.at("size").number);
    std::string name = kind + " " + mechanism + " " + impl + " " + mode + " " +
                       std::to_string(size) + " " + placement;
    EXPECT_TRUE(seen.insert(name).second) << "two rows named " << name;
    EXPECT_TRUE(kind == "latency" || kind == "throughput") << name;
    EXPECT_TRUE(impl == "ipcx" || impl == "raw" || impl == "limit") << name;
    if (impl == "ipcx" || impl == "raw") {
      EXPECT_EQ(mechanism, "shm") << name;
    }
    if (impl == "ipcx") {
      EXPECT_TRUE(mode == "spin" || mode == "blocking" || mode == "adaptive") << name;
    }
    if (impl == "raw") {
      EXPECT_EQ(mode, "blocking") << name << ": the raw futex";
    }
    if (impl == "limit") {
      EXPECT_TRUE(mechanism == "cacheline" || mechanism == "raw-ring" || mechanism == "memcpy" ||
                  mechanism == "syscall")
          << name;
      if (mechanism == "syscall") continue;  // one call, timed in slices: its own test below
    }
    if (mode == "spin" || mode == "adaptive") {
      EXPECT_EQ(placement, "cross-core") << name;
    }
    bool measured = two_cpus || placement == "same-core";
    if (!measured) {
      EXPECT_EQ(r.at("status").string, "n/a") << name;
      continue;
    }
    ASSERT_EQ(r.at("status").string, "ok")
        << name << ": " << note_of(r);
    if (kind == "latency") {
      EXPECT_GT(r.at("rtt_p50_ns").number, 0) << name;
      EXPECT_LE(r.at("rtt_p50_ns").number, r.at("rtt_p99_ns").number) << name;
      EXPECT_EQ(r.at("samples").number, 200) << name;
    } else {
      for (const char* key : {"msgs_per_s", "mb_per_s", "cpu_ns_per_msg"}) {
        ASSERT_TRUE(r.has(key)) << name << " has no " << key;
        EXPECT_GT(r.at(key).number, 0) << name << " " << key;
      }
      EXPECT_NEAR(r.at("mb_per_s").number,
                  r.at("msgs_per_s").number * static_cast<double>(size) / 1e6,
                  r.at("mb_per_s").number * 0.01)
          << name;
      EXPECT_EQ(r.at("rtt_p50_ns").kind, json::type::null) << name;
      if (mechanism != "memcpy") {
        EXPECT_GT(r.at("cpu_producer_ns_per_msg").number, 0) << name;
        EXPECT_GT(r.at("cpu_consumer_ns_per_msg").number, 0) << name;
      }
    }
    if (impl == "ipcx" && r.has("paired_with")) {
      EXPECT_TRUE(r.has(kind == "latency" ? "ratio_p50" : "ratio_msgs")) << name;
    }
  }
  for (const char* expected :
       {"latency cacheline limit spin 64 cross-core", "latency raw-ring limit spin 64 cross-core",
        "latency shm raw blocking 64 same-core", "latency shm ipcx spin 64 cross-core",
        "latency shm ipcx adaptive 4096 cross-core", "latency shm ipcx blocking 4096 same-core",
        "throughput raw-ring limit spin 4096 cross-core",
        "throughput shm ipcx blocking 4096 cross-core", "latency syscall limit default 0 same-core",
        "throughput memcpy limit default 65536 same-core",
        "throughput memcpy limit default 67108864 same-core"})
    EXPECT_EQ(seen.count(expected), 1u) << expected;
  EXPECT_EQ(seen.size(), 26u) << "latency: 2 sizes x (4 ipcx + 2 raw futex) + cacheline + 2 "
                                 "raw-ring + the null system call = 16; throughput: 2 sizes x (3 "
                                 "ipcx + raw-ring) + 2 memcpy = 10";
  EXPECT_NE(stdout_.find("shared memory: round-trip latency"), std::string::npos) << stdout_;
  EXPECT_NE(stdout_.find("one-way throughput"), std::string::npos) << stdout_;
}

// A one-way stream outruns its receiver: a full signal queue must let the receiver run even when
// both share one CPU under SCHED_FIFO (the raw sender once spun there forever).
TEST_F(BenchCommand, SignalStreamOnOneCoreCompletes) {
  ASSERT_EQ(run_bench({"--only", "signal", "--placement", "same-core", "--reps", "1",
                       "--round-trips", "20", "--duration", "0.05"},
                      30s),
            0)
      << stdout_ << stderr_;
  auto streams = rows("throughput");
  ASSERT_EQ(streams.size(), 2u);
  for (const auto& r : streams) {
    EXPECT_EQ(r.at("status").string, "ok") << note_of(r);
    EXPECT_EQ(r.at("size").number, 7);
    EXPECT_GT(r.at("msgs_per_s").number, 0);
  }
}

TEST_F(BenchCommand, FramingFloorMeasuresEveryVariantAndRemovesItsFiles) {
  auto child = child_process::program(ipcx::test::built_program("framing_floor"), {"64", "2"});
  ASSERT_EQ(child.wait_exit(60s), 0) << child.stderr_text();
  std::string out = child.stdout_text();
  // unix and tcp: raw, raw+4, staged, iovec; file: raw, raw+8; each "... x raw RATIO".
  int lines = 0;
  for (std::size_t at = out.find("x raw "); at != std::string::npos;
       at = out.find("x raw ", at + 1)) {
    ++lines;
    EXPECT_GT(std::stod(out.substr(at + 6)), 0.0) << out;
  }
  EXPECT_EQ(lines, 10) << out;
  for (const char* variant :
       {"unix  raw+4", "unix  staged", "unix  iovec", "tcp   iovec", "file  raw+8"})
    EXPECT_NE(out.find(variant), std::string::npos) << variant << " missing in\n" << out;
  EXPECT_EQ(ipcx::test::named_leftovers({"framing-floor-" + std::to_string(child.pid()) + "-"}),
            std::vector<std::string>{});
}

TEST_F(BenchCommand, UnknownMechanismIsAUsageError) {
  EXPECT_EQ(run_bench({"--only", "pipe,carrier-pigeon"}, 10s), 2) << stderr_;
  EXPECT_NE(stderr_.find("carrier-pigeon"), std::string::npos) << stderr_;
}

}  // namespace
