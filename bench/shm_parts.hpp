// The parts of the shared-memory benchmark that other cases reuse (the peers' cases pair a peer
// library with the same ipcx rings): an anonymous shared region made before the fork, the ring
// endpoint, the one-way stream frame with its control block, and the rings' set-up.
#pragma once

#include <sys/mman.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "ipcx/ring.hpp"
#include "runner.hpp"
#include "stream.hpp"

namespace ipcx::bench {

constexpr std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Bytes of ring data for messages of `size`: room for many small messages (fewer full/empty
// hand-overs), and at least two records of the largest (a record may take half the capacity).
inline std::size_t ring_capacity(std::size_t size) {
  return std::max<std::size_t>(std::size_t{1} << 20, std::bit_ceil(2 * (size + 16)));
}

// An anonymous MAP_SHARED mapping made before the fork: both processes see the same pages.
class shared_region {
 public:
  explicit shared_region(std::size_t bytes) : size_(round_up(bytes, 4096)) {
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) base_ = static_cast<std::byte*>(p);
  }
  shared_region(const shared_region&) = delete;
  shared_region& operator=(const shared_region&) = delete;
  ~shared_region() {
    if (base_ != nullptr) ::munmap(base_, size_);
  }
  explicit operator bool() const { return base_ != nullptr; }
  // Carves the next `bytes` (64-byte aligned) off the region.
  std::span<std::byte> take(std::size_t bytes) {
    std::span<std::byte> out(base_ + used_, bytes);
    used_ += round_up(bytes, line);
    return out;
  }

 private:
  std::byte* base_ = nullptr;
  std::size_t size_;
  std::size_t used_ = 0;
};

class endpoint_base {
 public:
  const std::string& error() const { return error_; }

 protected:
  std::string error_;
};

// --- ipcx ---------------------------------------------------------------------------------------

using ring_endpoint = api_endpoint<ring>;

inline std::uint32_t spin_of(const std::string& mode) {
  if (mode == "spin") return ring::spin_forever;
  if (mode == "blocking") return 0;
  return ring_default_spin;
}

// The ipcx rings of a case: the initiator formats them after the fork and says so; the responder
// then attaches (each side records its own pid, so neither may use a copy made before the fork).
// Latency: ring 0 carries initiator -> responder, ring 1 the replies. Throughput: ring 0 only.
struct ipcx_rings {
  std::optional<ring> tx;
  std::optional<ring> rx;
};
// Formats (initiator) or attaches (responder) `count` rings in `areas`, in the mode of the case.
ipcx_rings set_up_rings(session& s, std::span<std::byte> areas[2], int count);

}  // namespace ipcx::bench
