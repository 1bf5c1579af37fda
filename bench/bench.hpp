// The ipcx benchmark: every mechanism, as ipcx and as the raw system calls, in one run.
//
// For each mechanism, message size and placement (both processes on one core, or one on each of
// two cores) two processes play ping-pong, once through ipcx channels and once through the plain
// system calls a C programmer would write (write/read, mq_send/mq_receive, msgsnd/msgrcv...). The
// two implementations run in alternating repetitions in the same pair of processes, so drift in
// the machine's load affects both alike; the table reports the median over repetitions of each
// repetition's percentiles, and the ratio of the ipcx and raw p50s. docs/bench.md has the method.
//
//   ipcx::bench::options opts{.quick = true, .only = {"pipe", "mq"}};
//   return ipcx::bench::run(opts);
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ipcx::bench {

struct options {
  bool quick = false;
  std::string json_path;          // empty: no JSON
  std::vector<std::string> only;  // mechanism names ("pipe", "sysv-mq"...); empty: all
  std::string placement;          // "same-core", "cross-core"; empty: both
  std::string sched = "auto";     // "fifo", "other", or "auto" (fifo when permitted)
  int reps = 0;                   // repetitions per implementation; 0: the mode's default
  int round_trips = 0;            // timed round trips per repetition; 0: the mode's default
  std::vector<std::size_t> sizes;  // message sizes; empty: 64 B and 4 KiB (latency), and
                                   // 64 B, 4 KiB, 64 KiB and 1 MiB (throughput)
  double duration_s = 0;          // seconds each throughput repetition streams; 0: the default
  std::string plot_prefix;        // empty: no charts; else PREFIX-*.png and PREFIX-*.svg
};

// The mechanism names `only` accepts, in table order.
const std::vector<std::string>& mechanism_names();

// Runs the benchmark, prints the table on stdout and progress on stderr; returns the exit code
// (0, or 1 when any row failed).
int run(const options& opts);

}  // namespace ipcx::bench
