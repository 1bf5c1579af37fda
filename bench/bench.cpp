#include "bench.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "mechanisms.hpp"
#include "peers.hpp"
#include "plot.hpp"
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
constexpr mode_defaults quick_mode{5, 400, 11, 1000};
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
constexpr shm_defaults quick_shm{5, 3000, 2, 40'000'000, 100'000'000};
constexpr shm_defaults full_shm{11, 20000, 5, 400'000'000, 1'000'000'000};

// Which limit is measured beside each ipcx shm row (in the session's "raw" slot, alternating with
// it): the cache line beside the spinning 64 B round trip, the raw spinning ring beside the other
// spinning rows and the adaptive 64 B one, the raw futex beside blocking round trips. The rest are
// compared, in the table, with the limit rows of the same run.
const char* shm_limit(bool latency, std::string_view mode, std::size_t size) {
  if (latency && mode == "blocking") return "futex";
  if (latency && mode == "spin" && size == 64) return "cacheline";
  if (mode == "spin" || (latency && mode == "adaptive" && size == 64)) return "raw-ring";
  return "";
}

constexpr std::size_t default_latency_sizes[] = {64, 4096};
constexpr std::size_t default_throughput_sizes[] = {64, 4096, 64 << 10, 1 << 20};
// --quick: the smallest and a large message only.
constexpr std::size_t quick_latency_sizes[] = {64};
constexpr std::size_t quick_throughput_sizes[] = {64, 64 << 10};

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

// A peer case reports the peer in the "raw" slot.
void relabel_peer(const peer_entry& peer, row& theirs, row& ipcx) {
  theirs.impl = std::string(peer.name);
  theirs.mechanism = "shm";
  theirs.mode = std::string(peer.mode);
  ipcx.paired_with = std::string(peer.name);
}

// The file logs grow by every message (nothing truncates a log): bound what a full run writes.
constexpr int file_round_trip_cap = 4000;

const mode_defaults& mode_defaults_for(bool quick) { return quick ? quick_mode : full_mode; }

// Repetitions, round trips and stream time of a case. `blocking`: a side sleeps (every kernel
// mechanism), so a round trip costs a wake-up (tens of microseconds across cores) rather than
// well under a microsecond.
void set_counts(case_spec& spec, const options& opts, bool latency, bool blocking) {
  const shm_defaults& shm_mode = opts.quick ? quick_shm : full_shm;
  const mode_defaults& mode = mode_defaults_for(opts.quick);
  if (!latency) {
    spec.reps = opts.reps > 0 ? opts.reps : shm_mode.stream_reps;
    spec.stream_ns = opts.duration_s > 0 ? static_cast<std::uint64_t>(opts.duration_s * 1e9)
                                         : shm_mode.stream_ns;
    spec.round_trips = 1;  // sizes the orchestrator's per-repetition limit only
    // Untimed messages first (page faults, caches): about 64 MiB at most.
    spec.warmup = static_cast<int>(std::min<std::size_t>(1000, (64u << 20) / spec.size));
    return;
  }
  spec.reps = opts.reps > 0    ? opts.reps
              : !blocking      ? shm_mode.spin_reps
              : spec.same_core ? mode.same_core_reps
                               : mode.cross_core_reps;
  spec.round_trips = opts.round_trips > 0 ? opts.round_trips
                     : !blocking          ? shm_mode.spin_round_trips
                     : spec.same_core     ? mode.same_core_round_trips
                                          : mode.cross_core_round_trips;
  spec.warmup = std::max(50, spec.round_trips / 10);
}

// One case of the run: its spec, what runs it, what removes its objects, and its peer library.
struct bench_case {
  case_spec spec;
  mechanism_main body;
  void (*cleanup)(const case_spec&);
  const peer_entry* peer = nullptr;
  std::string not_available;  // non-empty: not run, both rows n/a for this reason
};

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
  r.kind = spec.kind;
  r.mode = spec.mode;
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
    for (const auto& p : peers()) out.emplace_back(p.name);
    return out;
  }();
  return names;
}

int run(const options& opts) {
  run_info info = machine_facts();
  const shm_defaults& shm_mode = opts.quick ? quick_shm : full_shm;
  std::vector<std::size_t> latency_sizes =
      opts.quick
          ? std::vector<std::size_t>(std::begin(quick_latency_sizes), std::end(quick_latency_sizes))
          : std::vector<std::size_t>(std::begin(default_latency_sizes),
                                     std::end(default_latency_sizes));
  std::vector<std::size_t> throughput_sizes =
      opts.quick ? std::vector<std::size_t>(std::begin(quick_throughput_sizes),
                                            std::end(quick_throughput_sizes))
                 : std::vector<std::size_t>(std::begin(default_throughput_sizes),
                                            std::end(default_throughput_sizes));
  if (!opts.sizes.empty()) latency_sizes = throughput_sizes = opts.sizes;
  std::vector<int> cpus = usable_cpus();
  if (cpus.empty()) cpus.push_back(0);

  std::vector<bool> placements;  // same_core values to run
  if (opts.placement.empty() || opts.placement == "cross-core") placements.push_back(false);
  if (opts.placement.empty() || opts.placement == "same-core") placements.push_back(true);

  std::vector<bench_case> cases;
  int index = 0;
  long key_base = 0x49420000L + (static_cast<long>(::getpid()) & 0xffff) * 4;
  auto wanted = [&](std::string_view name) {
    return opts.only.empty() ||
           std::find(opts.only.begin(), opts.only.end(), name) != opts.only.end();
  };
  // What every case has: its objects' tag, its CPUs, the policy asked for; counts by kind.
  auto new_spec = [&](std::string_view mechanism, const char* kind, std::size_t size,
                      bool same_core, bool blocking) {
    case_spec spec;
    spec.mechanism = std::string(mechanism);
    spec.kind = kind;
    spec.size = size;
    spec.same_core = same_core;
    spec.cpu_initiator = cpus[0];
    spec.cpu_responder = same_core || cpus.size() < 2 ? cpus[0] : cpus[1];
    set_counts(spec, opts, spec.kind == "latency", blocking);
    spec.tag = "ipcx-bench-" + std::to_string(::getpid()) + "-" + std::to_string(index++);
    spec.sysv_key_base = key_base;
    spec.sched = opts.sched;
    return spec;
  };
  for (const auto& m : mechanisms()) {
    if (!wanted(m.name)) continue;
    auto too_large = [&](std::size_t size) {
      return size > m.max_size ? std::string(m.name) + " carries at most " +
                                     std::to_string(m.max_size) + " bytes here"
                               : std::string();
    };
    for (std::size_t size : m.max_size < 8 ? m.sizes : latency_sizes) {
      for (bool same_core : placements) {
        case_spec spec = new_spec(m.name, "latency", size, same_core, true);
        if (m.name == "file" && opts.round_trips == 0) {
          spec.round_trips = std::min(spec.round_trips, file_round_trip_cap);
          spec.warmup = std::max(50, spec.round_trips / 10);
        }
        cases.push_back({std::move(spec), m.body, m.cleanup, nullptr, too_large(size)});
      }
    }
    // One-way throughput, the same endpoints streaming. --quick: cross-core only (the time
    // budget); a full run measures both placements.
    for (std::size_t size : throughput_sizes) {
      for (bool same_core : placements) {
        if (same_core && opts.quick) continue;
        // signal: its one size
        case_spec spec =
            new_spec(m.name, "throughput", m.max_size < 8 ? m.max_size : size, same_core, true);
        std::string na = m.no_stream != nullptr ? m.no_stream : too_large(spec.size);
        cases.push_back({std::move(spec), m.body, m.cleanup, nullptr, std::move(na)});
        if (m.max_size < 8) break;
      }
      if (m.max_size < 8 || m.no_stream != nullptr) break;  // one n/a row says it
    }
  }

  // Shared memory: the ring in each waiting mode, and the limits. Spinning on one core makes no
  // sense (the two spinners share it, each waits for the other's time slice), so spin and
  // adaptive rows are cross-core only; blocking rows take both placements.
  bool want_shm = wanted("shm");
  if (want_shm) {
    for (const char* kind : {"latency", "throughput"}) {
      bool latency = std::string_view(kind) == "latency";
      for (std::size_t size : latency ? latency_sizes : throughput_sizes) {
        for (std::string wait : {"spin", "adaptive", "blocking"}) {
          for (bool same_core : placements) {
            if (same_core && (!latency || wait != "blocking")) continue;
            case_spec spec = new_spec("shm", kind, size, same_core, wait == "blocking");
            spec.mode = wait;
            spec.limit = shm_limit(latency, wait, size);
            // Two real-time spinners would starve everything else on both CPUs for the whole case;
            // SCHED_FIFO matters only where a side blocks.
            spec.sched = wait != "blocking" && opts.sched == "auto" ? "other" : opts.sched;
            cases.push_back({std::move(spec), shm_main, shm_cleanup, nullptr, ""});
          }
        }
      }
    }
  }

  // The peers: latency beside the ipcx ring in the mode the peer is compared with (blocking
  // peers in both placements, busy-polling ones cross-core only), one-way throughput cross-core.
  std::vector<const peer_entry*> daemons;
  for (const auto& peer : peers()) {
    if (!wanted(peer.name)) continue;
    if (peer.start != nullptr) daemons.push_back(&peer);
    for (const char* kind : {"latency", "throughput"}) {
      bool latency = std::string_view(kind) == "latency";
      for (std::size_t size : latency ? latency_sizes : throughput_sizes) {
        for (bool same_core : placements) {
          if (same_core && (!latency || peer.mode == "spin")) continue;
          std::string_view mode = latency ? peer.ipcx_latency_mode : peer.ipcx_throughput_mode;
          case_spec spec =
              new_spec("shm", kind, size, same_core, peer.mode != "spin" || mode != "spin");
          spec.mode = std::string(mode);
          spec.sched = peer.mode == "spin" && spec.mode != "blocking" && opts.sched == "auto"
                           ? "other"
                           : opts.sched;
          cases.push_back({std::move(spec), peer.body, peer.cleanup, &peer, ""});
        }
      }
    }
  }
  // A peer's daemon (iceoryx's RouDi) runs only from before the first case that needs it until
  // after the last one, so it never runs beside other rows. Peers may share a daemon (both
  // iceoryx rows): start() and stop() then answer for both.
  std::vector<std::string> daemon_failures(peers().size());
  std::vector<bool> daemon_started(peers().size());
  auto peer_index = [](const peer_entry* peer) {
    return static_cast<std::size_t>(peer - peers().data());
  };

  install_interrupt_handlers();
  bool tty = ::isatty(STDERR_FILENO) != 0;
  auto started = std::chrono::steady_clock::now();
  std::vector<row> rows;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [spec, body, cleanup, peer, not_available] = cases[i];
    std::string what = spec.mechanism;
    if (spec.kind != "latency" || spec.mode != "default") what += " " + spec.kind;
    if (spec.mode != "default") what += " " + spec.mode;
    std::fprintf(stderr, "%s[%zu/%zu] %s %zu B %s%s", tty ? "\r\033[K" : "", i + 1, cases.size(),
                 what.c_str(), spec.size, spec.placement(), tty ? "" : "\n");
    std::fflush(stderr);
    bool shm = spec.mechanism == "shm";
    if (peer != nullptr && peer->start != nullptr && !daemon_started[peer_index(peer)]) {
      daemon_started[peer_index(peer)] = true;
      std::fprintf(stderr, "%sstarting %.*s's daemon\n", tty ? "\r\033[K" : "",
                   static_cast<int>(peer->name.size()), peer->name.data());
      daemon_failures[peer_index(peer)] = peer->start(throughput_sizes);
    }
    const std::string* daemon_failure =
        peer != nullptr ? &daemon_failures[peer_index(peer)] : nullptr;
    case_outcome out;
    if (!spec.same_core && cpus.size() < 2) {
      std::string why = "only one CPU is available to this process";
      out.raw = not_measured(spec, "raw", row_status::not_available, why);
      out.ipcx = not_measured(spec, "ipcx", row_status::not_available, why);
    } else if (!not_available.empty() || (daemon_failure != nullptr && !daemon_failure->empty())) {
      const std::string& why = not_available.empty() ? *daemon_failure : not_available;
      out.raw = not_measured(spec, "raw", row_status::not_available, why);
      out.ipcx = not_measured(spec, "ipcx", row_status::not_available, why);
    } else {
      cleanup(spec);  // a stale object from a crashed run with the same pid would fail create
      out = run_case(spec, body);
      cleanup(spec);
    }
    if (peer != nullptr) {
      relabel_peer(*peer, out.raw, out.ipcx);
    } else if (shm) {
      relabel_shm(spec, out.raw, out.ipcx);
    }
    // A shm row measured alone has an empty "raw" slot: no row for it.
    if (!(shm && peer == nullptr && spec.limit.empty())) rows.push_back(std::move(out.raw));
    rows.push_back(std::move(out.ipcx));
    if (peer != nullptr && peer->stop != nullptr &&
        std::none_of(
            cases.begin() + static_cast<std::ptrdiff_t>(i) + 1, cases.end(),
            [&](const bench_case& c) { return c.peer != nullptr && c.peer->stop == peer->stop; }))
      peer->stop();
    if (interrupted()) break;
  }
  // memcpy bandwidth, the bound on copying a large message in and out: in cache, and a block far
  // larger than the caches. Measured here, in the orchestrator, pinned for the while.
  if (!interrupted()) {
    std::fprintf(stderr, "%snull system call%s", tty ? "\r\033[K" : "", tty ? "" : "\n");
    rows.push_back(measure_null_syscall(cpus.back()));
  }
  if (want_shm && !interrupted()) {
    for (std::size_t block : {std::size_t{64} << 10, std::size_t{64} << 20}) {
      std::fprintf(stderr, "%smemcpy %zu B%s", tty ? "\r\033[K" : "", block, tty ? "" : "\n");
      rows.push_back(measure_memcpy(block, shm_mode.memcpy_ns, cpus.back()));
    }
  }
  for (const auto* peer : daemons)
    if (daemon_started[peer_index(peer)]) peer->stop();  // after an interruption; safe twice
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
  info.seconds = seconds;
  for (const auto& peer : peers()) info.peers.emplace_back(std::string(peer.name), peer.version());
  if (!opts.plot_prefix.empty()) {
    std::string error;
    if (write_plots(rows, opts.plot_prefix, error)) {
      std::fprintf(stderr, "charts: %s-{%s}.{png,svg}\n", opts.plot_prefix.c_str(),
                   [] {
                     std::string names;
                     for (const auto& n : plot_names()) names += (names.empty() ? "" : ",") + n;
                     return names;
                   }()
                       .c_str());
    } else {
      std::fprintf(stderr, "ipcx bench: %s\n", error.c_str());
      rc = 1;
    }
  }
  if (!opts.json_path.empty() && !write_json(rows, info, opts.json_path)) {
    std::fprintf(stderr, "ipcx bench: write(\"%s\"): %s\n", opts.json_path.c_str(),
                 std::strerror(errno));
    rc = 1;
  }
  return rc;
}

}  // namespace ipcx::bench
