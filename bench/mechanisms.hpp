// The benchmarked mechanisms: how each sets up its ping-pong, raw and ipcx, and what each leaves
// behind to remove.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "runner.hpp"

namespace ipcx::bench {

struct mechanism_entry {
  std::string_view name;           // as in addresses and --only
  std::vector<std::size_t> sizes;  // round-trip message sizes by default
  std::size_t max_size;            // larger messages: n/a (a host or protocol limit)
  const char* no_stream;           // non-null: why there are no one-way throughput rows
  mechanism_main body;             // runs in the initiator (and, after its fork, the responder)
  // Removes every named object a case of this mechanism may have made, raw and ipcx, ignoring
  // what is already gone. Runs in the orchestrator after every case.
  void (*cleanup)(const case_spec&);
};

const std::vector<mechanism_entry>& mechanisms();

}  // namespace ipcx::bench
