// signal_sigusr1 — a SIGUSR1 handler in one process, triggered by kill() from another.
//
// What it shows: the plain signal API (sigaction, kill) with no payload, and how to use it without
// races. A signal sent before the receiver is ready is lost or, with the default action, kills it;
// a handler that fires between "check a flag" and "sleep" is the classic lost wake-up. So:
//   1. the child blocks SIGUSR1 (a SIGUSR1 now stays pending instead of being delivered),
//   2. installs its handler (SA_SIGINFO, to learn the sender's pid),
//   3. tells the parent it is ready, through an ipcx pipe channel,
//   4. waits in ppoll() with SIGUSR1 unblocked only for the duration of the wait: unblocking and
//      sleeping are one atomic step, so a pending signal runs the handler and ends the wait at
//      once (pause() after sigprocmask() would have a window). ppoll's timeout bounds the wait.
// The parent waits for "ready", sends kill(child, SIGUSR1), and expects the child to report back
// that the signal came from the parent's pid. ipcx's own signal: channels carry data in real-time
// signals; this example is about the classic notification-only signal.
//
// Run:    example_signal_sigusr1
// Prints (pids vary):
//   [child 101] SIGUSR1 blocked, handler installed: ready
//   [parent 100] child is ready; kill(101, SIGUSR1)
//   [child 101] handler ran: SIGUSR1 from pid 100
//   [parent 100] child reports "SIGUSR1 from 100"
//   [parent 100] ok
// Exits 0 when the handler ran for the parent's signal; otherwise prints the error and exits 1.
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ipcx/channel.hpp"

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;

const char* role = "parent";

template <typename... Parts>
std::string line(const Parts&... parts) {
  std::ostringstream out;
  out << '[' << role << ' ' << ::getpid() << "] ";
  (out << ... << parts);
  out << '\n';
  return out.str();
}

// One flushed write per line: after fork, text left in stdio's buffer would be printed twice.
template <typename... Parts>
void say(const Parts&... parts) {
  std::fputs(line(parts...).c_str(), stdout);
  std::fflush(stdout);
}

// Prints what went wrong; returns the exit status of a failed example.
template <typename... Parts>
int failure(const Parts&... parts) {
  std::fputs(line("error: ", parts...).c_str(), stderr);
  return 1;
}

ipcx::result<std::string> recv_text(ipcx::channel& ch) {
  std::array<char, 64> buffer;
  auto size = ch.recv(std::as_writable_bytes(std::span(buffer)), patience);
  if (!size) return std::unexpected(size.error());
  return std::string(buffer.data(), *size);
}

// Written by the handler, read by the main code once the wait ends. A handler may only touch
// lock-free state: volatile sig_atomic_t is the type the C standard guarantees for that.
volatile sig_atomic_t sender_pid = 0;

void on_sigusr1(int, siginfo_t* info, void*) { sender_pid = info->si_pid; }

int child(ipcx::channel& to_parent) {
  role = "child";
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigset_t old_mask;
  if (::sigprocmask(SIG_BLOCK, &usr1, &old_mask) != 0) {
    return failure("sigprocmask: ", std::strerror(errno));
  }

  struct sigaction action {};
  action.sa_sigaction = on_sigusr1;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGUSR1, &action, nullptr) != 0) {
    return failure("sigaction: ", std::strerror(errno));
  }

  say("SIGUSR1 blocked, handler installed: ready");
  if (auto sent = to_parent.send("ready", patience); !sent) return failure(sent.error().message());

  // The mask in force only while ppoll sleeps: the old one, with SIGUSR1 allowed.
  sigset_t while_waiting = old_mask;
  sigdelset(&while_waiting, SIGUSR1);
  auto until = std::chrono::steady_clock::now() + patience;
  while (sender_pid == 0) {
    auto left = until - std::chrono::steady_clock::now();
    if (left <= 0s) return failure("no SIGUSR1 within ", patience.count(), " s");
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(left);
    timespec timeout{.tv_sec = seconds.count(),
                     .tv_nsec = std::chrono::nanoseconds(left - seconds).count()};
    // Returns -1/EINTR once the handler has run; 0 when the timeout passed.
    if (::ppoll(nullptr, 0, &timeout, &while_waiting) < 0 && errno != EINTR) {
      return failure("ppoll: ", std::strerror(errno));
    }
  }
  std::string report = "SIGUSR1 from " + std::to_string(sender_pid);
  say("handler ran: ", report);
  if (auto sent = to_parent.send(report, patience); !sent) return failure(sent.error().message());
  return 0;
}

int parent(ipcx::channel& to_child, pid_t pid) {
  auto ready = recv_text(to_child);
  if (!ready) return failure(ready.error().message());
  if (*ready != "ready") return failure("child said \"", *ready, "\", expected \"ready\"");

  say("child is ready; kill(", pid, ", SIGUSR1)");
  if (::kill(pid, SIGUSR1) != 0) return failure("kill: ", std::strerror(errno));

  auto report = recv_text(to_child);
  if (!report) return failure(report.error().message());
  std::string expected = "SIGUSR1 from " + std::to_string(::getpid());
  if (*report != expected) {
    return failure("child reports \"", *report, "\", expected \"", expected, '"');
  }
  say("child reports \"", *report, '"');
  return 0;
}

int run() {
  auto ends = ipcx::channel::pipe();
  if (!ends) return failure(ends.error().message());
  auto& [parent_end, child_end] = *ends;

  pid_t pid = ::fork();
  if (pid < 0) return failure("fork: ", std::strerror(errno));
  // _exit, not return: the parent's objects copied by fork must not be destroyed here too.
  if (pid == 0) ::_exit(child(child_end));

  int status = parent(parent_end, pid);
  if (status != 0) ::kill(pid, SIGKILL);  // it may be waiting for a signal that will not come
  int child_status = 0;
  if (::waitpid(pid, &child_status, 0) < 0) return failure("waitpid: ", std::strerror(errno));
  if (status != 0) return status;
  if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0) {
    return failure("the child failed");
  }
  return 0;
}

}  // namespace

int main() {
  if (int status = run(); status != 0) return status;
  say("ok");
  return 0;
}
