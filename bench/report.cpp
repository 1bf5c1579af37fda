// Statistics over repetitions, the stdout table and the JSON file.
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "row.hpp"

namespace ipcx::bench {
namespace {

std::uint64_t nearest_rank(std::span<const std::uint64_t> sorted, double p) {
  auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p * n));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

// The median of a few values; the mean of the middle two for an even count.
std::uint64_t median(std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  if (n % 2 == 1) return values[n / 2];
  return (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string microseconds(std::optional<std::uint64_t> ns) {
  if (!ns) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", static_cast<double>(*ns) / 1000.0);
  return text;
}

const char* status_name(row_status s) {
  switch (s) {
    case row_status::ok: return "ok";
    case row_status::not_available: return "n/a";
    case row_status::failed: return "error";
  }
  return "error";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

template <typename T>
std::string json_number(const std::optional<T>& v) {
  if (!v) return "null";
  if constexpr (std::is_floating_point_v<T>) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", *v);
    return text;
  } else {
    return std::to_string(*v);
  }
}

// Shared-memory rows and limits have their own sections.
bool is_shm(const row& r) {
  return r.kind != "latency" || r.mechanism == "shm" || r.impl == "limit";
}

std::string fixed(double v, const char* format) {
  char text[32];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

const row* find_row(const std::vector<row>& rows, const std::string& kind, const std::string& impl,
                    const std::string& mechanism, std::size_t size, const std::string& placement) {
  for (const auto& r : rows)
    if (r.kind == kind && r.impl == impl && r.mechanism == mechanism && r.size == size &&
        r.placement == placement && r.status == row_status::ok)
      return &r;
  return nullptr;
}

// An ipcx shm row measured beside a peer library: "0.12 iceoryx-poll" (ipcx over the peer,
// paired repetitions); "" otherwise.
std::string peer_ratio(const row& r, const std::optional<double>& ratio) {
  static const char* const not_peers[] = {"", "cacheline", "raw-ring", "raw futex"};
  if (r.impl != "ipcx" || !ratio) return "";
  for (const char* name : not_peers)
    if (r.paired_with == name) return "";
  return fixed(*ratio, "%.2f ") + r.paired_with;
}

void print_shm_tables(const std::vector<row>& rows, std::FILE* out,
                      std::vector<std::string>& notes) {
  auto note_for = [&](const row& r) {
    notes.push_back(r.kind + " " + r.mechanism + " " + r.impl + " " + r.mode + " " +
                    std::to_string(r.size) + " B " + r.placement + ": " + status_name(r.status) +
                    ": " + r.note);
    return std::string(status_name(r.status)) + "[" + std::to_string(notes.size()) + "]";
  };
  bool any_latency = false, any_stream = false;
  for (const auto& r : rows) {
    any_latency = any_latency || (r.kind == "latency" && is_shm(r));
    any_stream = any_stream || r.kind == "throughput";
  }
  if (any_latency) {
    // A ratio is the paired one (median over alternating repetitions) when the row was measured
    // beside that limit, else the ratio of the two rows' medians (marked ~).
    auto ratio = [&](const row& r, const std::string& limit_impl, const std::string& limit) {
      if (r.impl == "limit" || (r.impl == "raw" && limit_impl == "raw")) return std::string("-");
      std::string paired = limit_impl == "raw" ? "raw futex" : limit;
      if (r.paired_with == paired && r.ratio_p50) return fixed(*r.ratio_p50, "%.2f ");
      const row* l = find_row(rows, "latency", limit_impl, limit, r.size, r.placement);
      if (l == nullptr || !l->rtt_p50_ns || !r.rtt_p50_ns || *l->rtt_p50_ns == 0)
        return std::string("-");
      return fixed(static_cast<double>(*r.rtt_p50_ns) / static_cast<double>(*l->rtt_p50_ns),
                   "%.2f~");
    };
    std::fprintf(out, "\nshared memory: round-trip latency in microseconds (ring ping-pong, one "
                      "ring each way)\n\n");
    std::fprintf(out, "%-10s %-15s %-9s %7s %-10s | %9s %8s %8s | %9s %9s %9s | %s\n",
                 "mechanism", "impl", "mode", "size", "placement", "p50", "p99", "p99.9",
                 "x cacheln", "x raw-ring", "x futex", "ipcx/peer");
    std::fprintf(out, "%s\n", std::string(130, '-').c_str());
    for (const auto& r : rows) {
      if (r.kind != "latency" || !is_shm(r)) continue;
      std::string size = std::to_string(r.size) + " B";
      std::string cells;
      if (r.status != row_status::ok) {
        cells = note_for(r);
        std::fprintf(out, "%-10s %-15s %-9s %7s %-10s | %9s\n", r.mechanism.c_str(),
                     r.impl.c_str(), r.mode.c_str(), size.c_str(), r.placement.c_str(),
                     cells.c_str());
        continue;
      }
      std::fprintf(out, "%-10s %-15s %-9s %7s %-10s | %9s %8s %8s | %9s %9s %9s | %s%s\n",
                   r.mechanism.c_str(), r.impl.c_str(), r.mode.c_str(), size.c_str(),
                   r.placement.c_str(), microseconds(r.rtt_p50_ns).c_str(),
                   microseconds(r.rtt_p99_ns).c_str(), microseconds(r.rtt_p999_ns).c_str(),
                   ratio(r, "limit", "cacheline").c_str(), ratio(r, "limit", "raw-ring").c_str(),
                   ratio(r, "raw", "shm").c_str(), peer_ratio(r, r.ratio_p50).c_str(),
                   r.noisy.empty() ? "" : ("  noisy: " + r.noisy).c_str());
    }
    std::fprintf(out,
                 "\nx LIMIT: p50 over the limit's p50; paired (alternating repetitions) where the "
                 "row ran beside it,\n'~' a ratio of medians of the same run otherwise. cacheline "
                 "moves one 8-byte word each way,\nwhatever the size. Spin and adaptive rows are "
                 "cross-core only: two spinners on one core\nwait for each other's time slice. "
                 "Goals: spin/adaptive 64 B <= 1.5x cacheline; blocking 64 B <= 1.1x futex.\n");
  }
  if (any_stream) {
    std::fprintf(out, "\none-way throughput (memcpy on one core)\n\n");
    std::fprintf(out,
                 "%-14s %-15s %-9s %7s %-10s | %9s %9s | %8s %8s %8s | %8s | %9s %8s %8s | %s\n",
                 "mechanism", "impl", "mode", "size", "placement", "M msg/s", "MB/s", "cpu ns",
                 "prod", "cons", "RSS MiB", "x raw-ring", "x memcpy", "x mc64M",
                 "ipcx/raw|peer");
    std::fprintf(out, "%s\n", std::string(160, '-').c_str());
    const row* memcpy_cache = nullptr;
    const row* memcpy_big = nullptr;
    for (const auto& r : rows)
      if (r.kind == "throughput" && r.mechanism == "memcpy" && r.status == row_status::ok)
        (r.size >= (std::size_t{64} << 20) ? memcpy_big : memcpy_cache) = &r;
    for (const auto& r : rows) {
      if (r.kind != "throughput") continue;
      std::string size = r.size >= (1u << 20) ? std::to_string(r.size >> 20) + " MiB"
                         : r.size >= 1024     ? std::to_string(r.size >> 10) + " KiB"
                                              : std::to_string(r.size) + " B";
      if (r.status != row_status::ok || !r.msgs_per_s) {
        std::string cell = r.status != row_status::ok ? note_for(r) : std::string("-");
        std::fprintf(out, "%-14s %-15s %-9s %7s %-10s | %9s\n", r.mechanism.c_str(),
                     r.impl.c_str(), r.mode.c_str(), size.c_str(), r.placement.c_str(),
                     cell.c_str());
        continue;
      }
      std::string vs_ring = "-", vs_cache = "-", vs_big = "-";
      if (r.impl == "ipcx" && r.mechanism == "shm") {
        if (r.paired_with == "raw-ring" && r.ratio_msgs) {
          vs_ring = fixed(*r.ratio_msgs, "%.2f ");
        } else if (const row* l =
                       find_row(rows, "throughput", "limit", "raw-ring", r.size, r.placement);
                   l != nullptr && l->msgs_per_s) {
          vs_ring = fixed(*r.msgs_per_s / *l->msgs_per_s, "%.2f~");
        }
      }
      if (r.mechanism != "memcpy" && r.mb_per_s) {
        if (memcpy_cache && memcpy_cache->mb_per_s)
          vs_cache = fixed(*r.mb_per_s / *memcpy_cache->mb_per_s, "%.2f");
        if (memcpy_big && memcpy_big->mb_per_s)
          vs_big = fixed(*r.mb_per_s / *memcpy_big->mb_per_s, "%.2f");
      }
      auto opt = [](const std::optional<double>& v) {
        return v ? fixed(*v, "%.1f") : std::string("-");
      };
      std::string rss =
          r.peak_rss_kib ? fixed(static_cast<double>(*r.peak_rss_kib) / 1024, "%.1f") : "-";
      std::string vs_other = r.mechanism != "shm" && r.ratio_msgs
                                 ? fixed(*r.ratio_msgs, "%.2f raw")
                                 : peer_ratio(r, r.ratio_msgs);
      std::fprintf(
          out, "%-14s %-15s %-9s %7s %-10s | %9s %9s | %8s %8s %8s | %8s | %9s %8s %8s | %s%s\n",
          r.mechanism.c_str(), r.impl.c_str(), r.mode.c_str(), size.c_str(), r.placement.c_str(),
          fixed(*r.msgs_per_s / 1e6, "%.3f").c_str(), fixed(*r.mb_per_s, "%.0f").c_str(),
          opt(r.cpu_ns_per_msg).c_str(), opt(r.cpu_producer_ns_per_msg).c_str(),
          opt(r.cpu_consumer_ns_per_msg).c_str(), rss.c_str(), vs_ring.c_str(), vs_cache.c_str(),
          vs_big.c_str(), vs_other.c_str(), r.noisy.empty() ? "" : ("  noisy: " + r.noisy).c_str());
    }
    std::fprintf(out,
                 "\ncpu ns: CPU time per message (getrusage user + system) of producer and "
                 "consumer summed;\nprod, cons: each. RSS: the larger peak RSS of the two processes "
                 "during the row's repetitions.\nipcx/raw|peer: msgs/s over the raw calls' or the "
                 "peer's, paired repetitions. x raw-ring: msgs/s over the raw SPSC ring's "
                 "(paired, or '~' ratio of medians);\nx memcpy / x mc64M: MB/s over memcpy's "
                 "bandwidth in cache (64 KiB blocks) / of 64 MiB blocks.\nGoals: 64 B >= 0.9x "
                 "raw-ring; 64 KiB >= 0.7x memcpy.\n");
  }
}

struct table_line {
  const row* raw = nullptr;
  const row* ipcx = nullptr;
};

}  // namespace

rep_stats summarize(std::span<std::uint64_t> samples) {
  std::sort(samples.begin(), samples.end());
  rep_stats s;
  s.p50 = nearest_rank(samples, 0.50);
  s.p99 = nearest_rank(samples, 0.99);
  s.p999 = nearest_rank(samples, 0.999);
  s.max = samples.back();
  s.samples = samples.size();
  return s;
}

void aggregate(std::span<const rep_stats> reps, row& out) {
  if (reps.empty()) return;
  std::vector<std::uint64_t> p50, p99, p999;
  std::uint64_t max = 0, samples = 0;
  for (const auto& r : reps) {
    p50.push_back(r.p50);
    p99.push_back(r.p99);
    p999.push_back(r.p999);
    max = std::max(max, r.max);
    samples += r.samples;
  }
  out.rtt_p50_ns = median(p50);
  out.rtt_p99_ns = median(p99);
  out.rtt_p999_ns = median(p999);
  out.rtt_max_ns = max;
  out.samples = samples;
  out.reps = static_cast<int>(reps.size());
  out.rep_p50_min_ns = *std::min_element(p50.begin(), p50.end());
  out.rep_p50_max_ns = *std::max_element(p50.begin(), p50.end());
}

void aggregate_stream(std::span<const stream_stats> reps, std::size_t size, row& out) {
  if (reps.empty()) return;
  std::vector<double> rate, cpu, producer, consumer;
  std::uint64_t messages = 0;
  for (const auto& r : reps) {
    double n = static_cast<double>(r.messages);
    if (r.messages == 0 || r.elapsed_ns == 0) continue;
    rate.push_back(n * 1e9 / static_cast<double>(r.elapsed_ns));
    producer.push_back(static_cast<double>(r.producer_cpu_ns) / n);
    consumer.push_back(static_cast<double>(r.consumer_cpu_ns) / n);
    cpu.push_back(static_cast<double>(r.producer_cpu_ns + r.consumer_cpu_ns) / n);
    messages += r.messages;
  }
  out.samples = messages;
  out.reps = static_cast<int>(reps.size());
  if (rate.empty()) return;
  auto med = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  };
  out.msgs_per_s = med(rate);
  out.mb_per_s = *out.msgs_per_s * static_cast<double>(size) / 1e6;
  out.cpu_ns_per_msg = med(cpu);
  out.cpu_producer_ns_per_msg = med(producer);
  out.cpu_consumer_ns_per_msg = med(consumer);
}

void print_table(const std::vector<row>& rows, std::FILE* out) {
  // Pair each raw row with the ipcx row of the same mechanism, size and placement, in the order
  // the rows were measured.
  std::vector<table_line> lines;
  for (const auto& r : rows) {
    if (is_shm(r)) continue;
    auto same = [&](const table_line& l) {
      const row* any = l.raw ? l.raw : l.ipcx;
      return any->kind == r.kind && any->mode == r.mode && any->mechanism == r.mechanism &&
             any->size == r.size && any->placement == r.placement;
    };
    auto it = std::find_if(lines.begin(), lines.end(), same);
    if (it == lines.end()) {
      lines.push_back({});
      it = lines.end() - 1;
    }
    (r.impl == "raw" ? it->raw : it->ipcx) = &r;
  }

  std::vector<std::string> notes;
  auto cells = [&](const row* r) {
    std::string text[3];
    if (r == nullptr) {
      text[0] = text[1] = text[2] = "-";
    } else if (r->status != row_status::ok) {
      notes.push_back(r->mechanism + " " + std::to_string(r->size) + " B " + r->placement + " " +
                      r->impl + ": " + status_name(r->status) + ": " + r->note);
      text[0] = std::string(status_name(r->status)) + "[" + std::to_string(notes.size()) + "]";
      text[1] = text[2] = "";
    } else {
      text[0] = microseconds(r->rtt_p50_ns);
      text[1] = microseconds(r->rtt_p99_ns);
      text[2] = microseconds(r->rtt_p999_ns);
    }
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%9s %8s %8s", text[0].c_str(), text[1].c_str(),
                  text[2].c_str());
    return std::string(buffer);
  };

  if (!lines.empty()) {
  std::fprintf(out, "round-trip latency in microseconds (median over repetitions of each "
                    "repetition's percentile)\n\n");
  std::fprintf(out, "%-15s %7s %-10s | %9s %8s %8s | %9s %8s %8s | %8s\n", "mechanism", "size",
               "placement", "raw p50", "p99", "p99.9", "ipcx p50", "p99", "p99.9", "ipcx/raw");
  std::string rule(15 + 1 + 7 + 1 + 10 + 3 + 27 + 3 + 27 + 3 + 8, '-');
  std::fprintf(out, "%s\n", rule.c_str());
  for (const auto& l : lines) {
    const row* any = l.raw ? l.raw : l.ipcx;
    std::string size = std::to_string(any->size) + " B";
    std::string ratio = "-";
    if (l.ipcx && l.ipcx->ratio_p50) {
      char buffer[32];
      double v = *l.ipcx->ratio_p50;
      // '*' over the 1.05 goal, '!' over the 1.10 acceptance limit (judged on same-core rows).
      std::snprintf(buffer, sizeof buffer, "%.3f%s", v, v > 1.10 ? " !" : v > 1.05 ? " *" : "  ");
      ratio = buffer;
    }
    std::string raw_cells = cells(l.raw);
    std::string ipcx_cells = cells(l.ipcx);
    std::fprintf(out, "%-15s %7s %-10s | %s | %s | %8s\n", any->mechanism.c_str(), size.c_str(),
                 any->placement.c_str(), raw_cells.c_str(), ipcx_cells.c_str(), ratio.c_str());
  }
  std::fprintf(out, "\n'*' ipcx above 1.05x raw (the goal), '!' above 1.10x (the limit); judge on "
                    "same-core rows.\nsignal carries 7 bytes per message (one 64-bit value).\n");
  bool fifo = false, other = false;
  for (const auto& r : rows) {
    fifo = fifo || r.sched == "fifo";
    other = other || r.sched == "other";
  }
  if (fifo && !other)
    std::fprintf(out, "The pairs ran SCHED_FIFO (priority 1): on one core each side blocks in "
                      "every receive.\n");
  else if (other && !fifo)
    std::fprintf(out, "The pairs ran under the default scheduling policy (SCHED_FIFO was not "
                      "used): same-core\nrows may switch between two wake-up paths; see "
                      "docs/bench.md.\n");
  else if (fifo && other)
    std::fprintf(out, "Some pairs ran SCHED_FIFO, some not: the JSON's \"sched\" says which.\n");
  }
  print_shm_tables(rows, out, notes);
  if (!notes.empty()) {
    std::fprintf(out, "\n");
    for (std::size_t i = 0; i < notes.size(); ++i)
      std::fprintf(out, "[%zu] %s\n", i + 1, notes[i].c_str());
  }
}

run_info machine_facts() {
  run_info info;
  if (std::FILE* f = std::fopen("/proc/cpuinfo", "re")) {
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      std::string text = line;
      if (text.starts_with("model name")) {
        auto colon = text.find(':');
        info.cpu_model = text.substr(colon + 2, text.size() - colon - 3);
        break;
      }
    }
    std::fclose(f);
  }
  info.cpus_online = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) info.cpus_usable = CPU_COUNT(&set);
  utsname name{};
  if (::uname(&name) == 0) info.kernel = name.release;
  if (std::FILE* f =
          std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re")) {
    char line[64] = {};
    if (std::fgets(line, sizeof line, f) != nullptr) {
      info.clocksource = line;
      if (!info.clocksource.empty() && info.clocksource.back() == '\n') info.clocksource.pop_back();
    }
    std::fclose(f);
  }
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  info.started = when;
  return info;
}

bool write_json(const std::vector<row>& rows, const run_info& info, const std::string& path) {
  std::string text = "{\n  \"machine\": {";
  text += "\"cpu_model\": " + json_string(info.cpu_model);
  text += ", \"cpus_online\": " + std::to_string(info.cpus_online);
  text += ", \"cpus_usable\": " + std::to_string(info.cpus_usable);
  text += ", \"kernel\": " + json_string(info.kernel);
  text += ", \"clocksource\": " + json_string(info.clocksource);
  text += "},\n  \"started\": " + json_string(info.started);
  text += ",\n  \"seconds\": " + json_number(std::optional<double>(info.seconds));
  text += ",\n  \"peers\": {";
  for (std::size_t i = 0; i < info.peers.size(); ++i)
    text += (i ? ", " : "") + json_string(info.peers[i].first) + ": " +
            json_string(info.peers[i].second);
  text += "},\n  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const row& r = rows[i];
    text += "    {";
    text += "\"kind\": " + json_string(r.kind);
    text += ", \"mode\": " + json_string(r.mode);
    text += ", \"mechanism\": " + json_string(r.mechanism);
    text += ", \"impl\": " + json_string(r.impl);
    text += ", \"size\": " + std::to_string(r.size);
    text += ", \"placement\": " + json_string(r.placement);
    if (!r.sched.empty()) text += ", \"sched\": " + json_string(r.sched);
    text += ", \"status\": " + json_string(status_name(r.status));
    if (!r.note.empty()) text += ", \"note\": " + json_string(r.note);
    text += ", \"rtt_p50_ns\": " + json_number(r.rtt_p50_ns);
    text += ", \"rtt_p99_ns\": " + json_number(r.rtt_p99_ns);
    text += ", \"rtt_p999_ns\": " + json_number(r.rtt_p999_ns);
    text += ", \"rtt_max_ns\": " + json_number(r.rtt_max_ns);
    text += ", \"samples\": " + std::to_string(r.samples);
    if (r.reps) text += ", \"reps\": " + json_number(r.reps);
    if (r.rep_p50_min_ns) text += ", \"rep_p50_min_ns\": " + json_number(r.rep_p50_min_ns);
    if (r.rep_p50_max_ns) text += ", \"rep_p50_max_ns\": " + json_number(r.rep_p50_max_ns);
    if (r.ratio_p50) text += ", \"ratio_p50\": " + json_number(r.ratio_p50);
    if (!r.paired_with.empty()) text += ", \"paired_with\": " + json_string(r.paired_with);
    if (r.kind == "throughput") {
      text += ", \"msgs_per_s\": " + json_number(r.msgs_per_s);
      text += ", \"mb_per_s\": " + json_number(r.mb_per_s);
      text += ", \"cpu_ns_per_msg\": " + json_number(r.cpu_ns_per_msg);
      if (r.cpu_producer_ns_per_msg)
        text += ", \"cpu_producer_ns_per_msg\": " + json_number(r.cpu_producer_ns_per_msg);
      if (r.cpu_consumer_ns_per_msg)
        text += ", \"cpu_consumer_ns_per_msg\": " + json_number(r.cpu_consumer_ns_per_msg);
      if (r.ratio_msgs) text += ", \"ratio_msgs\": " + json_number(r.ratio_msgs);
    }
    if (r.peak_rss_kib) text += ", \"peak_rss_kib\": " + json_number(r.peak_rss_kib);
    if (r.steal_pct) text += ", \"steal_pct\": " + json_number(r.steal_pct);
    if (!r.noisy.empty()) text += ", \"noisy\": " + json_string(r.noisy);
    text += i + 1 < rows.size() ? "},\n" : "}\n";
  }
  text += "  ]\n}\n";
  std::FILE* f = std::fopen(path.c_str(), "we");
  if (f == nullptr) return false;
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int saved = errno;
  if (std::fclose(f) != 0 && ok) return false;
  errno = saved;
  return ok;
}

}  // namespace ipcx::bench
