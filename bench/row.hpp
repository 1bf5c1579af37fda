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
#include <vector>

namespace ipcx::bench {

enum class row_status { ok, not_available, failed };

struct row {
  std::string kind = "latency";  // "latency"; later "throughput"
  std::string mode = "default";  // later: the waiting strategy of shared-memory rows
  std::string mechanism;         // "pipe", "sysv-mq"...
  std::string impl;              // "ipcx" or "raw"
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

  // Throughput rows (a later issue).
  std::optional<double> msgs_per_s;
  std::optional<double> bytes_per_s;
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

// The table on stdout: one line per (mechanism, size, placement), raw and ipcx side by side.
void print_table(const std::vector<row>& rows, std::FILE* out);
// Writes every row as a JSON array; false (errno set) when the file cannot be written.
bool write_json(const std::vector<row>& rows, const std::string& path);

}  // namespace ipcx::bench
