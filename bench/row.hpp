// One line of benchmark output, and the statistics that fill it.
//
// A row is one implementation (ipcx or raw) of one mechanism at one size and placement. The model
// is open: latency rows fill the rtt_* fields; a later kind (shared-memory throughput) fills
// others. Every numeric field is optional and is written to JSON only when set (null for the
// required latency keys), so readers can tell "not measured" from zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ipcx::bench {

enum class row_status { ok, not_available, failed };

struct row {
  std::string kind = "latency";  // "latency" (round trips) or "throughput" (one-way stream)
  // The waiting strategy of shared-memory rows ("spin", "blocking", "adaptive"), "default" for
  // mechanisms with one.
  std::string mode = "default";
  std::string mechanism;         // "pipe", "sysv-mq", "shm"; limits: "cacheline", "raw-ring"...
  std::string impl;              // "ipcx", "raw", or "limit" (the machine's limit, no ipcx)
  std::size_t size = 0;          // message bytes
  std::string placement;         // "cross-core" or "same-core"
  std::string sched;             // the pair's scheduling policy: "fifo" or "other"
  row_status status = row_status::ok;
  std::string note;              // why n/a, or the error

  std::optional<std::uint64_t> rtt_p50_ns;
  std::optional<std::uint64_t> rtt_p99_ns;
  std::optional<std::uint64_t> rtt_p999_ns;
  std::optional<std::uint64_t> rtt_max_ns;
  std::uint64_t samples = 0;                  // timed round trips over all repetitions
  std::optional<int> reps;                    // repetitions the medians are taken over
  std::optional<std::uint64_t> rep_p50_min_ns;  // spread of the per-repetition p50s
  std::optional<std::uint64_t> rep_p50_max_ns;
  std::optional<double> ratio_p50;  // ipcx rows: median of paired per-repetition ipcx/raw p50s
  // ipcx shm rows: the mechanism of the row measured in alternation with this one (what
  // ratio_p50, or ratio_msgs for throughput, divides by), e.g. "cacheline".
  std::string paired_with;

  // Throughput rows: medians over repetitions.
  std::optional<double> msgs_per_s;
  std::optional<double> mb_per_s;  // 10^6 bytes per second of payload
  // CPU time (getrusage, user + system) per message: both processes summed, and each.
  std::optional<double> cpu_ns_per_msg;
  std::optional<double> cpu_producer_ns_per_msg;
  std::optional<double> cpu_consumer_ns_per_msg;
  std::optional<double> ratio_msgs;  // ipcx rows: median of paired ipcx/limit msgs_per_s

  // The larger of the two processes' peak RSS (VmHWM) during this implementation's repetitions.
  // It counts all the process holds then: the benchmark itself, libc, and the pages of the other
  // implementation of the pair that are still resident.
  std::optional<std::uint64_t> peak_rss_kib;
  // The hypervisor's steal time over the case, as a share of both CPUs; `noisy` says why a row
  // should not be trusted (empty when it should).
  std::optional<double> steal_pct;
  std::string noisy;
};

// One repetition of a throughput case.
struct stream_stats {
  std::uint64_t messages = 0;
  std::uint64_t elapsed_ns = 0;  // from the producer's start to the consumer's last message
  std::uint64_t producer_cpu_ns = 0;
  std::uint64_t consumer_cpu_ns = 0;
};

// Percentiles of one repetition.
struct rep_stats {
  std::uint64_t p50 = 0;
  std::uint64_t p99 = 0;
  std::uint64_t p999 = 0;
  std::uint64_t max = 0;
  std::uint64_t samples = 0;
};

// Sorts `samples` in place and takes nearest-rank percentiles (the smallest sample with at least
// p of all samples at or below it). `samples` must not be empty.
rep_stats summarize(std::span<std::uint64_t> samples);

// Fills the rtt_* fields of `out` from the repetitions: the median of each percentile over
// repetitions, the largest max, the total sample count.
void aggregate(std::span<const rep_stats> reps, row& out);
// Fills the throughput fields of `out` (message size `size`) from the repetitions: medians.
void aggregate_stream(std::span<const stream_stats> reps, std::size_t size, row& out);

// The table on stdout: one line per (mechanism, size, placement), raw and ipcx side by side.
void print_table(const std::vector<row>& rows, std::FILE* out);
// What the JSON says about the run besides its rows.
struct run_info {
  std::string cpu_model;    // /proc/cpuinfo "model name"
  int cpus_online = 0;      // sysconf(_SC_NPROCESSORS_ONLN)
  int cpus_usable = 0;      // in this process's affinity mask
  std::string kernel;       // uname -r
  std::string clocksource;  // /sys/devices/system/clocksource/clocksource0/current_clocksource
  std::string started;      // UTC, ISO 8601
  double seconds = 0;       // the run's wall time
  std::vector<std::pair<std::string, std::string>> peers;  // name, library version
};

// Reads the machine's facts into a run_info (peers and times are the caller's).
run_info machine_facts();

// Writes {"machine": ..., "peers": ..., "rows": [...]}; false (errno set) when the file cannot be
// written.
bool write_json(const std::vector<row>& rows, const run_info& info, const std::string& path);

}  // namespace ipcx::bench
