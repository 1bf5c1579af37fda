#include "bench.hpp"
#include "commands.hpp"

namespace ipcx::cli {

void add_bench(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "bench",
      "round-trip latency of every mechanism, ipcx vs raw system calls; shared-memory latency and "
      "throughput against the machine's limits");
  sub->footer(
      "Two processes play ping-pong, pinned to two CPUs (cross-core) or both to one (same-core).\n"
      "Raw calls and ipcx alternate in repetitions; each column is the median over repetitions\n"
      "of that repetition's percentile; ipcx/raw is the ratio of the p50s.\n"
      "shm rows measure the ring in spin, blocking and adaptive modes beside the limits of the\n"
      "same run (cache-line ping-pong, a raw spinning ring, a raw futex, memcpy), and one-way\n"
      "throughput with CPU time per message. See docs/bench.md.\n"
      "Exit code 1 when any row failed (n/a rows, sizes the host refuses, do not count).");
  auto opts = std::make_shared<bench::options>();
  sub->add_flag("--quick", opts->quick, "a short run (under 30 s for every mechanism)");
  sub->add_option("--json", opts->json_path, "also write every row to this JSON file");
  sub->add_option("--only", opts->only, "only these mechanisms, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(bench::mechanism_names()));
  sub->add_option("--placement", opts->placement, "only one placement")
      ->check(CLI::IsMember({"same-core", "cross-core"}));
  sub->add_option("--sched", opts->sched,
                  "scheduling policy of the measured processes: fifo (SCHED_FIFO 1, needs "
                  "privilege), other, or auto (fifo when permitted; the default)")
      ->check(CLI::IsMember({"auto", "fifo", "other"}));
  sub->add_option("--repeat,--reps", opts->reps,
                  "repetitions per implementation; each figure is the median over them "
                  "(default by mode and kind)")
      ->check(CLI::Range(1, 1000));
  sub->add_option("--sizes", opts->sizes,
                  "message sizes, comma-separated, with K/M suffixes (default 64,4K for round "
                  "trips and 64,4K,64K,1M for throughput)")
      ->delimiter(',')
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20));
  sub->add_option("--duration", opts->duration_s,
                  "seconds each throughput repetition streams (default 0.1 quick, 0.4)")
      ->check(CLI::Range(0.001, 60.0));
  sub->add_option("--plot", opts->plot_prefix,
                  "write charts as PREFIX-latency.png/.svg, PREFIX-throughput.*, PREFIX-cpu.* "
                  "(needs gnuplot)");
  sub->add_option("--round-trips", opts->round_trips,
                  "timed round trips per repetition (default by mode and placement)")
      ->check(CLI::Range(1, 10'000'000));
  sub->callback([opts] {
    int rc = bench::run(*opts);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace ipcx::cli
