// The charts of `ipcx bench --plot`: write_plots over rows made by hand, drawn by the real gnuplot
// (a fake one where the test is about gnuplot failing or missing).
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "plot.hpp"
#include "support/scratch.hpp"

namespace {

using ipcx::bench::row;
using ipcx::bench::row_status;

row latency(const std::string& mechanism, const std::string& impl, std::size_t size,
            const std::string& placement, std::uint64_t p50_ns, std::uint64_t p99_ns,
            const std::string& mode = "default") {
  row r;
  r.mechanism = mechanism;
  r.impl = impl;
  r.mode = mode;
  r.size = size;
  r.placement = placement;
  r.rtt_p50_ns = p50_ns;
  r.rtt_p99_ns = p99_ns;
  return r;
}

row stream(const std::string& mechanism, const std::string& impl, const std::string& mode,
           std::size_t size, double msgs_per_s, double cpu_ns) {
  row r;
  r.kind = "throughput";
  r.mechanism = mechanism;
  r.impl = impl;
  r.mode = mode;
  r.size = size;
  r.placement = "cross-core";
  r.msgs_per_s = msgs_per_s;
  r.mb_per_s = msgs_per_s * static_cast<double>(size) / 1e6;
  r.cpu_ns_per_msg = cpu_ns;
  return r;
}

// A small run: pipe and the shm ring beside boost-mq (round trips in both placements), and
// one-way streams at four sizes through pipe, the ring and boost-mq.
std::vector<row> sample_rows() {
  std::vector<row> rows;
  for (std::size_t size : {64, 4096}) {
    rows.push_back(latency("pipe", "raw", size, "cross-core", 52'000, 90'000));
    rows.push_back(latency("pipe", "ipcx", size, "cross-core", 54'000, 95'000));
    rows.push_back(latency("pipe", "raw", size, "same-core", 3'200, 4'600));
    rows.push_back(latency("pipe", "ipcx", size, "same-core", 3'400, 5'100));
    rows.push_back(latency("shm", "ipcx", size, "cross-core", 450, 1'500, "spin"));
    rows.push_back(latency("shm", "boost-mq", size, "cross-core", 43'000, 80'000, "blocking"));
    rows.push_back(latency("shm", "ipcx", size, "cross-core", 56'000, 99'000, "blocking"));
    rows.push_back(latency("shm", "boost-mq", size, "same-core", 4'300, 8'000, "blocking"));
    rows.push_back(latency("shm", "ipcx", size, "same-core", 4'000, 6'600, "blocking"));
  }
  rows.push_back(latency("cacheline", "limit", 64, "cross-core", 320, 420, "spin"));
  for (std::size_t size : {std::size_t{64}, std::size_t{4096}, std::size_t{64} << 10,
                           std::size_t{1} << 20}) {
    double s = static_cast<double>(size);
    rows.push_back(stream("raw-ring", "limit", "spin", size, std::min(3.4e7, 7e9 / s), 50 + s / 8));
    rows.push_back(stream("shm", "ipcx", "spin", size, std::min(4.2e7, 6.5e9 / s), 45 + s / 8));
    rows.push_back(stream("shm", "boost-mq", "blocking", size, std::min(4.1e6, 4e9 / s), 400 + s));
    rows.push_back(stream("pipe", "raw", "default", size, std::min(2e6, 1.5e9 / s), 900 + s / 2));
    rows.push_back(stream("pipe", "ipcx", "default", size, std::min(1.9e6, 1.5e9 / s), 950 + s));
  }
  rows.push_back(latency("syscall", "limit", 0, "same-core", 120, 125));
  return rows;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Sets an environment variable for one test and puts the old value back.
class scoped_env {
 public:
  scoped_env(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class BenchPlot : public ::testing::Test {
 protected:
  BenchPlot() {
    ::mkdir(scratch_.path("charts").c_str(), 0755);
    ::mkdir(scratch_.path("tmp").c_str(), 0700);
  }

  std::string prefix() const { return scratch_.path("charts/run"); }
  std::string chart(const std::string& name, const char* ext) const {
    return prefix() + "-" + name + ext;
  }
  // A stand-in gnuplot in its own directory, to put first (or alone) in PATH.
  std::string fake_gnuplot(const std::string& script) const {
    std::string dir = scratch_.path("bin");
    ::mkdir(dir.c_str(), 0755);
    std::ofstream(dir + "/gnuplot") << "#!/bin/sh\n" << script;
    ::chmod((dir + "/gnuplot").c_str(), 0755);
    return dir;
  }

  ipcx::test::scratch scratch_;
  // write_plots's temporary file goes here, so a test sees whether one is left behind.
  scoped_env tmpdir_{"TMPDIR", scratch_.path("tmp")};
};

const char* const names[] = {"latency", "throughput", "cpu"};

TEST_F(BenchPlot, WritesEachChartAsPngAndSvgAndNoTemporaryFile) {
  std::string error;
  ASSERT_TRUE(ipcx::bench::write_plots(sample_rows(), prefix(), error)) << error;
  EXPECT_EQ(error, "");
  for (const char* name : names) {
    std::string png = read_file(chart(name, ".png"));
    EXPECT_TRUE(png.starts_with("\x89PNG\r\n\x1a\n")) << chart(name, ".png");
    EXPECT_GT(png.size(), 5u * 1024) << chart(name, ".png");
    std::string svg = read_file(chart(name, ".svg"));
    EXPECT_TRUE(svg.starts_with("<?xml")) << chart(name, ".svg");
    EXPECT_NE(svg.find("</svg>"), std::string::npos) << chart(name, ".svg");
  }
  EXPECT_EQ(entries(scratch_.path("charts")),
            (std::vector<std::string>{"run-cpu.png", "run-cpu.svg", "run-latency.png",
                                      "run-latency.svg", "run-throughput.png",
                                      "run-throughput.svg"}));
  EXPECT_TRUE(entries(scratch_.path("tmp")).empty());
}

TEST_F(BenchPlot, SvgsNameTheAxesTheCategoriesAndEveryImplementation) {
  std::string error;
  ASSERT_TRUE(ipcx::bench::write_plots(sample_rows(), prefix(), error)) << error;

  std::string latency = read_file(chart("latency", ".svg"));
  for (const char* text : {"round trip (µs)", "cross-core", "same-core", ">pipe 64 B<",
                           ">pipe 4 KiB<", ">shm spin 64 B<", ">shm blocking 4 KiB<",
                           ">cacheline 64 B<", ">syscall<", ">raw<", ">ipcx<", ">boost-mq<",
                           ">limit<"})
    EXPECT_NE(latency.find(text), std::string::npos) << "latency chart lacks " << text;

  std::string throughput = read_file(chart("throughput", ".svg"));
  for (const char* text : {"kernel mechanisms, cross-core (raw dashed, ipcx solid): messages/s",
                           "shared memory: the ipcx ring, the limits, the peer libraries",
                           "messages/s", "MB/s", "message size", ">64 B<", ">1 MiB<", ">pipe<",
                           ">raw<", ">ipcx<", ">ipcx shm spin<", ">limit: raw-ring<",
                           ">boost-mq<"})
    EXPECT_NE(throughput.find(text), std::string::npos) << "throughput chart lacks " << text;

  std::string cpu = read_file(chart("cpu", ".svg"));
  for (const char* text : {"CPU time per message (user + system)", "message size", ">64 KiB<",
                           ">pipe<", ">ipcx shm spin<", ">limit: raw-ring<", ">boost-mq<"})
    EXPECT_NE(cpu.find(text), std::string::npos) << "cpu chart lacks " << text;
}

TEST_F(BenchPlot, RowsNotOkOrWithoutTheChartsFieldAreLeftOut) {
  auto rows = sample_rows();
  row failed = latency("shm", "zmq-tcp", 64, "cross-core", 116'000, 190'000, "blocking");
  failed.status = row_status::failed;
  rows.push_back(failed);
  row absent = latency("udp", "raw", 64, "same-core", 5'700, 9'600);
  absent.status = row_status::not_available;
  rows.push_back(absent);
  row no_p50 = latency("shm", "iceoryx-poll", 64, "cross-core", 0, 0, "spin");
  no_p50.rtt_p50_ns.reset();
  rows.push_back(no_p50);
  row failed_stream = stream("shm", "zmq-ipc", "blocking", 4096, 1e6, 2000);
  failed_stream.status = row_status::failed;
  rows.push_back(failed_stream);
  row no_rate = stream("shm", "nng-ipc", "blocking", 4096, 1e4, 20'000);
  no_rate.msgs_per_s.reset();
  no_rate.cpu_ns_per_msg.reset();
  rows.push_back(no_rate);

  std::string error;
  ASSERT_TRUE(ipcx::bench::write_plots(rows, prefix(), error)) << error;
  for (const char* name : names) {
    std::string svg = read_file(chart(name, ".svg"));
    ASSERT_NE(svg.find(">boost-mq<"), std::string::npos) << name;  // the others are drawn
    for (const char* text : {"zmq-tcp", "udp", "iceoryx-poll", "zmq-ipc", "nng-ipc"})
      EXPECT_EQ(svg.find(text), std::string::npos) << "the " << name << " chart shows " << text;
  }
}

TEST_F(BenchPlot, PrefixInMissingDirectoryFailsNamingThePath) {
  std::string prefix = scratch_.path("absent/run");
  std::string error;
  EXPECT_FALSE(ipcx::bench::write_plots(sample_rows(), prefix, error));
  EXPECT_EQ(error, "open(\"" + prefix + "-latency.png\"): no such file or directory");
  EXPECT_FALSE(exists(scratch_.path("absent")));
  EXPECT_TRUE(entries(scratch_.path("tmp")).empty());
}

TEST_F(BenchPlot, MissingGnuplotFailsWithTheInstallHint) {
  std::string empty = scratch_.path("empty-bin");
  ::mkdir(empty.c_str(), 0755);
  scoped_env path("PATH", empty);
  std::string error;
  EXPECT_FALSE(ipcx::bench::write_plots(sample_rows(), prefix(), error));
  EXPECT_EQ(error, "gnuplot not found; apt-get install gnuplot-nox");
  EXPECT_TRUE(entries(scratch_.path("charts")).empty());
}

TEST_F(BenchPlot, GnuplotErrorBecomesTheErrorAndNoChartIsLeft) {
  // The fake fails the way gnuplot does (a message, exit status 1), once it has seen the script on
  // its stdin; the message tells which happened.
  std::string bin = fake_gnuplot(
      "seen=no\n"
      "while IFS= read -r line; do\n"  // shell builtins only: PATH holds just the fake
      "  case \"$line\" in *'set terminal svg'*) seen=yes ;; esac\n"
      "done < \"$2\"\n"
      "if [ $seen = yes ]; then\n"
      "  printf '\\nset foo\\n    ^\\n\"/dev/stdin\" line 7: unrecognized option\\n\\n' >&2\n"
      "else\n"
      "  echo 'no script on stdin' >&2\n"
      "fi\n"
      "exit 1\n");
  scoped_env path("PATH", bin);
  std::string error;
  EXPECT_FALSE(ipcx::bench::write_plots(sample_rows(), prefix(), error));
  EXPECT_EQ(error, "gnuplot: set foo | \"/dev/stdin\" line 7: unrecognized option");
  EXPECT_TRUE(entries(scratch_.path("charts")).empty());
  EXPECT_TRUE(entries(scratch_.path("tmp")).empty());
}

TEST_F(BenchPlot, GnuplotKilledBySignalIsAnError) {
  std::string bin = fake_gnuplot("kill -9 $$\n");
  scoped_env path("PATH", bin);
  std::string error;
  EXPECT_FALSE(ipcx::bench::write_plots(sample_rows(), prefix(), error));
  EXPECT_EQ(error, "gnuplot: killed by signal 9");
  EXPECT_TRUE(entries(scratch_.path("charts")).empty());
}

TEST_F(BenchPlot, RunWithoutRowsStillWritesChartsThatSaySo) {
  // An empty chart rather than none: a chart of an earlier run must not pass for this one's.
  std::string error;
  ASSERT_TRUE(ipcx::bench::write_plots({}, prefix(), error)) << error;
  EXPECT_NE(read_file(chart("latency", ".svg")).find("no latency rows"), std::string::npos);
  EXPECT_NE(read_file(chart("throughput", ".svg")).find("no throughput rows"), std::string::npos);
  EXPECT_NE(read_file(chart("cpu", ".svg")).find("no throughput rows"), std::string::npos);
  for (const char* name : names)
    EXPECT_TRUE(read_file(chart(name, ".png")).starts_with("\x89PNG")) << name;
}

TEST_F(BenchPlot, QuotesInNamesReachTheChartIntact) {
  // Names go into the script as gnuplot strings: a quote must not end one early.
  auto rows = sample_rows();
  rows.push_back(latency("shm", "peer's \"lib\"", 64, "cross-core", 9'000, 12'000, "blocking"));
  std::string error;
  ASSERT_TRUE(ipcx::bench::write_plots(rows, prefix(), error)) << error;
  std::string svg = read_file(chart("latency", ".svg"));
  EXPECT_NE(svg.find(">peer's \"lib\"<"), std::string::npos);
}

}  // namespace
