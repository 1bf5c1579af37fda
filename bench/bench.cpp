#include "bench.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "mechanisms.hpp"
#include "row.hpp"
#include "runner.hpp"

namespace ipcx::bench {
namespace {

// Round trips per repetition. Cross-core round trips cost ~50 us on this VM (every wake-up of the
// other vCPU goes through the hypervisor), same-core ones 5-15 us, so the same-core rows get more
// samples for the same time. --quick fits every mechanism in well under 30 s.
// Same-core rows decide the ipcx/raw verdict, so they get more, shorter repetitions: more pairs
// for the paired ratio, each pair close in time.
struct mode_defaults {
  int cross_core_reps;  // per implementation
  int cross_core_round_trips;
  int same_core_reps;
  int same_core_round_trips;
};
constexpr mode_defaults quick_mode{7, 800, 15, 1500};
constexpr mode_defaults full_mode{10, 3000, 31, 3000};
// The file logs grow by every message (nothing truncates a log): bound what a full run writes.
constexpr int file_round_trip_cap = 4000;

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

row not_measured(const case_spec& spec, const char* which, row_status status, std::string note) {
  row r;
  r.mechanism = spec.mechanism;
  r.impl = which;
  r.size = spec.size;
  r.placement = spec.placement();
  r.status = status;
  r.note = std::move(note);
  return r;
}

}  // namespace

const std::vector<std::string>& mechanism_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& m : mechanisms()) out.emplace_back(m.name);
    return out;
  }();
  return names;
}

int run(const options& opts) {
  const mode_defaults& mode = opts.quick ? quick_mode : full_mode;
  std::vector<int> cpus = usable_cpus();
  if (cpus.empty()) cpus.push_back(0);

  std::vector<bool> placements;  // same_core values to run
  if (opts.placement.empty() || opts.placement == "cross-core") placements.push_back(false);
  if (opts.placement.empty() || opts.placement == "same-core") placements.push_back(true);

  std::vector<std::pair<case_spec, const mechanism_entry*>> cases;
  int index = 0;
  long key_base = 0x49420000L + (static_cast<long>(::getpid()) & 0xffff) * 4;
  for (const auto& m : mechanisms()) {
    if (!opts.only.empty() &&
        std::find(opts.only.begin(), opts.only.end(), m.name) == opts.only.end())
      continue;
    for (std::size_t size : m.sizes) {
      for (bool same_core : placements) {
        case_spec spec;
        spec.mechanism = std::string(m.name);
        spec.size = size;
        spec.same_core = same_core;
        spec.cpu_initiator = cpus[0];
        spec.cpu_responder = same_core || cpus.size() < 2 ? cpus[0] : cpus[1];
        spec.reps = opts.reps > 0 ? opts.reps : same_core ? mode.same_core_reps : mode.cross_core_reps;
        spec.round_trips = opts.round_trips > 0 ? opts.round_trips
                           : same_core           ? mode.same_core_round_trips
                                                 : mode.cross_core_round_trips;
        if (m.name == "file" && opts.round_trips == 0)
          spec.round_trips = std::min(spec.round_trips, file_round_trip_cap);
        spec.warmup = std::max(50, spec.round_trips / 10);
        spec.tag = "ipcx-bench-" + std::to_string(::getpid()) + "-" + std::to_string(index++);
        spec.sysv_key_base = key_base;
        spec.sched = opts.sched;
        cases.emplace_back(std::move(spec), &m);
      }
    }
  }

  install_interrupt_handlers();
  bool tty = ::isatty(STDERR_FILENO) != 0;
  auto started = std::chrono::steady_clock::now();
  std::vector<row> rows;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [spec, m] = cases[i];
    std::fprintf(stderr, "%s[%zu/%zu] %s %zu B %s%s", tty ? "\r\033[K" : "", i + 1, cases.size(),
                 spec.mechanism.c_str(), spec.size, spec.placement(), tty ? "" : "\n");
    std::fflush(stderr);
    if (!spec.same_core && cpus.size() < 2) {
      std::string why = "only one CPU is available to this process";
      rows.push_back(not_measured(spec, "raw", row_status::not_available, why));
      rows.push_back(not_measured(spec, "ipcx", row_status::not_available, why));
      continue;
    }
    m->cleanup(spec);  // a stale object from a crashed run with the same pid would fail create
    case_outcome out = run_case(spec, m->body);
    m->cleanup(spec);
    rows.push_back(std::move(out.raw));
    rows.push_back(std::move(out.ipcx));
    if (interrupted()) break;
  }
  restore_interrupt_handlers();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "%s%zu cases in %.1f s\n", tty ? "\r\033[K" : "", rows.size() / 2, seconds);

  print_table(rows, stdout);
  std::fflush(stdout);

  int rc = 0;
  for (const auto& r : rows)
    if (r.status == row_status::failed) rc = 1;
  if (interrupted()) {
    std::fprintf(stderr, "ipcx bench: interrupted after %zu of %zu cases\n", rows.size() / 2,
                 cases.size());
    rc = 130;
  }
  if (!opts.json_path.empty() && !write_json(rows, opts.json_path)) {
    std::fprintf(stderr, "ipcx bench: write(\"%s\"): %s\n", opts.json_path.c_str(),
                 std::strerror(errno));
    rc = 1;
  }
  return rc;
}

}  // namespace ipcx::bench
