#include "runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace ipcx::bench {
namespace {

constexpr int peer_timeout_ms = 10'000;    // one handshake line from the other process
constexpr std::uint64_t setup_limit_ns = 15'000'000'000;   // until the initiator starts
constexpr std::uint64_t rep_base_ns = 3'000'000'000;       // per repetition, plus...
constexpr std::uint64_t rep_per_round_trip_ns = 1'000'000;  // ...1 ms per round trip (20x slack)
constexpr std::uint64_t exit_grace_ns = 1'000'000'000;     // the other process's last words

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // A failure leaves the process unpinned; the numbers then say so by their spread, and the
  // placement cannot be fixed from here anyway.
  ::sched_setaffinity(0, sizeof set, &set);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

std::uint64_t process_cpu_ns() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto ns = [](const timeval& t) {
    return static_cast<std::uint64_t>(t.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(t.tv_usec) * 1000u;
  };
  return ns(usage.ru_utime) + ns(usage.ru_stime);
}

constexpr std::size_t stream_area_bytes = 4096;

session::session(const case_spec& spec, int initiator_report_fd, int responder_report_fd)
    : spec_(spec), report_fd_(initiator_report_fd), other_report_fd_(responder_report_fd) {
  pin_to(spec_.cpu_initiator);
  void* area = ::mmap(nullptr, stream_area_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                      -1, 0);
  if (area != MAP_FAILED) stream_area_ = area;
  // SCHED_FIFO, inherited by the responder: between two tasks of equal real-time priority a
  // wake-up never preempts, so on one core every round trip takes the same path (each side
  // blocks in its receive). Under the default policy whether the woken task preempts the sender
  // depends on both tasks' recent run times, and a few nanoseconds more user code can flip a
  // repetition from one path to the other (a 15% step on unix stream sockets).
  bool fifo = false;
  if (spec_.sched != "other") {
    sched_param param{};
    param.sched_priority = 1;
    fifo = ::sched_setscheduler(0, SCHED_FIFO, &param) == 0;
    if (!fifo && spec_.sched == "fifo") {
      std::string why = errno_text("sched_setscheduler(SCHED_FIFO)");
      unavailable(impl::raw, row_status::failed, why);
      unavailable(impl::ipcx, row_status::failed, why);
    }
  }
  report(fifo ? "sched fifo" : "sched other");
}

session::~session() {
  if (stream_area_ != nullptr) ::munmap(stream_area_, stream_area_bytes);
  close_fd(to_peer_);
  close_fd(from_peer_);
  if (!responder_ && peer_ > 0) {
    // The responder exits right after its last reply; reap it so it cannot linger on the CPU the
    // next case measures. One that lingers (blocked on a dead initiator's queue) is killed.
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(peer_, nullptr, WNOHANG) == peer_) {
        peer_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (peer_ > 0) {
      ::kill(peer_, SIGKILL);
      ::waitpid(peer_, nullptr, 0);
    }
  }
  close_fd(other_report_fd_);
  close_fd(report_fd_);
}

void session::unavailable(impl which, row_status why, std::string note) {
  auto& s = state_[static_cast<int>(which)];
  // The first reason is the one that matters. An empty note means "the other process knows why"
  // (it failed there first), so a real reason may still replace it.
  if (s.status != row_status::ok && !(s.note.empty() && !note.empty())) return;
  s.status = why;
  s.note = one_line(std::move(note));
}

bool session::fork_responder() {
  int up[2];    // responder -> initiator
  int down[2];  // initiator -> responder
  if (::pipe2(up, O_CLOEXEC) != 0) {
    unavailable(impl::raw, row_status::failed, errno_text("pipe2"));
    unavailable(impl::ipcx, row_status::failed, errno_text("pipe2"));
    return false;
  }
  if (::pipe2(down, O_CLOEXEC) != 0) {
    unavailable(impl::raw, row_status::failed, errno_text("pipe2"));
    unavailable(impl::ipcx, row_status::failed, errno_text("pipe2"));
    ::close(up[0]);
    ::close(up[1]);
    return false;
  }
  pid_t initiator = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    unavailable(impl::raw, row_status::failed, errno_text("fork"));
    unavailable(impl::ipcx, row_status::failed, errno_text("fork"));
    for (int fd : {up[0], up[1], down[0], down[1]}) ::close(fd);
    return false;
  }
  if (pid == 0) {
    // Never outlive the initiator: a responder blocked on a queue would wait forever.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != initiator) ::_exit(1);
    pin_to(spec_.cpu_responder);
    close_fd(report_fd_);
    report_fd_ = std::exchange(other_report_fd_, -1);
    ::close(up[0]);
    ::close(down[1]);
    to_peer_ = up[1];
    from_peer_ = down[0];
    responder_ = true;
    peer_ = initiator;
    return true;
  }
  close_fd(other_report_fd_);
  ::close(up[1]);
  ::close(down[0]);
  to_peer_ = down[1];
  from_peer_ = up[0];
  peer_ = pid;
  return false;
}

void session::tell_peer(std::string_view line) {
  if (to_peer_ < 0) return;
  std::string text = one_line(std::string(line)) + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(to_peer_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the peer is gone: its next hear_peer, or ours, reports it
    done += static_cast<std::size_t>(n);
  }
}

std::optional<std::string> session::hear_peer() {
  const char* who = responder_ ? "the initiator" : "the responder";
  std::uint64_t until = now_ns() + std::uint64_t{peer_timeout_ms} * 1'000'000;
  for (;;) {
    if (auto newline = heard_.find('\n'); newline != std::string::npos) {
      std::string line = heard_.substr(0, newline);
      heard_.erase(0, newline + 1);
      return line;
    }
    std::uint64_t now = now_ns();
    if (from_peer_ < 0 || now >= until) {
      std::string what = from_peer_ < 0 ? std::string("no peer process")
                                        : std::string(who) + " said nothing for " +
                                              std::to_string(peer_timeout_ms / 1000) + " s";
      report_failure(impl::raw, what);
      report_failure(impl::ipcx, what);
      return std::nullopt;
    }
    pollfd p{.fd = from_peer_, .events = POLLIN, .revents = 0};
    int rc = ::poll(&p, 1, static_cast<int>((until - now) / 1'000'000) + 1);
    if (rc < 0 && errno != EINTR) {
      report_failure(impl::raw, errno_text("poll"));
      report_failure(impl::ipcx, errno_text("poll"));
      return std::nullopt;
    }
    if (rc <= 0) continue;
    char buffer[512];
    ssize_t n = ::read(from_peer_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string what = std::string(who) + " exited during setup";
      report_failure(impl::raw, what);
      report_failure(impl::ipcx, what);
      close_fd(from_peer_);
      return std::nullopt;
    }
    heard_.append(buffer, static_cast<std::size_t>(n));
  }
}

bool session::agree() {
  if (responder_) {
    for (int i = 0; i < 2; ++i)
      tell_peer("state " + std::to_string(i) + " " +
                std::to_string(static_cast<int>(state_[i].status)) + " " + state_[i].note);
    auto go = hear_peer();
    if (!go) return false;
    int mask = 0;
    if (std::sscanf(go->c_str(), "go %d", &mask) != 1) return false;
    for (int i = 0; i < 2; ++i)
      if ((mask & (1 << i)) == 0)
        unavailable(static_cast<impl>(i), row_status::not_available, "(decided by the initiator)");
    return true;
  }
  if (peer_ > 0) {
    for (int i = 0; i < 2; ++i) {
      auto line = hear_peer();
      if (!line) return false;
      int index = 0, status = 0, consumed = 0;
      if (std::sscanf(line->c_str(), "state %d %d %n", &index, &status, &consumed) < 2 ||
          index < 0 || index > 1) {
        report_failure(impl::raw, "garbled handshake from the responder: " + *line);
        report_failure(impl::ipcx, "garbled handshake from the responder: " + *line);
        return false;
      }
      if (status != 0)
        unavailable(static_cast<impl>(index), static_cast<row_status>(status),
                    line->substr(static_cast<std::size_t>(consumed)));
    }
  }
  int mask = 0;
  for (int i = 0; i < 2; ++i) {
    if (usable(static_cast<impl>(i)))
      mask |= 1 << i;
    else
      report("state " + std::string(impl_name(static_cast<impl>(i))) + " " +
             std::to_string(static_cast<int>(state_[i].status)) + " " + state_[i].note);
  }
  tell_peer("go " + std::to_string(mask));
  report("started");
  return true;
}

void session::inject_fault(impl which) {
  const char* fault = std::getenv("IPCX_BENCH_FAULT");
  if (fault == nullptr) return;
  std::string_view text(fault);
  std::string_view name = impl_name(which);
  if (!text.starts_with(name) || text.size() <= name.size() || text[name.size()] != ':') return;
  std::string_view kind = text.substr(name.size() + 1);
  if (kind == "exit") ::_exit(3);  // silently, as a crash would
  if (kind == "hang")
    for (;;) ::pause();
  if (kind == "bad-seq") seq_[static_cast<int>(which)] += 1000;
}

void session::report(std::string_view line) {
  std::string text = one_line(std::string(line)) + "\n";
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(report_fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the orchestrator is gone; nobody is left to tell
    done += static_cast<std::size_t>(n);
  }
}

void session::report_failure(impl which, const std::string& what) {
  report(std::string("fail ") + impl_name(which) + " " + what);
}

// ---------------------------------------------------------------------------------------------
// The orchestrator side.

namespace {

volatile std::sig_atomic_t interrupt_flag = 0;
struct sigaction previous_int {};
struct sigaction previous_term {};

void on_interrupt(int) { interrupt_flag = 1; }

struct report_stream {
  int fd = -1;
  std::string pending;
  std::vector<std::string> lines;
  bool eof = false;
  bool done = false;
};

// Reads what is there; returns true if the stream produced a progress line.
bool drain(report_stream& s) {
  char buffer[4096];
  ssize_t n = ::read(s.fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return false;
  if (n <= 0) {
    s.eof = true;
    return false;
  }
  s.pending.append(buffer, static_cast<std::size_t>(n));
  bool progress = false;
  for (auto nl = s.pending.find('\n'); nl != std::string::npos; nl = s.pending.find('\n')) {
    std::string line = s.pending.substr(0, nl);
    s.pending.erase(0, nl + 1);
    if (line == "done") s.done = true;
    if (line == "started" || line.starts_with("rep ") || line.starts_with("tput ")) progress = true;
    s.lines.push_back(std::move(line));
  }
  return progress;
}

// Applies one report line. `reported[i]` is set when implementation i failed by its own report.
// The median over k of ipcx repetition k's p50 divided by raw repetition k's p50. Repetitions run
// raw, ipcx, ipcx, raw, ...: repetition k of each ran side by side, under the same conditions,
// so a pair's ratio cancels the machine's slow drifts that a ratio of two medians would keep.
std::optional<double> paired_ratio(const std::vector<rep_stats>& raw,
                                   const std::vector<rep_stats>& ipcx) {
  std::vector<double> ratios;
  for (std::size_t k = 0; k < std::min(raw.size(), ipcx.size()); ++k)
    if (raw[k].p50 > 0)
      ratios.push_back(static_cast<double>(ipcx[k].p50) / static_cast<double>(raw[k].p50));
  if (ratios.empty()) return std::nullopt;
  std::sort(ratios.begin(), ratios.end());
  std::size_t mid = ratios.size() / 2;
  return ratios.size() % 2 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

// The same for one-way repetitions: the median over k of ipcx msgs/s over the limit's.
std::optional<double> paired_rate_ratio(const std::vector<stream_stats>& limit,
                                        const std::vector<stream_stats>& ipcx) {
  auto rate = [](const stream_stats& s) {
    return s.elapsed_ns ? static_cast<double>(s.messages) / static_cast<double>(s.elapsed_ns) : 0;
  };
  std::vector<double> ratios;
  for (std::size_t k = 0; k < std::min(limit.size(), ipcx.size()); ++k)
    if (rate(limit[k]) > 0) ratios.push_back(rate(ipcx[k]) / rate(limit[k]));
  if (ratios.empty()) return std::nullopt;
  std::sort(ratios.begin(), ratios.end());
  std::size_t mid = ratios.size() / 2;
  return ratios.size() % 2 ? ratios[mid] : (ratios[mid - 1] + ratios[mid]) / 2;
}

void apply(const std::string& line, row* rows[2], std::vector<rep_stats> reps[2],
           std::vector<stream_stats> streams[2], bool reported[2]) {
  auto which = [&](std::string_view name) -> int {
    if (name == "raw") return 0;
    if (name == "ipcx") return 1;
    return -1;
  };
  auto space1 = line.find(' ');
  if (space1 == std::string::npos) return;
  std::string verb = line.substr(0, space1);
  auto space2 = line.find(' ', space1 + 1);
  std::string who = line.substr(space1 + 1, space2 == std::string::npos ? std::string::npos
                                                                        : space2 - space1 - 1);
  std::string rest = space2 == std::string::npos ? "" : line.substr(space2 + 1);
  if (verb == "sched") {
    rows[0]->sched = rows[1]->sched = who;
    return;
  }
  int i = which(who);
  if (i < 0) return;
  if (verb == "rep") {
    rep_stats s;
    unsigned long long v[5];
    if (std::sscanf(rest.c_str(), "%llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4]) == 5) {
      s.p50 = v[0];
      s.p99 = v[1];
      s.p999 = v[2];
      s.max = v[3];
      s.samples = v[4];
      reps[i].push_back(s);
    }
  } else if (verb == "tput") {
    unsigned long long v[4];
    if (std::sscanf(rest.c_str(), "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) == 4)
      streams[i].push_back({v[0], v[1], v[2], v[3]});
  } else if (verb == "state") {
    int status = 0, consumed = 0;
    if (std::sscanf(rest.c_str(), "%d %n", &status, &consumed) >= 1 &&
        rows[i]->status == row_status::ok) {
      rows[i]->status = static_cast<row_status>(status);
      rows[i]->note = rest.substr(static_cast<std::size_t>(consumed));
    }
  } else if (verb == "rss") {
    unsigned long long kib = 0;
    if (std::sscanf(rest.c_str(), "%llu", &kib) == 1)
      rows[i]->peak_rss_kib = std::max<std::uint64_t>(rows[i]->peak_rss_kib.value_or(0), kib);
  } else if (verb == "fail") {
    if (rows[i]->status == row_status::not_available) return;
    reported[i] = true;
    if (rows[i]->status == row_status::ok) {
      rows[i]->status = row_status::failed;
      rows[i]->note = rest;
    } else if (rows[i]->note.find(rest) == std::string::npos) {
      rows[i]->note += "; " + rest;
    }
  }
}

}  // namespace

void install_interrupt_handlers() {
  interrupt_flag = 0;
  // Orphans of a case (a responder whose initiator died) become this process's children, so the
  // case's clean-up can reap them (run_case).
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  ::sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the orchestrator's poll must return and look
  ::sigaction(SIGINT, &action, &previous_int);
  ::sigaction(SIGTERM, &action, &previous_term);
}

void restore_interrupt_handlers() {
  ::sigaction(SIGINT, &previous_int, nullptr);
  ::sigaction(SIGTERM, &previous_term, nullptr);
}

bool interrupted() { return interrupt_flag != 0; }

void session::reset_peak_rss() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!::write(fd, "5", 1);
  ::close(fd);
}

void session::note_peak_rss(impl which) {
  std::FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "VmHWM: %llu kB", &kib) == 1) break;
  std::fclose(f);
  auto& peak = peak_rss_kib_[static_cast<int>(which)];
  peak = std::max<std::uint64_t>(peak, kib);
}

// Steal time of all CPUs (/proc/stat, in USER_HZ ticks): time the hypervisor ran something else
// while this guest wanted to run.
std::uint64_t steal_ticks() {
  std::FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) return 0;
  unsigned long long v[8] = {};
  int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                      &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  return n == 8 ? v[7] : 0;
}

case_outcome run_case(const case_spec& spec, mechanism_main body) {
  case_outcome out;
  for (row* r : {&out.raw, &out.ipcx}) {
    r->kind = spec.kind;
    r->mode = spec.mode;
    r->mechanism = spec.mechanism;
    r->size = spec.size;
    r->placement = spec.placement();
  }
  out.raw.impl = "raw";
  out.ipcx.impl = "ipcx";
  const std::uint64_t steal_before = steal_ticks();
  const std::uint64_t started = now_ns();

  auto fail_both = [&](const std::string& what) {
    for (row* r : {&out.raw, &out.ipcx}) {
      r->status = row_status::failed;
      r->note = what;
    }
    return out;
  };

  int initiator_pipe[2];
  int responder_pipe[2];
  if (::pipe2(initiator_pipe, O_CLOEXEC) != 0) return fail_both(errno_text("pipe2"));
  if (::pipe2(responder_pipe, O_CLOEXEC) != 0) {
    ::close(initiator_pipe[0]);
    ::close(initiator_pipe[1]);
    return fail_both(errno_text("pipe2"));
  }
  std::fflush(nullptr);  // the children leave by _exit, but a copied buffer must not print twice
  pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {initiator_pipe[0], initiator_pipe[1], responder_pipe[0], responder_pipe[1]})
      ::close(fd);
    return fail_both(errno_text("fork"));
  }
  if (pid == 0) {
    // The measured processes take the default actions again: only the orchestrator cleans up.
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::setpgid(0, 0);  // one group per case, so a kill takes the responder too
    ::close(initiator_pipe[0]);
    ::close(responder_pipe[0]);
    int rc = 1;
    {
      session s(spec, initiator_pipe[1], responder_pipe[1]);
      rc = body(s);
    }
    ::_exit(rc);
  }
  ::setpgid(pid, pid);  // also here: whichever runs first wins, the other fails harmlessly
  ::close(initiator_pipe[1]);
  ::close(responder_pipe[1]);

  report_stream initiator;
  initiator.fd = initiator_pipe[0];
  report_stream responder;
  responder.fd = responder_pipe[0];
  std::uint64_t rep_base = rep_base_ns;
  // Test hook: IPCX_BENCH_REP_LIMIT_MS shortens the per-repetition limit, so a test of a hanging
  // responder need not wait seconds.
  if (const char* limit = std::getenv("IPCX_BENCH_REP_LIMIT_MS"); limit != nullptr)
    rep_base = std::strtoull(limit, nullptr, 10) * 1'000'000;
  std::uint64_t rep_limit =
      rep_base + static_cast<std::uint64_t>(spec.warmup + spec.round_trips) *
                     rep_per_round_trip_ns;
  std::uint64_t current_limit = setup_limit_ns;
  std::uint64_t deadline = now_ns() + current_limit;
  std::uint64_t grace = 0;  // set when one process has finished
  std::string killed_why;
  while (!(initiator.eof && responder.eof)) {
    if (interrupted()) {
      killed_why = "interrupted";
      break;
    }
    std::uint64_t now = now_ns();
    std::uint64_t until = grace ? std::min(deadline, grace) : deadline;
    if (now >= until) {
      if (grace && now >= grace) {
        killed_why = initiator.eof ? "the responder did not exit after the initiator finished"
                                   : responder.done
                                         ? "the initiator did not finish after the responder"
                                         : "the responder exited before finishing";
      } else {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(current_limit) / 1e9);
        killed_why = std::string("no progress for ") + seconds + " s: killed";
      }
      break;
    }
    pollfd p[2];
    int count = 0;
    if (!initiator.eof) p[count++] = {.fd = initiator.fd, .events = POLLIN, .revents = 0};
    if (!responder.eof) p[count++] = {.fd = responder.fd, .events = POLLIN, .revents = 0};
    int rc = ::poll(p, static_cast<nfds_t>(count), static_cast<int>((until - now) / 1'000'000) + 1);
    if (rc < 0 && errno != EINTR) {
      killed_why = errno_text("poll");
      break;
    }
    if (rc <= 0) continue;
    for (int i = 0; i < count; ++i) {
      if (p[i].revents == 0) continue;
      report_stream& s = p[i].fd == initiator.fd ? initiator : responder;
      if (drain(s) && &s == &initiator) {
        current_limit = rep_limit;
        deadline = now_ns() + current_limit;
      }
    }
    // The other process gets a moment to finish and report. A responder that left without
    // finishing leaves the initiator blocked for good on some mechanisms (a queue has no
    // hang-up), so that wait is short.
    if ((initiator.eof || responder.eof) && !grace)
      grace = now_ns() + (initiator.eof || responder.done ? exit_grace_ns : exit_grace_ns / 4);
  }
  if (!killed_why.empty()) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // A killed responder is in the initiator's group; wait (briefly) until its pipe closes, so it is
  // gone before the next case and before its objects are removed.
  if (!responder.eof) {
    std::uint64_t until = now_ns() + exit_grace_ns;
    while (!responder.eof && now_ns() < until) {
      pollfd p{.fd = responder.fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 100) > 0) drain(responder);
    }
  }
  ::close(initiator.fd);
  ::close(responder.fd);
  // A responder whose initiator died was handed to this process (a child subreaper, see
  // install_interrupt_handlers): reap it, or it stays a zombie where PID 1 does not reap.
  while (::waitpid(-pid, nullptr, WNOHANG) > 0) {
  }

  row* rows[2] = {&out.raw, &out.ipcx};
  std::vector<rep_stats> reps[2];
  std::vector<stream_stats> streams[2];
  bool reported[2] = {false, false};
  for (const auto& line : responder.lines) apply(line, rows, reps, streams, reported);
  for (const auto& line : initiator.lines) apply(line, rows, reps, streams, reported);

  std::string case_error = killed_why;
  if (case_error.empty() && WIFSIGNALED(status))
    case_error = std::string("the initiator was killed by signal ") + strsignal(WTERMSIG(status));
  if (case_error.empty() && !initiator.done) case_error = "the initiator stopped early";
  for (int i = 0; i < 2; ++i) {
    row& r = *rows[i];
    const row& other = *rows[1 - i];
    std::size_t done = reps[i].size() + streams[i].size();
    if (r.status == row_status::ok && static_cast<int>(done) != spec.reps) {
      // Both implementations share the pair of processes: one failing stops the other too.
      std::string why = other.status == row_status::failed && reported[1 - i]
                            ? "stopped when " + other.impl + " failed"
                        : case_error.empty() ? std::string("incomplete")
                                             : case_error;
      r.status = row_status::failed;
      r.note = why + " after " + std::to_string(done) + " of " +
               std::to_string(spec.reps) + " repetitions";
    } else if (r.status == row_status::failed && !killed_why.empty() &&
               r.note.find(killed_why) == std::string::npos) {
      r.note += " (" + killed_why + ")";
    }
    if (r.status != row_status::ok && r.note.empty()) r.note = "set-up failed (no reason given)";
    if (r.status == row_status::ok) {
      if (spec.kind == "throughput")
        aggregate_stream(streams[i], spec.size, r);
      else
        aggregate(reps[i], r);
    }
  }
  // Noisy: the hypervisor took more than 2% of the case's CPU time (2 CPUs' worth of wall time).
  const double wall_ticks =
      static_cast<double>(now_ns() - started) * static_cast<double>(::sysconf(_SC_CLK_TCK)) / 1e9;
  const double steal_pct =
      wall_ticks > 0 ? 100.0 * static_cast<double>(steal_ticks() - steal_before) / (2 * wall_ticks)
                     : 0;
  for (row* r : rows) {
    r->steal_pct = steal_pct;
    if (steal_pct > 2.0) r->noisy = "steal " + std::to_string(static_cast<int>(steal_pct)) + "%";
  }
  if (out.raw.status == row_status::ok && out.ipcx.status == row_status::ok) {
    if (spec.kind == "throughput")
      out.ipcx.ratio_msgs = paired_rate_ratio(streams[0], streams[1]);
    else
      out.ipcx.ratio_p50 = paired_ratio(reps[0], reps[1]);
  }
  return out;
}

}  // namespace ipcx::bench
