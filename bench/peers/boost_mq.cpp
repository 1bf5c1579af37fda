// Boost.Interprocess message_queue beside the ipcx ring: a queue of fixed-size slots in POSIX
// shared memory, guarded by a process-shared mutex and two condition variables; send and receive
// copy the message in and out and block when the queue is full or empty.
//
// Latency uses two queues (one each way), throughput one. The initiator creates them and says so
// before the responder opens them. A crash leaves them in /dev/shm: boost_mq_cleanup removes them.
#include <algorithm>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/version.hpp>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "peer_case.hpp"
#include "peers.hpp"

namespace ipcx::bench {
namespace {

namespace bip = boost::interprocess;

// Boost documents portable names as having no leading '/' (it adds one on POSIX systems), so
// the queue's object is /dev/shm/ipcx-bench-PID-N-boost-a.
std::string queue_name(const case_spec& spec, const char* stem) {
  return spec.ipc_name(stem).substr(1);
}

// As many slots as the ipcx ring holds messages of this size, within [16, 4096]: at least 16 so a
// 1 MiB stream keeps flowing (the ring holds two), at most 4096, already far more than a blocking
// queue needs to keep the producer from waiting on the consumer's every wake-up.
std::size_t queue_slots(std::size_t size) {
  return std::clamp<std::size_t>(ring_capacity(size) / size, 16, 4096);
}

class boost_mq_peer : public endpoint_base {
 public:
  boost_mq_peer(session& s, bool one_way) {
    const auto& spec = s.spec();
    // Latency: "a" carries initiator -> responder, "b" the replies. Throughput: "t" only.
    std::string forward = queue_name(spec, one_way ? "boost-t" : "boost-a");
    std::string back = one_way ? std::string() : queue_name(spec, "boost-b");
    std::string failure;
    auto make = [&](std::optional<bip::message_queue>& q, std::string& q_name,
                    const std::string& name, bool create) {
      if (name.empty() || !failure.empty()) return;
      q_name = name;
      try {
        if (create) {
          q.emplace(bip::create_only, name.c_str(), queue_slots(spec.size), spec.size,
                    bip::permissions(0600));
          owned_.push_back(name);
        } else {
          q.emplace(bip::open_only, name.c_str());
        }
      } catch (const std::exception& e) {
        failure =
            std::string(create ? "message_queue(create_only, " : "message_queue(open_only, ") +
            name + "): " + e.what();
      }
    };
    if (!s.is_responder()) {
      make(tx_, tx_name_, forward, true);
      make(rx_, rx_name_, back, true);
      s.tell_peer(failure.empty() ? "ok" : "fail");
    } else {
      auto heard = s.hear_peer();
      if (!heard) return;  // the session has recorded the failure
      if (*heard != "ok") {
        s.unavailable(impl::raw, row_status::failed, "");  // the initiator says why
        return;
      }
      make(rx_, rx_name_, forward, false);
      make(tx_, tx_name_, back, false);
    }
    if (!failure.empty()) s.unavailable(impl::raw, row_status::failed, failure);
  }
  boost_mq_peer(const boost_mq_peer&) = delete;
  boost_mq_peer& operator=(const boost_mq_peer&) = delete;
  // The creator unlinks its queues (the other process keeps its mapping); boost_mq_cleanup
  // catches what a crash leaves.
  ~boost_mq_peer() {
    tx_.reset();
    rx_.reset();
    for (const auto& name : owned_) bip::message_queue::remove(name.c_str());
  }

  bool send(const std::byte* data, std::size_t size) {
    try {
      tx_->send(data, size, 0);
      return true;
    } catch (const std::exception& e) {
      error_ = "message_queue::send(" + tx_name_ + "): " + e.what();
      return false;
    }
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    try {
      bip::message_queue::size_type got = 0;
      unsigned int priority = 0;
      rx_->receive(data, size, got, priority);
      return static_cast<ssize_t>(got);
    } catch (const std::exception& e) {
      error_ = "message_queue::receive(" + rx_name_ + "): " + e.what();
      return -1;
    }
  }

 private:
  std::vector<std::string> owned_;  // the queues this process created
  std::string tx_name_;
  std::string rx_name_;
  std::optional<bip::message_queue> tx_;
  std::optional<bip::message_queue> rx_;
};

int boost_mq_main(session& s) { return peer_case_main<boost_mq_peer>(s); }

void boost_mq_cleanup(const case_spec& spec) {
  for (const char* stem : {"boost-a", "boost-b", "boost-t"})
    bip::message_queue::remove(queue_name(spec, stem).c_str());
}

std::string boost_version() {
  std::string v = BOOST_LIB_VERSION;  // "1_74"
  std::replace(v.begin(), v.end(), '_', '.');
  return v;
}

}  // namespace

std::vector<peer_entry> boost_mq_peers() {
  return {peer_entry{.name = "boost-mq",
                     .body = boost_mq_main,
                     .cleanup = boost_mq_cleanup,
                     .version = boost_version}};
}

}  // namespace ipcx::bench
