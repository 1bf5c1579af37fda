// Charts of a benchmark run, drawn by gnuplot: `ipcx bench --plot PREFIX`.
//
// Three charts, each written as PREFIX-NAME.png and PREFIX-NAME.svg:
//   latency     round-trip p50 (a marker) with a bar up to p99, per mechanism and size, one series
//               per implementation (raw, ipcx, limit, each peer library); a panel per placement
//               (cross-core, same-core); log y axis in microseconds.
//   throughput  one-way messages/s and MB/s by message size, one line per (mechanism,
//               implementation, waiting mode); log axes. A panel per family: kernel mechanisms
//               per placement (colour per mechanism, raw dashed, ipcx solid), and shared memory
//               (the ring's modes, the limits, the peers: colour per implementation).
//   cpu         CPU time per message (producer + consumer) by message size, same panels and lines.
// Only rows with status ok and the chart's field set are drawn. A chart with nothing to draw is
// still written, saying so, so a stale chart of an earlier run never passes for this one's.
//
//   std::string error;
//   if (!ipcx::bench::write_plots(rows, "out/run1", error)) std::fprintf(stderr, "%s\n", ...);
//
// gnuplot (found in PATH) runs as a child process, with pngcairo when it has it, else libgd's png.
#pragma once

#include <string>
#include <vector>

#include "row.hpp"

namespace ipcx::bench {

// The chart names, in the order written: PREFIX-NAME.png and PREFIX-NAME.svg for each.
const std::vector<std::string>& plot_names();

// Writes the six files. Blocks until gnuplot is done (a few seconds at most; killed after 60 s).
// False with `error` set ("open(\"PATH\"): ...", "gnuplot not found; ...", "gnuplot: ...") when a
// file cannot be written or gnuplot fails; the files of a failed call are removed.
bool write_plots(const std::vector<row>& rows, const std::string& prefix, std::string& error);

}  // namespace ipcx::bench
