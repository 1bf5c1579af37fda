// The ipcx benchmark: every mechanism, as ipcx and as the raw system calls, in one run.
#pragma once

#include <string>
#include <vector>

namespace ipcx::bench {

struct options {
  bool quick = false;
  std::string json_path;  // empty: no JSON
};

// Runs the benchmark, prints the table; returns the process exit code.
int run(const options& opts);

}  // namespace ipcx::bench
