// nng beside the ipcx ring, over ipc:// (a Unix stream socket): pair0 for round trips,
// push0/pull0 for the one-way stream. nng moves every message through its own threads (an aio
// completes on a task queue thread, which wakes the caller), so each hop costs several wake-ups.
//
// The responder listens and says so; the initiator dials. nng has no linger: closing a socket
// drops what its pipes have not written yet. The session never closes with a message in flight
// except in one place, the latency responder's last reply, so that side waits for the initiator
// to close the connection first (see ~nng_peer).
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "peer_case.hpp"
#include "peers.hpp"

namespace ipcx::bench {
namespace {

// How long the latency responder waits, at close, for the initiator to hang up (it does so right
// after taking the last reply; longer only when it failed, and then nothing is lost that counts).
constexpr auto hang_up_wait = std::chrono::seconds(5);

class nng_peer : public endpoint_base {
 public:
  nng_peer(session& s, bool one_way) : url_("ipc://" + s.spec().path("nng.sock")) {
    const bool responder = s.is_responder();
    wait_for_hang_up_ = responder && !one_way;
    std::string failure = set_up(responder, one_way);
    if (responder) {
      if (failure.empty())
        failure = call("nng_listen", nng_listen(socket_, url_.c_str(), nullptr, 0));
      s.tell_peer(failure.empty() ? "ok" : "fail");
    } else {
      auto heard = s.hear_peer();
      if (!heard) return;  // the session has recorded the failure
      if (*heard != "ok") {
        s.unavailable(impl::raw, row_status::failed, "");  // the responder says why
        return;
      }
      // A synchronous dial: the listener exists, so this connects or fails now.
      if (failure.empty()) failure = call("nng_dial", nng_dial(socket_, url_.c_str(), nullptr, 0));
    }
    if (!failure.empty()) s.unavailable(impl::raw, row_status::failed, failure);
  }
  nng_peer(const nng_peer&) = delete;
  nng_peer& operator=(const nng_peer&) = delete;
  ~nng_peer() {
    if (!open_) return;
    if (wait_for_hang_up_) {
      std::unique_lock lock(mutex_);
      pipes_changed_.wait_for(lock, hang_up_wait, [&] { return pipes_ == 0; });
    }
    nng_close(socket_);
  }

  bool send(const std::byte* data, std::size_t size) {
    // nng_send copies the bytes into a message; it does not write through the pointer.
    int rv = nng_send(socket_, const_cast<std::byte*>(data), size, 0);
    if (rv == 0) [[likely]]
      return true;
    error_ = "nng_send(" + url_ + "): " + nng_strerror(rv);
    return false;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    std::size_t got = size;  // in: the buffer's size; out: the message's
    int rv = nng_recv(socket_, data, &got, 0);
    if (rv != 0) [[unlikely]] {
      error_ = "nng_recv(" + url_ + "): " + nng_strerror(rv);
      return -1;
    }
    if (got > size) [[unlikely]] {
      error_ = "nng_recv(" + url_ + "): a message of " + std::to_string(got) +
               " bytes, larger than " + std::to_string(size);
      return -1;
    }
    return static_cast<ssize_t>(got);
  }

 private:
  std::string call(const char* what, int rv) {
    if (rv == 0) return {};
    return std::string(what) + "(" + url_ + "): " + nng_strerror(rv);
  }

  std::string set_up(bool responder, bool one_way) {
    int rv = one_way ? (responder ? nng_pull0_open(&socket_) : nng_push0_open(&socket_))
                     : nng_pair0_open(&socket_);
    if (rv != 0)
      return std::string(one_way ? (responder ? "nng_pull0_open" : "nng_push0_open")
                                 : "nng_pair0_open") +
             "(" + url_ + "): " + nng_strerror(rv);
    open_ = true;
    // The default limit, 1 MiB, would refuse the larger sizes --sizes allows: no limit.
    if (auto why = call("nng_socket_set_size(NNG_OPT_RECVMAXSZ)",
                        nng_socket_set_size(socket_, NNG_OPT_RECVMAXSZ, 0));
        !why.empty())
      return why;
    if (wait_for_hang_up_) {
      for (auto ev : {NNG_PIPE_EV_ADD_POST, NNG_PIPE_EV_REM_POST})
        if (auto why = call("nng_pipe_notify", nng_pipe_notify(socket_, ev, on_pipe, this));
            !why.empty())
          return why;
    }
    return {};
  }

  // Runs on an nng thread as the initiator's connection comes and goes.
  static void on_pipe(nng_pipe, nng_pipe_ev ev, void* arg) {
    auto* self = static_cast<nng_peer*>(arg);
    std::lock_guard lock(self->mutex_);
    self->pipes_ += ev == NNG_PIPE_EV_ADD_POST ? 1 : -1;
    self->pipes_changed_.notify_all();
  }

  nng_socket socket_ = NNG_SOCKET_INITIALIZER;
  bool open_ = false;
  std::string url_;
  bool wait_for_hang_up_ = false;
  std::mutex mutex_;
  std::condition_variable pipes_changed_;
  int pipes_ = 0;  // connections now attached (the latency responder only)
};

int nng_ipc_main(session& s) { return peer_case_main<nng_peer>(s); }

// nng removes the socket file of its listener when it closes; a crash leaves it.
void nng_ipc_cleanup(const case_spec& spec) { ::unlink(spec.path("nng.sock").c_str()); }

std::string nng_version_text() { return nng_version(); }

}  // namespace

std::vector<peer_entry> nng_peers() {
  return {peer_entry{.name = "nng-ipc",
                     .body = nng_ipc_main,
                     .cleanup = nng_ipc_cleanup,
                     .version = nng_version_text}};
}

}  // namespace ipcx::bench
