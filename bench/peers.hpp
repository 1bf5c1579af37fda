// The peer libraries ipcx is measured against, on the same work as the ipcx rings: each peer case
// runs the peer in the session's "raw" slot and an ipcx ring in the "ipcx" slot, in alternating
// repetitions in the same pair of processes (bench/peer_case.hpp), so ipcx/peer ratios come from
// one run, as ipcx/raw ratios do. A peer is built in only when CMake finds its library
// (bench/CMakeLists.txt); peers() lists those that are.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runner.hpp"

namespace ipcx::bench {

struct peer_entry {
  std::string_view name;  // the rows' impl: "boost-mq", "zmq-ipc", "iceoryx-poll"...
  // The peer's own waiting ("spin" for busy-polling, else "blocking"), and the ipcx ring mode
  // measured beside it for latency and for throughput. The defaults are a blocking peer's.
  std::string_view mode = "blocking";
  std::string_view ipcx_latency_mode = "blocking";
  std::string_view ipcx_throughput_mode = "adaptive";
  mechanism_main body;                // spec.kind says latency or throughput
  void (*cleanup)(const case_spec&);  // removes what a case of this peer may have left
  std::string (*version)();           // "4.3.4", for the JSON
  // A daemon the peer needs for the whole run (iceoryx's RouDi), or null. start() gets the message
  // sizes of the run (to size memory pools) and returns "" or why it could not start; the peer's
  // cases are then n/a with that reason. stop() ends it (by its pid) and removes what it made.
  std::string (*start)(std::span<const std::size_t> sizes) = nullptr;
  void (*stop)() = nullptr;
};

// The peers built into this binary, in table order.
const std::vector<peer_entry>& peers();

// Each built-in peer's entry, defined in bench/peers/NAME.cpp.
std::vector<peer_entry> boost_mq_peers();
std::vector<peer_entry> zmq_peers();
std::vector<peer_entry> nng_peers();
std::vector<peer_entry> iceoryx_peers();

}  // namespace ipcx::bench
