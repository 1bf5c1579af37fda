// Runs one benchmark case: a pair of pinned processes playing ping-pong over one mechanism, raw
// system calls and ipcx in alternating repetitions.
//
// Design: the orchestrator (the `ipcx bench` process) forks an *initiator* for each case and then
// only sleeps in poll(2) until the case reports, finishes or times out, so it never competes for
// the measured CPUs. The initiator pins itself, creates what must exist before the fork (pipes,
// queues), forks the *responder*, and both set up the rest (sockets listen in the responder and
// are joined by the initiator). They then agree on which implementations work and run the same
// schedule: k repetitions of each implementation, alternating raw/ipcx and ipcx/raw (ABBA) so a
// slow drift of the machine weighs on both alike. A repetition is `warmup` untimed round trips
// and `round_trips` timed ones; the initiator times each round trip with CLOCK_MONOTONIC and
// reports the repetition's percentiles to the orchestrator between repetitions (never during
// one). Every message carries a sequence number that both sides check.
//
// Failure handling: each process has its own report pipe to the orchestrator. A process that
// dies closes its pipe; the orchestrator then gives the other a moment to report and kills the
// case's process group. A case that makes no progress within its time limit is killed too. Named
// objects are removed by the orchestrator after every case, whatever happened.
#pragma once

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "row.hpp"

namespace ipcx::bench {

enum class impl { raw = 0, ipcx = 1 };
inline const char* impl_name(impl i) { return i == impl::raw ? "raw" : "ipcx"; }

struct case_spec {
  std::string mechanism;  // "pipe", "sysv-mq"...
  std::size_t size = 64;
  bool same_core = true;
  int cpu_initiator = 0;
  int cpu_responder = 0;
  int reps = 5;            // per implementation
  int round_trips = 1000;  // timed, per repetition
  int warmup = 100;        // untimed, before each repetition
  std::string tag;         // "ipcx-bench-PID-N": every named object of the case contains it
  long sysv_key_base = 0;  // keys sysv_key_base + 0..3 belong to the case
  // "fifo": both processes SCHED_FIFO priority 1, required; "other": the default policy; "auto":
  // SCHED_FIFO when permitted, else the default.
  std::string sched = "auto";
  // Shared-memory cases: "latency" (ping-pong) or "throughput" (one-way stream); the ring's
  // waiting strategy ("spin", "blocking", "adaptive"); the mechanism run in the "raw" slot
  // beside ipcx ("cacheline", "raw-ring", "futex"; empty: none, the ipcx row stands alone).
  std::string kind = "latency";
  std::string mode = "default";
  std::string limit;
  // Throughput: how long the producer streams per repetition (after `warmup` untimed messages).
  std::uint64_t stream_ns = 200'000'000;

  std::string path(std::string_view stem) const { return "/tmp/" + tag + "-" + std::string(stem); }
  std::string ipc_name(std::string_view stem) const { return "/" + tag + "-" + std::string(stem); }
  long key(int i) const { return sysv_key_base + i; }
  const char* placement() const { return same_core ? "same-core" : "cross-core"; }
};

inline std::uint64_t now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// The sequence number rides in the first 8 bytes of the message (7 for a signal).
inline void put_seq(std::byte* message, std::size_t size, std::uint64_t seq) {
  std::memcpy(message, &seq, size < 8 ? size : 8);
}
inline std::uint64_t get_seq(const std::byte* message, std::size_t size) {
  std::uint64_t seq = 0;
  std::memcpy(&seq, message, size < 8 ? size : 8);
  return seq;
}
inline std::uint64_t seq_mask(std::size_t size) {
  return size >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * size)) - 1;
}

// The view a mechanism's code has of its case, in the initiator and then also in the responder.
class session {
 public:
  session(const case_spec& spec, int initiator_report_fd, int responder_report_fd);
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session();

  const case_spec& spec() const { return spec_; }
  std::size_t size() const { return spec_.size; }

  // Marks an implementation unusable in this case: n/a (the host refuses the size...) or failed
  // (a setup call failed). Either process may call it; the initiator merges both views.
  void unavailable(impl which, row_status why, std::string note);
  bool usable(impl which) const { return state_[static_cast<int>(which)].status == row_status::ok; }

  // Forks the responder, pinned to its CPU. True in the responder, false in the initiator. If the
  // fork fails, both implementations are marked failed and the initiator carries on alone (run()
  // then just reports).
  bool fork_responder();
  bool is_responder() const { return responder_; }
  // The other process of the pair (0 before fork_responder).
  pid_t peer_pid() const { return peer_; }
  // A small MAP_SHARED area made with the session, before the responder's fork, so both processes
  // see it: the control blocks of one-way streams (stream.hpp). Null if mmap failed.
  void* stream_area() const { return stream_area_; }

  // One line of text to the other process, and waiting (10 s at most) for one from it. A
  // nullopt means the peer is gone or silent; the case has then failed (already recorded).
  void tell_peer(std::string_view line);
  std::optional<std::string> hear_peer();

  // Agrees with the peer on the usable implementations, runs the alternating repetitions and
  // reports; returns this process's exit code. `raw` or `ipcx` may be null when not usable.
  template <typename Raw, typename Ipcx>
  int run(Raw* raw, Ipcx* ipcx);

 private:
  template <typename Endpoint>
  bool initiate(Endpoint& endpoint, impl which);
  template <typename Endpoint>
  bool respond(Endpoint& endpoint, impl which);
  // One-way streams (endpoints with `one_way`): the initiator produces, the responder consumes.
  template <typename Endpoint>
  bool produce(Endpoint& endpoint, impl which);
  template <typename Endpoint>
  bool consume(Endpoint& endpoint, impl which);

  template <typename Endpoint>
  bool play(Endpoint& endpoint, impl which) {
    if constexpr (requires { Endpoint::one_way; })
      return responder_ ? consume(endpoint, which) : produce(endpoint, which);
    else
      return responder_ ? respond(endpoint, which) : initiate(endpoint, which);
  }

  bool agree();  // the state exchange; false if the peer vanished
  // Peak RSS per implementation: the kernel's high-water mark (VmHWM) is reset to the current
  // RSS (/proc/self/clear_refs "5") before each repetition and read after it.
  void reset_peak_rss();
  void note_peak_rss(impl which);
  // Test hook (responder only): IPCX_BENCH_FAULT=IMPL:exit|hang|bad-seq makes the responder die,
  // stop answering, or expect the wrong sequence number at the start of IMPL's first repetition.
  void inject_fault(impl which);
  void report(std::string_view line);
  void report_failure(impl which, const std::string& what);

  case_spec spec_;
  int report_fd_;      // this process's report pipe
  int other_report_fd_;  // the responder's, until fork_responder hands it over
  bool responder_ = false;
  pid_t peer_ = 0;
  int to_peer_ = -1;
  int from_peer_ = -1;
  std::string heard_;  // bytes from the peer not yet returned as lines
  struct state {
    row_status status = row_status::ok;
    std::string note;
  } state_[2];
  std::uint64_t seq_[2] = {0, 0};
  std::uint64_t rep_[2] = {0, 0};  // one-way repetitions started, per implementation
  std::vector<std::byte> tx_;
  std::vector<std::byte> rx_;
  std::vector<std::uint64_t> samples_;
  void* stream_area_ = nullptr;
  std::uint64_t peak_rss_kib_[2] = {0, 0};
};

// What one case produced: a raw row and an ipcx row (status, note, statistics).
struct case_outcome {
  row raw;
  row ipcx;
};

using mechanism_main = int (*)(session&);
// Forks the initiator, runs `body` in it, and collects the rows. Returns early, with the case's
// processes killed and its rows failed ("interrupted"), once interrupted() is true.
case_outcome run_case(const case_spec& spec, mechanism_main body);

// SIGINT and SIGTERM, while installed, set a flag instead of ending the process, so the case in
// progress can be killed and its objects removed. Not reentrant: one benchmark run at a time.
void install_interrupt_handlers();
void restore_interrupt_handlers();
bool interrupted();

// ---------------------------------------------------------------------------------------------
// Templates.

template <typename Endpoint>
bool session::initiate(Endpoint& ep, impl which) {
  const std::size_t size = spec_.size;
  const int total = spec_.warmup + spec_.round_trips;
  const std::uint64_t mask = seq_mask(size);
  std::uint64_t& seq = seq_[static_cast<int>(which)];
  std::byte* tx = tx_.data();
  std::byte* rx = rx_.data();
  for (int i = 0; i < total; ++i, ++seq) {
    put_seq(tx, size, seq);
    std::uint64_t start = now_ns();
    if (!ep.send(tx, size)) {
      report_failure(which, "initiator send: " + ep.error());
      return false;
    }
    auto got = ep.recv(rx, size);
    std::uint64_t end = now_ns();
    if (got < 0) {
      report_failure(which, "initiator recv: " + ep.error());
      return false;
    }
    if (static_cast<std::size_t>(got) != size || get_seq(rx, size) != (seq & mask)) {
      report_failure(which, "initiator: reply " + std::to_string(seq) + ": expected " +
                                std::to_string(size) + " bytes with sequence " +
                                std::to_string(seq & mask) + ", got " + std::to_string(got) +
                                " bytes with sequence " + std::to_string(get_seq(rx, size)));
      return false;
    }
    if (i >= spec_.warmup) samples_[static_cast<std::size_t>(i - spec_.warmup)] = end - start;
  }
  rep_stats s = summarize(samples_);
  report(std::string("rep ") + impl_name(which) + " " + std::to_string(s.p50) + " " +
         std::to_string(s.p99) + " " + std::to_string(s.p999) + " " + std::to_string(s.max) +
         " " + std::to_string(s.samples));
  return true;
}

template <typename Endpoint>
bool session::respond(Endpoint& ep, impl which) {
  const std::size_t size = spec_.size;
  const int total = spec_.warmup + spec_.round_trips;
  const std::uint64_t mask = seq_mask(size);
  std::uint64_t& seq = seq_[static_cast<int>(which)];
  std::byte* rx = rx_.data();
  for (int i = 0; i < total; ++i, ++seq) {
    auto got = ep.recv(rx, size);
    if (got < 0) {
      report_failure(which, "responder recv: " + ep.error());
      return false;
    }
    if (static_cast<std::size_t>(got) != size || get_seq(rx, size) != (seq & mask)) {
      report_failure(which, "responder: message " + std::to_string(seq) + ": expected " +
                                std::to_string(size) + " bytes with sequence " +
                                std::to_string(seq & mask) + ", got " + std::to_string(got) +
                                " bytes with sequence " + std::to_string(get_seq(rx, size)));
      return false;
    }
    if (!ep.send(rx, size)) {
      report_failure(which, "responder send: " + ep.error());
      return false;
    }
  }
  return true;
}

// A one-way endpoint has, besides send and recv, a small control block shared by both processes:
// `mark_warm(rep)`/`wait_warm(rep, until)` (the consumer has taken the warm-up messages) and
// `finish(rep, stats)`/`wait_finished(rep, until)` (the consumer's count, end time and CPU). The
// last message of a repetition carries the sequence number with its top bit set: "stop" (the top
// bit of what the message carries: a 7-byte signal message has 56 bits).
inline std::uint64_t stream_stop_bit(std::size_t size) { return (seq_mask(size) >> 1) + 1; }

std::uint64_t process_cpu_ns();  // getrusage(RUSAGE_SELF): user + system

template <typename Endpoint>
bool session::produce(Endpoint& ep, impl which) {
  const std::size_t size = spec_.size;
  std::uint64_t& seq = seq_[static_cast<int>(which)];
  std::uint64_t& rep = rep_[static_cast<int>(which)];
  ++rep;
  std::byte* tx = tx_.data();
  for (int i = 0; i < spec_.warmup; ++i, ++seq) {
    put_seq(tx, size, seq);
    if (!ep.send(tx, size)) {
      report_failure(which, "producer send: " + ep.error());
      return false;
    }
  }
  if (!ep.wait_warm(rep, now_ns() + 10'000'000'000)) {
    report_failure(which, "producer: the consumer did not take the warm-up messages within 10 s");
    return false;
  }
  std::uint64_t cpu_start = process_cpu_ns();
  std::uint64_t start = now_ns();
  std::uint64_t stop_at = start + spec_.stream_ns;
  std::uint64_t sent = 0;
  // The clock is read every 64 messages: cheap against a message, fine-grained against the run.
  for (bool last = false; !last; ++seq, ++sent) {
    last = (sent & 63) == 63 && now_ns() >= stop_at;
    put_seq(tx, size, last ? seq | stream_stop_bit(size) : seq);
    if (!ep.send(tx, size)) [[unlikely]] {
      report_failure(which, "producer send: " + ep.error());
      return false;
    }
  }
  std::uint64_t cpu = process_cpu_ns() - cpu_start;
  stream_stats theirs;
  if (!ep.wait_finished(rep, now_ns() + 10'000'000'000, theirs)) {
    report_failure(which, "producer: the consumer did not report within 10 s");
    return false;
  }
  if (theirs.messages != sent) {
    report_failure(which, "producer: sent " + std::to_string(sent) + " messages, the consumer "
                          "took " + std::to_string(theirs.messages));
    return false;
  }
  report(std::string("tput ") + impl_name(which) + " " + std::to_string(sent) + " " +
         std::to_string(theirs.elapsed_ns > start ? theirs.elapsed_ns - start : 0) + " " +
         std::to_string(cpu) + " " + std::to_string(theirs.consumer_cpu_ns));
  return true;
}

template <typename Endpoint>
bool session::consume(Endpoint& ep, impl which) {
  const std::size_t size = spec_.size;
  std::uint64_t& seq = seq_[static_cast<int>(which)];
  std::uint64_t& rep = rep_[static_cast<int>(which)];
  ++rep;
  std::byte* rx = rx_.data();
  const std::uint64_t stop_bit = stream_stop_bit(size);
  auto take = [&](std::uint64_t& got_seq) {
    auto got = ep.recv(rx, size);
    if (got < 0) {
      report_failure(which, "consumer recv: " + ep.error());
      return false;
    }
    got_seq = get_seq(rx, size);
    if (static_cast<std::size_t>(got) != size || (got_seq & ~stop_bit) != seq) {
      report_failure(which, "consumer: message " + std::to_string(seq) + ": expected " +
                                std::to_string(size) + " bytes with sequence " +
                                std::to_string(seq) + ", got " + std::to_string(got) +
                                " bytes with sequence " +
                                std::to_string(got_seq & ~stop_bit));
      return false;
    }
    return true;
  };
  std::uint64_t got_seq = 0;
  for (int i = 0; i < spec_.warmup; ++i, ++seq)
    if (!take(got_seq)) return false;
  std::uint64_t cpu_start = process_cpu_ns();
  ep.mark_warm(rep);
  stream_stats mine;
  do {
    if (!take(got_seq)) [[unlikely]]
      return false;
    ++seq;
    ++mine.messages;
  } while ((got_seq & stop_bit) == 0);
  mine.elapsed_ns = now_ns();  // an absolute time: the producer subtracts its start
  mine.consumer_cpu_ns = process_cpu_ns() - cpu_start;
  ep.finish(rep, mine);
  return true;
}

template <typename Raw, typename Ipcx>
int session::run(Raw* raw, Ipcx* ipcx) {
  if (raw == nullptr && usable(impl::raw))
    unavailable(impl::raw, row_status::failed, "no raw endpoint");
  if (ipcx == nullptr && usable(impl::ipcx))
    unavailable(impl::ipcx, row_status::failed, "no ipcx endpoint");
  if (!agree()) return 1;
  tx_.assign(spec_.size, std::byte{0});
  rx_.assign(spec_.size, std::byte{0});
  samples_.assign(static_cast<std::size_t>(spec_.round_trips), 0);
  for (int round = 0; round < spec_.reps; ++round) {
    // ABBA: raw first in even rounds, ipcx first in odd ones.
    impl order[2] = {impl::raw, impl::ipcx};
    if (round % 2 == 1) std::swap(order[0], order[1]);
    for (impl which : order) {
      if (!usable(which)) continue;
      if (responder_ && round == 0) inject_fault(which);
      bool ok = false;
      reset_peak_rss();
      if (which == impl::raw)
        ok = play(*raw, which);
      else
        ok = play(*ipcx, which);
      note_peak_rss(which);
      if (!ok) return 1;
    }
  }
  for (impl which : {impl::raw, impl::ipcx})
    if (peak_rss_kib_[static_cast<int>(which)] > 0)
      report(std::string("rss ") + impl_name(which) + " " +
             std::to_string(peak_rss_kib_[static_cast<int>(which)]));
  report("done");
  return 0;
}

}  // namespace ipcx::bench
