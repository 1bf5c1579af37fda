// The charts of `ipcx bench --plot`: a gnuplot script built from the rows, run by fork/exec.
//
// Design: the whole script (data as inline datablocks, then each chart twice, PNG and SVG) goes to
// one gnuplot process, which reads it from an unlinked temporary file on its stdin as
// /dev/stdin: nothing is left in /tmp whatever happens, and gnuplot stops at the first error
// with the line number it hit (it does not stop when reading a pipe interactively). Its stderr
// (and stdout) come back through a pipe and become the error text.
#include "plot.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ipcx/error.hpp"
#include "ipcx/unique_fd.hpp"

namespace ipcx::bench {
namespace {

constexpr int gnuplot_timeout_ms = 60'000;
constexpr std::size_t max_error_text = 4096;  // gnuplot's complaints, kept for the message

std::string errno_text(int err, const std::string& operation, const std::string& object) {
  return ipcx::error::from_errno(err, operation, object).message();
}

// ---- script text ------------------------------------------------------------------------------

// A gnuplot single-quoted string: no escapes inside but '' for a quote.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    if (c == '\n') {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "'";
}

std::string num(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

std::string size_label(std::size_t size) {
  if (size >= (std::size_t{1} << 20) && size % (std::size_t{1} << 20) == 0)
    return std::to_string(size >> 20) + " MiB";
  if (size >= 1024 && size % 1024 == 0) return std::to_string(size >> 10) + " KiB";
  return std::to_string(size) + " B";
}

// Colours and markers are fixed per implementation, so a reader learns them once for all charts.
struct impl_style {
  const char* impl;
  const char* color;
  int point;
};
constexpr impl_style known_styles[] = {
    {"raw", "#555555", 5},          {"ipcx", "#1f5fbf", 7},       {"limit", "#2ca02c", 9},
    {"iceoryx-poll", "#9467bd", 13}, {"iceoryx-waitset", "#e377c2", 12},
    {"boost-mq", "#ff7f0e", 11},    {"zmq-ipc", "#d62728", 15},   {"zmq-tcp", "#8c564b", 14},
    {"nng-ipc", "#17becf", 10},
};
constexpr const char* spare_colors[] = {"#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a"};
constexpr int spare_points[] = {4, 6, 8, 2, 3};

struct style {
  std::string color;
  int point = 7;
};

class palette {
 public:
  style of(const std::string& impl) {
    for (const auto& s : known_styles)
      if (impl == s.impl) return {s.color, s.point};
    auto it = spare_.find(impl);
    if (it == spare_.end()) {
      std::size_t i = spare_.size() % std::size(spare_colors);
      it = spare_.emplace(impl, style{spare_colors[i], spare_points[i]}).first;
    }
    return it->second;
  }

 private:
  std::map<std::string, style> spare_;
};

// Series order: raw, ipcx and the limits first, the peers after them in the order they ran.
int impl_rank(const std::string& impl) {
  if (impl == "raw") return 0;
  if (impl == "ipcx") return 1;
  if (impl == "limit") return 2;
  return 3;
}

// One chart: the datablocks it needs (shared by its PNG and SVG) and its drawing commands.
struct chart {
  std::string name;
  int width = 900;  // the size of a chart that only says it has nothing to draw
  int height = 450;
  std::string data;
  std::string body;
};

// The terminals: pngcairo when this gnuplot has it (gnuplot-nox does), libgd's png otherwise.
// noenhanced: names like "unix_dgram" or "a^b" print as they are.
std::string png_terminal(const chart& c) {
  std::string size = " size " + std::to_string(c.width) + "," + std::to_string(c.height);
  return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
         "  set terminal pngcairo" + size + " noenhanced font 'Sans,11' background '#ffffff'\n"
         "} else {\n"
         "  set terminal png" + size + " noenhanced font 'Sans,11' background '#ffffff'\n"
         "}\n";
}

std::string svg_terminal(const chart& c) {
  return "set terminal svg size " + std::to_string(c.width) + "," + std::to_string(c.height) +
         " fixed name 'ipcx_bench_" + c.name + "' noenhanced font 'Sans,11' background '#ffffff'\n";
}

// Drawn when a chart has no rows: the file still exists, and says why it is empty.
std::string empty_body(const std::string& title, const std::string& why) {
  return "set title " + quoted(title) + " font ',14'\n"
         "unset border\nunset tics\nunset key\nset xrange [0:1]\nset yrange [0:1]\n"
         "set label 1 " + quoted(why) + " at graph 0.5, graph 0.5 center font ',13'\n"
         "plot 2 notitle\n";
}

// ---- latency ----------------------------------------------------------------------------------

struct latency_point {
  std::size_t category = 0;
  std::size_t series = 0;
  double x = 0;
  double p50_us = 0;
  double p99_us = 0;
};

struct latency_panel {
  std::string placement;
  std::vector<std::string> labels;  // per category
  std::vector<std::size_t> group;   // per category: the mechanism group it belongs to
  std::vector<double> start;        // per category: where its slot begins on the x axis
  std::vector<double> width;        // per category: wider when many implementations share it
  double extent = 0;                // all slots
  std::vector<latency_point> points;
};

// Markers of one category sit side by side, this far apart (x units: a plain slot is 1 wide).
constexpr double marker_gap = 0.3;

// Categories are a mechanism (with its waiting mode: "shm blocking", "shm spin") and a size. The
// peer libraries are "shm" rows in their own waiting mode, so each sits beside the ipcx ring (and
// the raw futex) that waits the same way. Limits are named by what they measure.
std::string latency_group(const row& r) {
  if (r.impl == "limit" || r.mode == "default" || r.mode.empty()) return r.mechanism;
  return r.mechanism + " " + r.mode;
}

bool drawable_latency(const row& r) {
  return r.kind == "latency" && r.status == row_status::ok && r.rtt_p50_ns.has_value();
}

std::string placement_title(const std::string& placement) {
  if (placement == "cross-core") return "cross-core: the two processes on two CPUs";
  if (placement == "same-core") return "same-core: both processes on one CPU";
  return placement.empty() ? std::string("placement not recorded") : placement;
}

chart latency_chart(const std::vector<row>& rows, palette& colors) {
  chart c;
  c.name = "latency";
  const std::string title = "Round-trip latency: p50 (marker), bar up to p99";

  // Series: one per implementation over the whole chart, so both panels share colours and order.
  std::vector<std::string> series;
  std::vector<std::string> placements;
  for (const auto& r : rows) {
    if (!drawable_latency(r)) continue;
    if (std::find(series.begin(), series.end(), r.impl) == series.end()) series.push_back(r.impl);
    if (std::find(placements.begin(), placements.end(), r.placement) == placements.end())
      placements.push_back(r.placement);
  }
  if (series.empty()) {
    c.body = empty_body(title, "no latency rows with status ok in this run");
    return c;
  }
  std::stable_sort(series.begin(), series.end(), [](const std::string& a, const std::string& b) {
    return impl_rank(a) < impl_rank(b);
  });
  std::stable_sort(placements.begin(), placements.end(),
                   [](const std::string& a, const std::string& b) {
                     auto rank = [](const std::string& p) {
                       return p == "cross-core" ? 0 : p == "same-core" ? 1 : 2;
                     };
                     return rank(a) < rank(b);
                   });

  std::vector<latency_panel> panels;
  double widest = 0;  // the largest panel's slots
  for (const auto& placement : placements) {
    latency_panel p;
    p.placement = placement;
    std::vector<std::string> groups;
    std::vector<std::vector<std::size_t>> sizes;  // per group, ascending
    for (const auto& r : rows) {
      if (!drawable_latency(r) || r.placement != placement) continue;
      std::string g = latency_group(r);
      auto it = std::find(groups.begin(), groups.end(), g);
      if (it == groups.end()) {
        groups.push_back(g);
        sizes.emplace_back();
        it = groups.end() - 1;
      }
      auto& s = sizes[static_cast<std::size_t>(it - groups.begin())];
      if (std::find(s.begin(), s.end(), r.size) == s.end()) s.push_back(r.size);
    }
    std::map<std::pair<std::string, std::size_t>, std::size_t> category_of;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      std::sort(sizes[g].begin(), sizes[g].end());
      for (std::size_t size : sizes[g]) {
        category_of[{groups[g], size}] = p.labels.size();
        // Size 0: a limit that carries no message (the null system call).
        p.labels.push_back(size == 0 ? groups[g] : groups[g] + " " + size_label(size));
        p.group.push_back(g);
      }
    }
    // The same implementation measured twice in one category (the ipcx ring runs again beside
    // each peer library): the first measurement stands, as in the table.
    std::map<std::pair<std::size_t, std::size_t>, bool> taken;
    for (const auto& r : rows) {
      if (!drawable_latency(r) || r.placement != placement) continue;
      latency_point pt;
      pt.category = category_of.at({latency_group(r), r.size});
      pt.series = static_cast<std::size_t>(
          std::find(series.begin(), series.end(), r.impl) - series.begin());
      if (!taken.emplace(std::pair{pt.category, pt.series}, true).second) continue;
      pt.p50_us = static_cast<double>(*r.rtt_p50_ns) / 1000.0;
      pt.p99_us = r.rtt_p99_ns ? static_cast<double>(*r.rtt_p99_ns) / 1000.0 : pt.p50_us;
      pt.p99_us = std::max(pt.p99_us, pt.p50_us);
      p.points.push_back(pt);
    }
    // Each category gets a slot wide enough for the markers of the implementations it has, which
    // sit side by side in series order.
    std::stable_sort(p.points.begin(), p.points.end(),
                     [](const latency_point& a, const latency_point& b) {
                       return a.series < b.series;
                     });
    std::vector<std::size_t> present(p.labels.size(), 0), index_in(p.points.size(), 0);
    for (std::size_t k = 0; k < p.points.size(); ++k)
      index_in[k] = present[p.points[k].category]++;
    for (std::size_t i = 0; i < p.labels.size(); ++i) {
      p.start.push_back(p.extent);
      p.width.push_back(std::max(1.0, marker_gap * static_cast<double>(present[i])));
      p.extent += p.width.back();
    }
    for (std::size_t k = 0; k < p.points.size(); ++k) {
      auto& pt = p.points[k];
      double n = static_cast<double>(present[pt.category]);
      double w = p.width[pt.category];
      double step = std::min(marker_gap, 0.8 * w / n);
      pt.x = p.start[pt.category] + w / 2 +
             (static_cast<double>(index_in[k]) - (n - 1) / 2) * step;
    }
    widest = std::max(widest, p.extent);
    panels.push_back(std::move(p));
  }

  // Size: about 34 px per slot, a fixed band on the right for the legend.
  constexpr int legend_px = 230;
  c.width = std::clamp(140 + legend_px + static_cast<int>(34 * widest), 1000, 3200);
  const int panel_px = 470;
  c.height = 70 + panel_px * static_cast<int>(panels.size());
  const double left = 80.0 / c.width;
  const double right = 1.0 - static_cast<double>(legend_px) / c.width;
  const double top = 1.0 - 50.0 / c.height;
  const double panel_h = (top - 10.0 / c.height) / static_cast<double>(panels.size());
  const double title_pad = 30.0 / c.height;
  const double labels_pad = 125.0 / c.height;  // the rotated category names

  std::string& b = c.body;
  b += "set encoding utf8\n";
  b += "set multiplot title " + quoted(title) + " font ',15'\n";
  // Tics at 1, 2 and 5 of each decade: the same-core panel often spans less than one decade.
  b += "set logscale y 10\nset ytics nomirror (";
  for (double decade = 0.01; decade < 1e6; decade *= 10)
    for (double m : {1.0, 2.0, 5.0})
      b += (decade > 0.01 || m > 1 ? ", " : "") + quoted(num(m * decade)) + " " + num(m * decade);
  b += ")\nset ylabel 'round trip (µs)'\n";
  b += "set grid ytics lt 1 lc rgb '#d4d4d4' lw 1\n";
  b += "set errorbars 1.2\nset border 3\n";
  b += "set key outside right top vertical Left reverse noautotitle spacing 1.3 "
       "title 'implementation' box lc rgb '#bbbbbb'\n";
  for (std::size_t s = 0; s < series.size(); ++s) {
    style st = colors.of(series[s]);
    b += "set style line " + std::to_string(s + 1) + " lc rgb '" + st.color + "' pt " +
         std::to_string(st.point) + " ps 1.3 lw 1.6\n";
  }
  for (std::size_t pi = 0; pi < panels.size(); ++pi) {
    const auto& p = panels[pi];
    const double panel_top = top - static_cast<double>(pi) * panel_h;
    b += "set lmargin at screen " + num(left) + "\nset rmargin at screen " + num(right) + "\n";
    b += "set tmargin at screen " + num(panel_top - title_pad) + "\n";
    b += "set bmargin at screen " + num(panel_top - panel_h + labels_pad) + "\n";
    b += "set title " + quoted(placement_title(p.placement)) + " font ',13'\n";
    b += "set xrange [-0.1:" + num(p.extent + 0.1) + "]\n";
    b += "set xtics nomirror rotate by 40 right scale 0 (";
    for (std::size_t i = 0; i < p.labels.size(); ++i)
      b += (i ? ", " : "") + quoted(p.labels[i]) + " " + num(p.start[i] + p.width[i] / 2);
    b += ")\n";
    // A light band behind every other mechanism, so the sizes of one mechanism read as a group.
    b += "unset object\n";
    int object = 1;
    for (std::size_t i = 0; i < p.labels.size();) {
      std::size_t j = i;
      while (j < p.labels.size() && p.group[j] == p.group[i]) ++j;
      if (p.group[i] % 2 == 0)
        b += "set object " + std::to_string(object++) + " rectangle from first " +
             num(p.start[i]) + ", graph 0 to first " + num(p.start[j - 1] + p.width[j - 1]) +
             ", graph 1 behind fillcolor rgb '#f1f3f7' fillstyle solid 1.0 noborder\n";
      i = j;
    }
    std::string plot;
    for (std::size_t s = 0; s < series.size(); ++s) {
      std::string block = "$latency_" + std::to_string(pi) + "_" + std::to_string(s);
      std::string lines;
      for (const auto& pt : p.points)
        if (pt.series == s)
          lines += num(pt.x) + " " + num(pt.p50_us) + " " + num(pt.p99_us) + "\n";
      if (lines.empty()) continue;
      c.data += block + " << EOD\n" + lines + "EOD\n";
      plot += (plot.empty() ? "plot " : ", \\\n     ") + block +
              " using 1:2:2:3 with yerrorbars ls " + std::to_string(s + 1) + " title " +
              quoted(series[s]);
    }
    b += plot + "\n";
  }
  b += "unset multiplot\n";
  return c;
}

// ---- throughput and CPU -----------------------------------------------------------------------

// A full run streams through a dozen kernel mechanisms, raw and ipcx, in two placements, besides
// the ring, the limits and the peers: far too many lines for one plot. So each chart has a panel
// per family: the kernel mechanisms per placement (colour per mechanism, raw dashed beside ipcx
// solid), and shared memory (the ring's modes, the limits, the peer libraries: colour per
// implementation).

struct stream_series {
  std::string mechanism, impl, mode, placement;
  std::string label;
  std::map<std::size_t, const row*> by_size;  // the first row of each size
};

struct stream_panel {
  std::string title;
  bool kernel = false;  // raw and ipcx through kernel mechanisms
  std::vector<stream_series> lines;
};

bool kernel_family(const stream_series& s) {
  return (s.impl == "raw" || s.impl == "ipcx") && s.mechanism != "shm";
}

std::string stream_label(const stream_series& s, bool show_placement) {
  std::string label;
  if (s.impl == "limit") {
    label = "limit: " + s.mechanism;
  } else if (s.impl == "raw" || s.impl == "ipcx") {
    label = s.impl + " " + s.mechanism;
    if (!s.mode.empty() && s.mode != "default") label += " " + s.mode;
  } else {
    label = s.impl;  // a peer library: its name says how it waits
  }
  if (show_placement)
    label += s.placement == "same-core"    ? " (one core)"
             : s.placement == "cross-core" ? " (two cores)"
                                           : " (" + s.placement + ")";
  return label;
}

// The panels of a throughput-kind chart: rows with status ok for which `field` is set.
template <typename Field>
std::vector<stream_panel> stream_panels(const std::vector<row>& rows, Field field) {
  std::vector<stream_series> all;
  for (const auto& r : rows) {
    if (r.kind != "throughput" || r.status != row_status::ok || !field(r).has_value()) continue;
    auto it = std::find_if(all.begin(), all.end(), [&](const stream_series& s) {
      return s.mechanism == r.mechanism && s.impl == r.impl && s.mode == r.mode &&
             s.placement == r.placement;
    });
    if (it == all.end()) {
      all.push_back({r.mechanism, r.impl, r.mode, r.placement, "", {}});
      it = all.end() - 1;
    }
    it->by_size.emplace(r.size, &r);  // the ring again beside a peer: the first one stands
  }
  std::vector<stream_panel> panels;
  for (const char* placement : {"cross-core", "same-core", ""}) {
    stream_panel p;
    p.kernel = true;
    for (const auto& s : all) {
      bool kernel = kernel_family(s);
      bool here = *placement ? s.placement == placement
                             : s.placement != "cross-core" && s.placement != "same-core";
      if (kernel && here) p.lines.push_back(s);
    }
    if (p.lines.empty()) continue;
    p.title = std::string("kernel mechanisms, ") +
              (*placement ? placement : "other placements") + " (raw dashed, ipcx solid)";
    for (auto& l : p.lines) l.label = l.mechanism;
    panels.push_back(std::move(p));
  }
  stream_panel shared;
  shared.title = "shared memory: the ipcx ring, the limits, the peer libraries";
  for (const auto& s : all)
    if (!kernel_family(s)) shared.lines.push_back(s);
  if (!shared.lines.empty()) {
    std::stable_sort(shared.lines.begin(), shared.lines.end(),
                     [](const stream_series& a, const stream_series& b) {
                       return impl_rank(a.impl) < impl_rank(b.impl);
                     });
    // The placement is named only on lines that differ from the usual one (memcpy runs on one
    // core, the streams across two).
    std::map<std::string, int> count;
    for (const auto& l : shared.lines) ++count[l.placement];
    std::string usual;
    int most = 0;
    for (const auto& [placement, n] : count)
      if (n > most) usual = placement, most = n;
    for (auto& l : shared.lines) l.label = stream_label(l, l.placement != usual);
    panels.push_back(std::move(shared));
  }
  return panels;
}

// Kernel panels: one colour per mechanism, the same in every panel and chart.
constexpr const char* mechanism_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                            "#9467bd", "#8c564b", "#e377c2", "#17becf",
                                            "#bcbd22", "#393b79", "#ad494a", "#7f7f7f"};
constexpr int filled_points[] = {7, 5, 9, 11, 13, 15};  // each open one is one less

class mechanism_palette {
 public:
  std::size_t index(const std::string& mechanism) {
    auto it = std::find(seen_.begin(), seen_.end(), mechanism);
    if (it != seen_.end()) return static_cast<std::size_t>(it - seen_.begin());
    seen_.push_back(mechanism);
    return seen_.size() - 1;
  }

 private:
  std::vector<std::string> seen_;
};

// The style of each line, as plot options.
std::vector<std::string> stream_styles(const stream_panel& p, palette& colors,
                                       mechanism_palette& mechanisms) {
  std::vector<std::string> out;
  if (p.kernel) {
    for (const auto& l : p.lines) {
      std::size_t m = mechanisms.index(l.mechanism);
      int point = filled_points[m % std::size(filled_points)];
      bool raw = l.impl == "raw";
      out.push_back("lc rgb '" + std::string(mechanism_colors[m % std::size(mechanism_colors)]) +
                    "' dt " + (raw ? "2" : "1") + " pt " + std::to_string(raw ? point - 1 : point) +
                    " ps 1.1 lw " + (raw ? "1.4" : "2"));
    }
    return out;
  }
  // Shared memory: the colour says the implementation, the dash and marker which of its lines.
  constexpr int dashes[] = {1, 2, 4, 5, 3};
  constexpr int points[] = {7, 6, 5, 4, 9, 8};
  std::map<std::string, int> seen;
  for (const auto& l : p.lines) {
    style st = colors.of(l.impl);
    int k = seen[l.impl]++;
    int point = k == 0 ? st.point : points[k % std::size(points)];
    out.push_back("lc rgb '" + st.color + "' dt " +
                  std::to_string(dashes[k % std::size(dashes)]) + " pt " + std::to_string(point) +
                  " ps 1.2 lw " + (l.impl == "ipcx" ? "2.4" : "1.7"));
  }
  return out;
}

// The x axis, shared by every panel of a chart so they compare at a glance.
std::string size_axis(const std::vector<stream_panel>& panels) {
  std::vector<std::size_t> sizes;
  for (const auto& p : panels)
    for (const auto& l : p.lines)
      for (const auto& [size, r] : l.by_size)
        if (std::find(sizes.begin(), sizes.end(), size) == sizes.end()) sizes.push_back(size);
  std::sort(sizes.begin(), sizes.end());
  std::string out = "set logscale x 2\n";
  out += "set xrange [" + num(static_cast<double>(sizes.front()) / 1.5) + ":" +
         num(static_cast<double>(sizes.back()) * 1.5) + "]\n";
  out += "set xtics nomirror (";
  for (std::size_t i = 0; i < sizes.size(); ++i)
    out += (i ? ", " : "") + quoted(size_label(sizes[i])) + " " + std::to_string(sizes[i]);
  return out + ")\n";
}

// One datablock per line: size, then the values of `columns`.
template <typename... Columns>
std::string stream_data(const std::string& prefix, const stream_panel& p, Columns... columns) {
  std::string out;
  for (std::size_t i = 0; i < p.lines.size(); ++i) {
    out += "$" + prefix + "_" + std::to_string(i) + " << EOD\n";
    for (const auto& [size, r] : p.lines[i].by_size) {
      out += std::to_string(size);
      ((out += " " + num(columns(*r))), ...);
      out += "\n";
    }
    out += "EOD\n";
  }
  return out;
}

// A kernel panel's legend names each mechanism once, then the two line styles; a shared-memory
// panel's names each line.
std::string stream_plot(const std::string& prefix, const stream_panel& p,
                        const std::vector<std::string>& styles, int column, bool key) {
  std::string out = "plot ";
  auto add = [&](const std::string& item) {
    out += (out.size() > 5 ? ", \\\n     " : "") + item;
  };
  for (std::size_t i = 0; i < p.lines.size(); ++i) {
    std::string title = key && !p.kernel ? "title " + quoted(p.lines[i].label) : "notitle";
    add("$" + prefix + "_" + std::to_string(i) + " using 1:" + std::to_string(column) +
        " with linespoints " + styles[i] + " " + title);
  }
  if (key && p.kernel) {
    std::vector<std::string> named;
    for (std::size_t i = 0; i < p.lines.size(); ++i) {
      if (std::find(named.begin(), named.end(), p.lines[i].mechanism) != named.end()) continue;
      named.push_back(p.lines[i].mechanism);
      std::string solid = styles[i];
      if (p.lines[i].impl == "raw") {  // the legend shows each colour in the ipcx style
        solid.replace(solid.find(" dt 2"), 5, " dt 1");
        auto pt = solid.find(" pt ") + 4;
        auto end = solid.find(' ', pt);
        solid.replace(pt, end - pt, std::to_string(std::stoi(solid.substr(pt, end - pt)) + 1));
      }
      add("keyentry with linespoints " + solid + " title " + quoted(p.lines[i].mechanism));
    }
    add("keyentry with linespoints lc rgb '#333333' dt 2 pt 6 lw 1.4 title 'raw'");
    add("keyentry with linespoints lc rgb '#333333' dt 1 pt 7 lw 2 title 'ipcx'");
  }
  return out + "\n";
}

constexpr int stream_legend_px = 310;  // the band right of a stream chart that holds its legends
const std::string stream_key =
    "set key outside right top vertical Left reverse spacing 1.2 box lc rgb '#bbbbbb'\n";
const std::string log_grid = "set grid xtics ytics lt 1 lc rgb '#d4d4d4' lw 1\n";

// Decades of nanoseconds labelled with their unit ("100 ns", "10 µs"): minor tics need automatic
// major ones, so these go without.
std::string duration_tics() {
  std::string out = "set ytics nomirror (";
  const char* units[] = {"ns", "µs", "ms", "s"};
  double value = 1;
  for (int unit = 0; unit < 4; ++unit)
    for (int step = 1; step <= 100; step *= 10, value *= 10)
      out += (value > 1 ? ", '" : "'") + std::to_string(step) + " " + units[unit] + "' " +
             num(value);
  return out + ")\n";
}

std::string at_screen(const char* side, double v) {
  return "set " + std::string(side) + "margin at screen " + num(v) + "\n";
}

chart throughput_chart(const std::vector<row>& rows, palette& colors,
                       mechanism_palette& mechanisms) {
  chart c;
  c.name = "throughput";
  const std::string title = "One-way throughput by message size (median over repetitions)";
  auto panels = stream_panels(rows, [](const row& r) { return r.msgs_per_s; });
  if (panels.empty()) {
    c.body = empty_body(title, "no throughput rows with status ok in this run");
    return c;
  }
  // A row of two plots per panel: messages/s, and the same lines as payload bandwidth.
  const int row_px = 430;
  c.width = 1700;
  c.height = 85 + row_px * static_cast<int>(panels.size());  // + the size axis name
  const double w = c.width, h = c.height;
  const double plot_w = (w - 90 - 95 - stream_legend_px - 10) / 2;
  auto mb = [](const row& r) {
    return r.mb_per_s ? *r.mb_per_s : *r.msgs_per_s * static_cast<double>(r.size) / 1e6;
  };
  std::string& b = c.body;
  b += "set encoding utf8\n";
  b += "set multiplot title " + quoted(title) + " font ',15'\n";
  b += size_axis(panels) + log_grid + "set logscale y 10\nset mytics 10\nset border 3\n";
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const auto& p = panels[i];
    std::string prefix = "throughput_" + std::to_string(i);
    c.data += stream_data(prefix, p, [](const row& r) { return *r.msgs_per_s; }, mb);
    auto styles = stream_styles(p, colors, mechanisms);
    double top = 1.0 - (55.0 + row_px * static_cast<double>(i)) / h;
    b += at_screen("t", top - 28 / h) + at_screen("b", top - (row_px - 45) / h);
    b += at_screen("l", 90 / w) + at_screen("r", (90 + plot_w) / w);
    // The size axis is named once, under the last row, where it does not meet a title.
    b += i + 1 == panels.size() ? "set xlabel 'message size'\n" : "unset xlabel\n";
    b += "set title " + quoted(p.title + ": messages/s") + " font ',12'\n";
    b += "set ylabel 'messages/s'\nset format y '%.0s%c'\nset ytics nomirror\nunset key\n";
    b += stream_plot(prefix, p, styles, 2, false);
    b += at_screen("l", (90 + plot_w + 95) / w) + at_screen("r", (90 + 2 * plot_w + 95) / w);
    b += "set title 'payload bandwidth (MB = 10^6 bytes)' font ',12'\n";
    b += "set ylabel 'MB/s'\nset format y '%g'\n" + stream_key;
    b += stream_plot(prefix, p, styles, 3, true);
  }
  b += "unset multiplot\n";
  return c;
}

chart cpu_chart(const std::vector<row>& rows, palette& colors, mechanism_palette& mechanisms) {
  chart c;
  c.name = "cpu";
  const std::string title = "CPU time per message, one-way streams (producer + consumer)";
  // memcpy is one process copying: its CPU time is not a producer and a consumer's.
  std::vector<row> streams;
  for (const auto& r : rows)
    if (r.mechanism != "memcpy") streams.push_back(r);
  auto panels = stream_panels(streams, [](const row& r) { return r.cpu_ns_per_msg; });
  if (panels.empty()) {
    c.body = empty_body(title, "no throughput rows with a CPU time in this run");
    return c;
  }
  const int row_px = 420;
  c.width = 1300;
  c.height = 85 + row_px * static_cast<int>(panels.size());  // + the size axis name
  const double w = c.width, h = c.height;
  std::string& b = c.body;
  b += "set encoding utf8\n";
  b += "set multiplot title " + quoted(title) + " font ',15'\n";
  b += size_axis(panels) + log_grid + "set logscale y 10\nset border 3\n" + duration_tics();
  b += "set ylabel 'CPU time per message (user + system)'\n" + stream_key;
  b += at_screen("l", 100 / w) + at_screen("r", 1.0 - stream_legend_px / w);
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const auto& p = panels[i];
    std::string prefix = "cpu_" + std::to_string(i);
    // The panels point into `streams`: their data is written here, while it lives.
    c.data += stream_data(prefix, p, [](const row& r) { return *r.cpu_ns_per_msg; });
    double top = 1.0 - (55.0 + row_px * static_cast<double>(i)) / h;
    b += at_screen("t", top - 28 / h) + at_screen("b", top - (row_px - 45) / h);
    b += i + 1 == panels.size() ? "set xlabel 'message size'\n" : "unset xlabel\n";
    b += "set title " + quoted(p.title) + " font ',12'\n";
    b += stream_plot(prefix, p, stream_styles(p, colors, mechanisms), 2, true);
  }
  b += "unset multiplot\n";
  return c;
}

// ---- running gnuplot --------------------------------------------------------------------------

// gnuplot's full path from PATH, or empty.
std::string find_gnuplot() {
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? end : end - start);
    if (dir.empty()) dir = ".";  // an empty PATH entry is the current directory
    std::string candidate = dir + "/gnuplot";
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    if (end == std::string::npos) return {};
    start = end + 1;
  }
}

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// gnuplot's stderr as one line: its caret lines dropped, the rest joined.
std::string one_line(const std::string& text) {
  std::string out, line;
  auto flush = [&] {
    auto first = line.find_first_not_of(" \t\r");
    bool caret_only = line.find_first_not_of(" \t\r^") == std::string::npos;
    if (first != std::string::npos && !caret_only) {
      auto last = line.find_last_not_of(" \t\r");
      out += (out.empty() ? "" : " | ") + line.substr(first, last - first + 1);
    }
    line.clear();
  };
  for (char c : text) {
    if (c == '\n') {
      flush();
    } else {
      line += c;
    }
  }
  flush();
  return out;
}

bool run_gnuplot(const std::string& gnuplot, const std::string& script, std::string& error) {
  const char* tmp = std::getenv("TMPDIR");
  std::string name = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                     "/ipcx-plot-XXXXXX";
  unique_fd script_fd(::mkostemp(name.data(), O_CLOEXEC));
  if (!script_fd) {
    error = errno_text(errno, "mkostemp", name);
    return false;
  }
  ::unlink(name.c_str());  // gnuplot reads it through the open descriptor
  if (!write_all(script_fd.get(), script) || ::lseek(script_fd.get(), 0, SEEK_SET) != 0) {
    error = errno_text(errno, "write", name);
    return false;
  }
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    error = errno_text(errno, "pipe2", "gnuplot's stderr");
    return false;
  }
  unique_fd err_read(ends[0]), err_write(ends[1]);

  // Everything the child needs is made before fork: between fork and exec it only calls
  // async-signal-safe functions.
  std::string script_arg = "/dev/stdin";
  std::string default_settings = "-d";  // ignore the user's ~/.gnuplot
  char* argv[] = {const_cast<char*>(gnuplot.c_str()), default_settings.data(), script_arg.data(),
                  nullptr};
  pid_t pid = ::fork();
  if (pid < 0) {
    error = errno_text(errno, "fork", gnuplot);
    return false;
  }
  if (pid == 0) {
    // Above 2 first, so no dup2 below can overwrite the other source (stdin or stdout may have
    // been closed, and the descriptors then landed on 0..2).
    int in = ::fcntl(script_fd.get(), F_DUPFD_CLOEXEC, 3);
    int err = ::fcntl(err_write.get(), F_DUPFD_CLOEXEC, 3);
    if (in < 0 || err < 0 || ::dup2(in, 0) < 0 || ::dup2(err, 1) < 0 || ::dup2(err, 2) < 0)
      ::_exit(126);
    ::execv(argv[0], argv);
    ::_exit(127);
  }
  err_write.reset();
  script_fd.reset();

  std::string output;
  bool timed_out = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(gnuplot_timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{err_read.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;  // cannot watch it: wait for the exit below, without its words
    if (ready == 0) continue;
    char buffer[4096];
    ssize_t n = ::read(err_read.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of file: gnuplot exited (or closed its stderr)
    if (output.size() < max_error_text)
      output.append(buffer, std::min(static_cast<std::size_t>(n), max_error_text - output.size()));
  }
  // It closed its stderr (or the time is up): wait for its exit, to the same deadline.
  int status = 0;
  for (;;) {
    if (!timed_out && std::chrono::steady_clock::now() >= deadline) timed_out = true;
    if (timed_out) ::kill(pid, SIGKILL);
    pid_t got = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) {
      error = errno_text(errno, "waitpid", gnuplot);
      return false;
    }
    if (got == 0) ::usleep(2000);
  }
  if (timed_out) {
    error = "gnuplot: still running after " + std::to_string(gnuplot_timeout_ms / 1000) +
            " s; killed";
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string what = one_line(output);
  if (WIFEXITED(status) && (WEXITSTATUS(status) == 127 || WEXITSTATUS(status) == 126) &&
      what.empty())
    what = "could not execute " + gnuplot;
  if (what.empty())
    what = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                               : "exit status " + std::to_string(WEXITSTATUS(status));
  error = "gnuplot: " + what;
  return false;
}

}  // namespace

const std::vector<std::string>& plot_names() {
  static const std::vector<std::string> names = {"latency", "throughput", "cpu"};
  return names;
}

bool write_plots(const std::vector<row>& rows, const std::string& prefix, std::string& error) {
  std::string gnuplot = find_gnuplot();
  if (gnuplot.empty()) {
    error = "gnuplot not found; apt-get install gnuplot-nox";
    return false;
  }
  palette colors;
  mechanism_palette mechanisms;
  std::vector<chart> charts;
  charts.push_back(latency_chart(rows, colors));
  charts.push_back(throughput_chart(rows, colors, mechanisms));
  charts.push_back(cpu_chart(rows, colors, mechanisms));

  std::string script = "set encoding utf8\n";
  for (const auto& c : charts) script += c.data;
  std::vector<std::string> outputs;
  for (const auto& c : charts) {
    for (bool png : {true, false}) {
      std::string path = prefix + "-" + c.name + (png ? ".png" : ".svg");
      outputs.push_back(path);
      script += png ? png_terminal(c) : svg_terminal(c);
      script += "set output " + quoted(path) + "\n" + c.body + "unset output\nreset\n";
    }
  }

  // Made here, not by gnuplot, so an unwritable PREFIX is reported with its path and errno; and
  // on failure every output goes, so no half-written or stale chart stays behind.
  auto remove_outputs = [&](std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) ::unlink(outputs[i].c_str());
  };
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    unique_fd fd(::open(outputs[i].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
      error = errno_text(errno, "open", outputs[i]);
      remove_outputs(i);
      return false;
    }
  }
  if (!run_gnuplot(gnuplot, script, error)) {
    remove_outputs(outputs.size());
    return false;
  }
  for (const auto& path : outputs) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_size == 0) {
      error = "gnuplot: wrote nothing to " + path;
      remove_outputs(outputs.size());
      return false;
    }
  }
  return true;
}

}  // namespace ipcx::bench
