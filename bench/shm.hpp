// Shared-memory rows: the ipcx ring (ipcx/ring.hpp) over a MAP_SHARED region the two processes of
// a case share, in each waiting mode, beside the machine's limits measured in the same run.
//
// Latency (ping-pong over two rings, one each way) pairs ipcx with one limit per case, in the
// session's "raw" slot: a bare cache-line ping-pong ("cacheline": one atomic each way, both
// spinning), a minimal spinning SPSC ring written here ("raw-ring", a shared buffer per
// direction), or a raw futex ping-pong ("futex", blocking). Throughput streams one way through one
// ring for a fixed time; the raw ring is its limit. memcpy bandwidth is measured by the
// orchestrator itself (measure_memcpy). The rows are relabelled by the caller (bench.cpp): the
// session only knows "raw" and "ipcx".
#pragma once

#include <cstddef>
#include <cstdint>

#include "row.hpp"
#include "runner.hpp"

namespace ipcx::bench {

// The body of every shared-memory case: spec.kind, spec.mode and spec.limit say which.
int shm_main(session& s);

// Copies a `block`-byte buffer into another, over and over for about `duration_ns`, on `cpu`
// (the calling thread is pinned there for the measurement and then given its old affinity back).
// A throughput row: impl "limit", mechanism "memcpy", msgs_per_s = copies per second.
row measure_memcpy(std::size_t block, std::uint64_t duration_ns, int cpu);

// The cost of the cheapest system call (getppid, called through syscall(2) so no library cache
// answers it) on `cpu`: a latency row, impl "limit", mechanism "syscall", whose rtt_* fields are
// the time of one call (the median over eleven slices of 20000 calls).
row measure_null_syscall(int cpu);

}  // namespace ipcx::bench
