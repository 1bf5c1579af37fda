// Two-process test harness.
//
// A test re-executes its own binary as a named helper (`--ipcx-helper=NAME ARGS...`). The helper
// signals readiness with ready(), which writes one byte to an inherited descriptor and closes it;
// the parent waits for it with a deadline. A helper that misses a deadline is SIGKILLed and its
// stderr is printed with the failure.
//
//   IPCX_HELPER(echo_once) {                 // int echo_once(const std::vector<std::string>& args)
//     auto ch = ipcx::channel::join(args[0]);
//     ipcx::test::ready();
//     ...
//     return 0;
//   }
//   auto child = ipcx::test::child_process::helper("echo_once", {address});
//   child.wait_ready();
//   EXPECT_EQ(child.wait_exit(), 0);
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "ipcx/channel.hpp"
#include "ipcx/error.hpp"

namespace ipcx::test {

using namespace std::chrono_literals;

using helper_function = int (*)(const std::vector<std::string>& args);

struct helper_registrar {
  helper_registrar(const char* name, helper_function function);
};

#define IPCX_HELPER(name)                                                                       \
  static int ipcx_helper_##name(const std::vector<std::string>& args);                          \
  static const ::ipcx::test::helper_registrar ipcx_helper_registrar_##name{#name,               \
                                                                           ipcx_helper_##name}; \
  static int ipcx_helper_##name([[maybe_unused]] const std::vector<std::string>& args)

// Called from a test binary's main before gtest: runs the helper named on the command line and
// exits, or returns when this is not a helper invocation.
void run_helper_if_requested(int argc, char** argv);

// In a helper: tells the parent it is ready.
void ready();

struct spawn_options {
  bool as_nobody = false;         // drop to uid/gid 65534 before exec
  int stdin_fd = -1;              // dup'ed onto 0 in the child, if set
  int stdout_fd = -1;             // dup'ed onto 1 in the child, if set (else stdout is captured)
  std::vector<int> inherit = {};  // descriptors kept open across exec (close-on-exec cleared)
};

// Spawn options for the common cases.
inline spawn_options as_nobody() { return {.as_nobody = true}; }
inline spawn_options stdout_to(int fd) { return {.stdout_fd = fd}; }
inline spawn_options inheriting(std::vector<int> fds) { return {.inherit = std::move(fds)}; }

// A close-on-exec pipe owned by a test; either end can be closed early.
struct pipe_pair {
  int read = -1;
  int write = -1;
  pipe_pair();
  ~pipe_pair();
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;
  void close_read();
  void close_write();
};

class child_process {
 public:
  // This test binary, re-executed as helper `name`.
  static child_process helper(const std::string& name, std::vector<std::string> args = {},
                              spawn_options options = {});
  // Any program (the ipcx CLI, an example); it has no readiness descriptor.
  static child_process program(const std::string& path, std::vector<std::string> args,
                               spawn_options options = {});

  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&&) = delete;
  child_process(const child_process&) = delete;
  ~child_process();  // SIGKILLs and reaps a child still running

  // True once the helper called ready(); false (with a test failure that shows the helper's
  // stderr) if it exited or the timeout passed first.
  bool wait_ready(std::chrono::milliseconds timeout = 10s);
  // The exit status (0-255), or 128+signal if killed. On timeout: SIGKILL, a test failure with
  // stderr, and -1.
  int wait_exit(std::chrono::milliseconds timeout = 20s);
  // Reads stderr until it contains `text` or the timeout passes.
  bool wait_stderr_contains(const std::string& text, std::chrono::milliseconds timeout = 10s);
  void kill(int signal = 9);

  pid_t pid() const { return pid_; }
  std::string stderr_text() const;
  std::string stdout_text() const;  // when not redirected by spawn_options::stdout_fd

 private:
  child_process() = default;
  static child_process start(const std::string& path, std::vector<std::string> argv,
                             const spawn_options& options, bool with_ready);

  pid_t pid_ = -1;
  int ready_fd_ = -1;
  int stderr_fd_ = -1;  // memfd the child's stderr goes to
  int stdout_fd_ = -1;  // memfd the child's stdout goes to, when captured
  int status_ = -1;
  std::string name_;
};

// Path of a program built beside the test binary (bin/NAME).
std::string built_program(const std::string& name);

// The CPUs this process may run on (its affinity mask); 1 if that cannot be read.
int online_cpus();

// For helpers: sends back every message received on `in` through `out`, each call within `wait`,
// until `in` ends. The helper's exit status: 0 at the end of the stream, 3 when a receive failed,
// 4 when a send failed (the error on stderr).
int echo_messages(ipcx::channel& in, ipcx::channel& out, std::chrono::milliseconds wait);

// For helpers: joins `address`, says ready(), sends `text` and expects "re: " + text back, each
// call within `wait`. The helper's exit status: 0, or 2 (join), 3 (send), 4 (the reply) with the
// cause on stderr.
int request_reply(const std::string& address, const std::string& text,
                  std::chrono::milliseconds wait);

// For helpers: prints "WHAT: the error" on stderr (the parent shows it on failure) and returns 1,
// the helper's exit status.
int report(const char* what, const ipcx::error& e);

// True once `pid` sleeps in system call `number` (read from /proc/PID/syscall), so a test can act
// on a process that is really waiting rather than one about to wait; false after `timeout`.
bool wait_until_blocked_in(pid_t pid, long number, std::chrono::milliseconds timeout);

// The number in a /proc file such as /proc/sys/fs/mqueue/msg_max; -1 if it cannot be read.
long host_limit(const char* path);

}  // namespace ipcx::test
