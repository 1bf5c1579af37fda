#include "peers.hpp"

namespace ipcx::bench {

const std::vector<peer_entry>& peers() {
  static const std::vector<peer_entry> all = [] {
    std::vector<peer_entry> out;
    auto add = [&](std::vector<peer_entry> some) {
      for (auto& p : some) out.push_back(p);
    };
#if IPCX_BENCH_ICEORYX
    add(iceoryx_peers());
#endif
#if IPCX_BENCH_BOOST
    add(boost_mq_peers());
#endif
#if IPCX_BENCH_ZMQ
    add(zmq_peers());
#endif
#if IPCX_BENCH_NNG
    add(nng_peers());
#endif
    (void)add;
    return out;
  }();
  return all;
}

}  // namespace ipcx::bench
