// ZeroMQ beside the ipcx ring, over ipc:// (a Unix stream socket) and tcp://127.0.0.1: PAIR for
// round trips, PUSH/PULL for the one-way stream. Each process has one context with one I/O
// thread; a message goes from the caller's thread to the I/O thread through an in-process pipe,
// then through the kernel, then the same way up on the other side.
//
// The responder binds (tcp: to port 0, the kernel picks one) and tells the initiator the endpoint;
// the initiator connects. Lossless: PAIR and PUSH block at the high-water mark rather than drop.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "peer_case.hpp"
#include "peers.hpp"

namespace ipcx::bench {
namespace {

// How long a closing socket may still deliver what it has queued. The session never closes with
// messages in flight to a live peer (the last reply is received before the initiator closes; the
// producer closes after the consumer counted everything), so this bounds only a close that
// follows a failure, when the peer may be gone.
constexpr int linger_ms = 1000;

// Messages each of the sender's and the receiver's queues may hold: about as many bytes as the
// ipcx ring holds (the default, 1000 messages a side, grew a sender to 683 MiB with 1 MiB ones).
int high_water_mark(std::size_t size) {
  return static_cast<int>(std::max<std::size_t>(16, ring_capacity(size) / size));
}

template <bool tcp>
class zmq_peer : public endpoint_base {
 public:
  zmq_peer(session& s, bool one_way) {
    const auto& spec = s.spec();
    const bool responder = s.is_responder();
    std::string failure;
    std::string step = "zmq_ctx_new";
    std::string object = "1 I/O thread";
    try {
      context_.emplace(1);
      step = "zmq_socket";
      object = one_way ? (responder ? "PULL" : "PUSH") : "PAIR";
      socket_.emplace(*context_, one_way
                                     ? (responder ? zmq::socket_type::pull : zmq::socket_type::push)
                                     : zmq::socket_type::pair);
      step = "zmq_setsockopt";
      socket_->set(zmq::sockopt::sndhwm, high_water_mark(spec.size));
      socket_->set(zmq::sockopt::rcvhwm, high_water_mark(spec.size));
      socket_->set(zmq::sockopt::linger, linger_ms);
      if (responder) {
        endpoint_ = tcp ? std::string("tcp://127.0.0.1:0") : "ipc://" + spec.path("zmq.sock");
        step = "zmq_bind";
        object = endpoint_;
        socket_->bind(endpoint_);
        step = "zmq_getsockopt(ZMQ_LAST_ENDPOINT)";
        endpoint_ = socket_->get(zmq::sockopt::last_endpoint);  // tcp: the port the kernel chose
      }
    } catch (const std::exception& e) {
      failure = step + "(" + object + "): " + e.what();
    }
    if (responder) {
      s.tell_peer(failure.empty() ? "ok " + endpoint_ : std::string("fail"));
    } else {
      auto heard = s.hear_peer();
      if (!heard) return;  // the session has recorded the failure
      if (!heard->starts_with("ok ")) {
        s.unavailable(impl::raw, row_status::failed, "");  // the responder says why
        return;
      }
      if (failure.empty()) {
        endpoint_ = heard->substr(3);
        try {
          socket_->connect(endpoint_);
        } catch (const std::exception& e) {
          failure = "zmq_connect(" + endpoint_ + "): " + e.what();
        }
      }
    }
    if (!failure.empty()) s.unavailable(impl::raw, row_status::failed, failure);
  }

  bool send(const std::byte* data, std::size_t size) {
    for (;;) {
      try {
        (void)socket_->send(zmq::const_buffer(data, size), zmq::send_flags::none);
        return true;
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal, not a failure: send again
        error_ = "zmq_send(" + endpoint_ + "): " + e.what();
        return false;
      }
    }
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    for (;;) {
      try {
        auto got = socket_->recv(zmq::mutable_buffer(data, size), zmq::recv_flags::none);
        if (!got) {  // EAGAIN: a blocking socket does not return it
          error_ = "zmq_recv(" + endpoint_ + "): no message";
          return -1;
        }
        if (got->truncated()) {
          error_ = "zmq_recv(" + endpoint_ + "): a message of " +
                   std::to_string(got->untruncated_size) + " bytes, larger than " +
                   std::to_string(size);
          return -1;
        }
        return static_cast<ssize_t>(got->size);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        error_ = "zmq_recv(" + endpoint_ + "): " + e.what();
        return -1;
      }
    }
  }

 private:
  // Declared before the socket: the socket closes first, then the context's termination waits
  // (up to the linger) for what the socket still had queued.
  std::optional<zmq::context_t> context_;
  std::optional<zmq::socket_t> socket_;
  std::string endpoint_;
};

int zmq_ipc_main(session& s) { return peer_case_main<zmq_peer<false>>(s); }
int zmq_tcp_main(session& s) { return peer_case_main<zmq_peer<true>>(s); }

// zmq unlinks the socket file of a bound ipc:// endpoint when it closes; a crash leaves it.
void zmq_ipc_cleanup(const case_spec& spec) { ::unlink(spec.path("zmq.sock").c_str()); }
void zmq_tcp_cleanup(const case_spec&) {}  // nothing named

std::string zmq_version_text() {
  int major = 0, minor = 0, patch = 0;
  ::zmq_version(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace

std::vector<peer_entry> zmq_peers() {
  return {peer_entry{.name = "zmq-ipc",
                     .body = zmq_ipc_main,
                     .cleanup = zmq_ipc_cleanup,
                     .version = zmq_version_text},
          peer_entry{.name = "zmq-tcp",
                     .body = zmq_tcp_main,
                     .cleanup = zmq_tcp_cleanup,
                     .version = zmq_version_text}};
}

}  // namespace ipcx::bench
