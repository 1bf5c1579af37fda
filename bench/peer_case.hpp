// The frame of every peer case: the peer library in the session's "raw" slot, the ipcx ring in the
// "ipcx" slot, alternating repetitions in one pair of pinned processes.
//
// A peer supplies one endpoint type:
//
//   class my_peer : public endpoint_base {
//    public:
//     // Runs in both processes after the fork, initiator and responder alike (s.is_responder()),
//     // after the ipcx rings are set up. It may order its own set-up with s.tell_peer() /
//     // s.hear_peer() (e.g. "bound" before the other side connects); both sides must make the
//     // same number of those calls. one_way: a throughput case, in which the initiator only
//     // sends and the responder only receives; otherwise a ping-pong (both directions).
//     // On failure: s.unavailable(impl::raw, row_status::failed, "call(object): cause").
//     my_peer(session& s, bool one_way);
//     bool send(const std::byte* data, std::size_t size);  // false + error_ on failure
//     ssize_t recv(std::byte* data, std::size_t size);     // bytes, or -1 + error_
//   };
//   int my_peer_main(session& s) { return peer_case_main<my_peer>(s); }
//
// Names the peer creates contain spec.tag (spec.ipc_name("..."), spec.path("...")), so the
// peer's cleanup function can remove them after the case, whatever happened.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "runner.hpp"
#include "shm_parts.hpp"

namespace ipcx::bench {

template <typename Peer>
int peer_case_main(session& s) {
  const auto& spec = s.spec();
  const bool one_way = spec.kind == "throughput";
  const int ring_count = one_way ? 1 : 2;
  const std::size_t ring_bytes = ring::region_size(ring_capacity(spec.size));
  shared_region region(ring_count * ring_bytes + 2 * line);
  stream_control* controls = stream_controls(s);  // [0] the peer's, [1] the ring's
  std::span<std::byte> areas[2];
  if (region && controls != nullptr) {
    for (int i = 0; i < ring_count; ++i) areas[i] = region.take(ring_bytes);
  } else {
    std::string why = std::string("mmap(MAP_SHARED): ") + std::strerror(errno);
    s.unavailable(impl::raw, row_status::failed, why);
    s.unavailable(impl::ipcx, row_status::failed, why);
  }
  const bool responder = s.fork_responder();
  ipcx_rings rings;
  if (region && controls != nullptr) rings = set_up_rings(s, areas, ring_count);

  if (!one_way) {
    std::optional<ring_endpoint> ix;
    if (rings.tx && rings.rx) ix.emplace(&*rings.tx, &*rings.rx);
    Peer peer(s, false);
    return s.run(s.usable(impl::raw) ? &peer : nullptr,
                 s.usable(impl::ipcx) && ix ? &*ix : nullptr);
  }
  ring* tx = rings.tx ? &*rings.tx : nullptr;
  ring* rx = rings.rx ? &*rings.rx : nullptr;
  std::optional<stream_endpoint<ring_endpoint>> ix;
  if (controls != nullptr && (responder ? rx != nullptr : tx != nullptr))
    ix.emplace(&controls[1], tx, rx);
  std::optional<stream_endpoint<Peer>> peer;
  if (controls != nullptr) peer.emplace(&controls[0], s, true);
  return s.run(peer && s.usable(impl::raw) ? &*peer : nullptr,
               s.usable(impl::ipcx) && ix ? &*ix : nullptr);
}

}  // namespace ipcx::bench
