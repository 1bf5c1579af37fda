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
#include "shm.hpp"

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
// Shared-memory rows. Spinning round trips take well under a microsecond: many per repetition
// cost little. Throughput repetitions stream for a fixed time.
struct shm_defaults {
  int spin_reps;
  int spin_round_trips;
  int stream_reps;
  std::uint64_t stream_ns;
  std::uint64_t memcpy_ns;  // per memcpy row
};
constexpr shm_defaults quick_shm{5, 5000, 2, 100'000'000, 200'000'000};
constexpr shm_defaults full_shm{11, 20000, 5, 400'000'000, 1'000'000'000};

// Which limit is measured beside each ipcx shm row (in the session's "raw" slot, alternating with
// it). The rest are compared, in the table, with the limit rows of the same run.
struct shm_case {
  const char* kind;
  const char* mode;
  std::size_t size;
  const char* limit;  // "" for none
};
constexpr shm_case shm_cases[] = {
    {"latency", "spin", 64, "cacheline"},
    {"latency", "adaptive", 64, "raw-ring"},
    {"latency", "blocking", 64, "futex"},
    {"latency", "spin", 4096, "raw-ring"},
    {"latency", "adaptive", 4096, ""},
    {"latency", "blocking", 4096, "futex"},
    {"throughput", "spin", 64, "raw-ring"},
    {"throughput", "adaptive", 64, ""},
    {"throughput", "blocking", 64, ""},
    {"throughput", "spin", 4096, "raw-ring"},
    {"throughput", "adaptive", 4096, ""},
    {"throughput", "blocking", 4096, ""},
    {"throughput", "spin", 65536, "raw-ring"},
    {"throughput", "adaptive", 65536, ""},
    {"throughput", "blocking", 65536, ""},
    {"throughput", "spin", 1 << 20, "raw-ring"},
    {"throughput", "adaptive", 1 << 20, ""},
    {"throughput", "blocking", 1 << 20, ""},
};

void shm_cleanup(const case_spec&) {}  // anonymous shared mappings: nothing named to remove

// The session reports "raw" and "ipcx"; shm cases put a limit or the raw futex in the raw slot.
void relabel_shm(const case_spec& spec, row& raw, row& ipcx) {
  ipcx.paired_with = spec.limit;
  if (spec.limit == "futex") {
    raw.impl = "raw";
    raw.mechanism = "shm";
    ipcx.paired_with = "raw futex";
  } else {
    raw.impl = "limit";
    raw.mechanism = spec.limit;
    raw.mode = "spin";  // every limit spins
  }
}

// The file logs grow by every message (nothing truncates a log): bound what a full run writes.
constexpr int file_round_trip_cap = 4000;

const mode_defaults& mode_defaults_for(bool quick) { return quick ? quick_mode : full_mode; }

const mechanism_entry& shm_entry() {
  static const mechanism_entry entry{"shm", {64, 4096}, shm_main, shm_cleanup};
  return entry;
}

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
    out.emplace_back("shm");
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

  // Shared memory: the ring in each waiting mode, and the limits. Spinning on one core makes no
  // sense (the two spinners share it, each waits for the other's time slice), so spin and
  // adaptive rows are cross-core only; blocking rows take both placements.
  bool want_shm =
      opts.only.empty() || std::find(opts.only.begin(), opts.only.end(), "shm") != opts.only.end();
  const shm_defaults& shm_mode = opts.quick ? quick_shm : full_shm;
  if (want_shm) {
    for (const auto& c : shm_cases) {
      std::string wait = c.mode;
      bool latency = std::string_view(c.kind) == "latency";
      for (bool same_core : placements) {
        if (same_core && (!latency || wait != "blocking")) continue;
        case_spec spec;
        spec.mechanism = "shm";
        spec.kind = c.kind;
        spec.mode = wait;
        spec.limit = c.limit;
        spec.size = c.size;
        spec.same_core = same_core;
        spec.cpu_initiator = cpus[0];
        spec.cpu_responder = same_core || cpus.size() < 2 ? cpus[0] : cpus[1];
        if (!latency) {
          spec.reps = opts.reps > 0 ? opts.reps : shm_mode.stream_reps;
          spec.stream_ns = shm_mode.stream_ns;
          spec.round_trips = 1;  // sizes the orchestrator's per-repetition limit only
          // Untimed messages first (page faults, caches): about 64 MiB at most.
          spec.warmup = static_cast<int>(std::min<std::size_t>(1000, (64u << 20) / c.size));
        } else {
          bool spinning = wait != "blocking";
          spec.reps = opts.reps > 0           ? opts.reps
                      : spinning              ? shm_mode.spin_reps
                      : same_core             ? mode_defaults_for(opts.quick).same_core_reps
                                              : mode_defaults_for(opts.quick).cross_core_reps;
          spec.round_trips = opts.round_trips > 0 ? opts.round_trips
                             : spinning          ? shm_mode.spin_round_trips
                             : same_core ? mode_defaults_for(opts.quick).same_core_round_trips
                                         : mode_defaults_for(opts.quick).cross_core_round_trips;
          spec.warmup = std::max(50, spec.round_trips / 10);
        }
        spec.tag = "ipcx-bench-" + std::to_string(::getpid()) + "-" + std::to_string(index++);
        spec.sysv_key_base = key_base;
        // Two real-time spinners would starve everything else on both CPUs for the whole case;
        // SCHED_FIFO matters only where a side blocks.
        spec.sched = wait != "blocking" && opts.sched == "auto" ? "other" : opts.sched;
        cases.emplace_back(std::move(spec), &shm_entry());
      }
    }
  }

  install_interrupt_handlers();
  bool tty = ::isatty(STDERR_FILENO) != 0;
  auto started = std::chrono::steady_clock::now();
  std::vector<row> rows;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [spec, m] = cases[i];
    std::string what = spec.mechanism;
    if (spec.mode != "default") what += " " + spec.kind + " " + spec.mode;
    std::fprintf(stderr, "%s[%zu/%zu] %s %zu B %s%s", tty ? "\r\033[K" : "", i + 1, cases.size(),
                 what.c_str(), spec.size, spec.placement(), tty ? "" : "\n");
    std::fflush(stderr);
    bool shm = spec.mechanism == "shm";
    case_outcome out;
    if (!spec.same_core && cpus.size() < 2) {
      std::string why = "only one CPU is available to this process";
      out.raw = not_measured(spec, "raw", row_status::not_available, why);
      out.ipcx = not_measured(spec, "ipcx", row_status::not_available, why);
    } else {
      m->cleanup(spec);  // a stale object from a crashed run with the same pid would fail create
      out = run_case(spec, m->body);
      m->cleanup(spec);
    }
    if (shm) relabel_shm(spec, out.raw, out.ipcx);
    // A shm row measured alone has an empty "raw" slot: no row for it.
    if (!(shm && spec.limit.empty())) rows.push_back(std::move(out.raw));
    rows.push_back(std::move(out.ipcx));
    if (interrupted()) break;
  }
  // memcpy bandwidth, the bound on copying a large message in and out: in cache, and a block far
  // larger than the caches. Measured here, in the orchestrator, pinned for the while.
  if (want_shm && !interrupted()) {
    for (std::size_t block : {std::size_t{64} << 10, std::size_t{64} << 20}) {
      std::fprintf(stderr, "%smemcpy %zu B%s", tty ? "\r\033[K" : "", block, tty ? "" : "\n");
      rows.push_back(measure_memcpy(block, shm_mode.memcpy_ns, cpus.back()));
    }
  }
  restore_interrupt_handlers();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "%s%zu cases in %.1f s\n", tty ? "\r\033[K" : "", cases.size(), seconds);

  print_table(rows, stdout);
  std::fflush(stdout);

  int rc = 0;
  for (const auto& r : rows)
    if (r.status == row_status::failed) rc = 1;
  if (interrupted()) {
    std::fprintf(stderr, "ipcx bench: interrupted after %zu rows of %zu cases\n", rows.size(),
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
