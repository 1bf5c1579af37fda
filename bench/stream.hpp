// One-way streams: the frame that turns a ping-pong endpoint into a producer/consumer pair for
// throughput cases (see session::produce/consume), with the control block the two processes
// share. Used by the shared-memory cases, the peers and every kernel mechanism.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "row.hpp"
#include "runner.hpp"

namespace ipcx::bench {

inline constexpr std::size_t line = 64;  // cache line bytes

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// What the consumer tells the producer, in the shared region (see session::produce).
struct stream_control {
  alignas(line) std::atomic<std::uint64_t> warm;
  alignas(line) std::atomic<std::uint64_t> finished;
  std::uint64_t messages;
  std::uint64_t end_ns;
  std::uint64_t consumer_cpu_ns;
};

inline bool wait_for(const std::atomic<std::uint64_t>& word, std::uint64_t value,
                     std::uint64_t until) {
  for (std::uint32_t i = 0;; ++i) {
    if (word.load(std::memory_order_acquire) >= value) return true;
    if ((i & 1023) == 0) {
      if (now_ns() >= until) return false;
      // A peer library's own threads (zmq's I/O thread, nng's workers) share this CPU and, under
      // SCHED_FIFO, this priority: without a yield the producer would keep them from writing the
      // messages whose arrival it waits for. Outside the timed part: it changes no figure.
      ::sched_yield();
    }
    cpu_relax();
  }
}

template <typename Base>
class stream_endpoint : public Base {
 public:
  static constexpr bool one_way = true;  // session::play streams instead of ping-ponging

  template <typename... Args>
  explicit stream_endpoint(stream_control* control, Args&&... args)
      : Base(std::forward<Args>(args)...), control_(control) {}

  void mark_warm(std::uint64_t rep) { control_->warm.store(rep, std::memory_order_release); }
  bool wait_warm(std::uint64_t rep, std::uint64_t until) {
    return wait_for(control_->warm, rep, until);
  }
  void finish(std::uint64_t rep, const stream_stats& mine) {
    control_->messages = mine.messages;
    control_->end_ns = mine.elapsed_ns;
    control_->consumer_cpu_ns = mine.consumer_cpu_ns;
    control_->finished.store(rep, std::memory_order_release);
  }
  bool wait_finished(std::uint64_t rep, std::uint64_t until, stream_stats& theirs) {
    if (!wait_for(control_->finished, rep, until)) return false;
    theirs.messages = control_->messages;
    theirs.elapsed_ns = control_->end_ns;
    theirs.consumer_cpu_ns = control_->consumer_cpu_ns;
    return true;
  }

 private:
  stream_control* control_;
};

// ipcx through its public API: an object to send on and one to receive on (channels, or rings;
// one object both ways for pipes and sockets). A one-way side may leave the other null.
template <typename Object>
class api_endpoint {
 public:
  api_endpoint(Object* tx, Object* rx) : tx_(tx), rx_(rx) {}
  bool send(const std::byte* data, std::size_t size) {
    auto sent = tx_->send(std::span<const std::byte>(data, size));
    if (sent) [[likely]]
      return true;
    error_ = sent.error().message();
    return false;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    auto got = rx_->recv(std::span<std::byte>(data, size));
    if (got) [[likely]]
      return static_cast<ssize_t>(*got);
    error_ = got.error().message();
    return -1;
  }
  const std::string& error() const { return error_; }

 private:
  Object* tx_;
  Object* rx_;
  std::string error_;
};

// An endpoint used through a pointer, for stream_endpoint<endpoint_ref<E>> over an endpoint that
// already exists (the kernel mechanisms build theirs before they know the case's kind).
template <typename Endpoint>
class endpoint_ref {
 public:
  explicit endpoint_ref(Endpoint* endpoint) : endpoint_(endpoint) {}
  bool send(const std::byte* data, std::size_t size) { return endpoint_->send(data, size); }
  ssize_t recv(std::byte* data, std::size_t size) { return endpoint_->recv(data, size); }
  const std::string& error() const { return endpoint_->error(); }

 private:
  Endpoint* endpoint_;
};

// The session's shared stream area as the two control blocks of a case: [0] raw, [1] ipcx.
inline stream_control* stream_controls(session& s) {
  return static_cast<stream_control*>(s.stream_area());
}

}  // namespace ipcx::bench
