#include "process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

namespace ipcx::test {
namespace {

constexpr const char* kReadyEnv = "IPCX_TEST_READY_FD";

std::map<std::string, helper_function>& registry() {
  static std::map<std::string, helper_function> helpers;
  return helpers;
}

std::string self_path() {
  char buffer[4096];
  ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n < 0) std::abort();
  return std::string(buffer, static_cast<std::size_t>(n));
}

std::string read_memfd(int fd) {
  if (fd < 0) return {};
  std::string out;
  char buffer[4096];
  off_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
  return out;
}

[[noreturn]] void die_in_child(const char* what) {
  std::fprintf(stderr, "child_process: %s: %s\n", what, std::strerror(errno));
  ::_exit(127);
}

}  // namespace

helper_registrar::helper_registrar(const char* name, helper_function function) {
  registry()[name] = function;
}

void run_helper_if_requested(int argc, char** argv) {
  if (argc < 2 || std::strncmp(argv[1], "--ipcx-helper=", 14) != 0) return;
  std::string name = argv[1] + 14;
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::fprintf(stderr, "no helper named %s\n", name.c_str());
    std::exit(126);
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  std::fflush(stdout);
  int rc = it->second(args);
  std::fflush(stdout);
  std::exit(rc);
}

void ready() {
  const char* env = std::getenv(kReadyEnv);
  if (env == nullptr) return;
  int fd = std::atoi(env);
  char byte = 'R';
  (void)!::write(fd, &byte, 1);
  ::close(fd);
  ::unsetenv(kReadyEnv);
}

child_process child_process::helper(const std::string& name, std::vector<std::string> args,
                                    spawn_options options) {
  args.insert(args.begin(), "--ipcx-helper=" + name);
  auto child = start(self_path(), std::move(args), options, true);
  child.name_ = "helper " + name;
  return child;
}

child_process child_process::program(const std::string& path, std::vector<std::string> args,
                                     spawn_options options) {
  auto child = start(path, std::move(args), options, false);
  child.name_ = path;
  return child;
}

child_process child_process::start(const std::string& path, std::vector<std::string> args,
                                   const spawn_options& options, bool with_ready) {
  child_process child;
  child.stderr_fd_ = ::memfd_create("child-stderr", MFD_CLOEXEC);
  if (options.stdout_fd < 0) child.stdout_fd_ = ::memfd_create("child-stdout", MFD_CLOEXEC);
  int ready[2] = {-1, -1};
  if (with_ready && ::pipe2(ready, O_CLOEXEC) != 0) std::abort();

  std::vector<std::string> argv_storage;
  argv_storage.push_back(path);
  for (auto& a : args) argv_storage.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string ready_env = with_ready ? std::string(kReadyEnv) + "=" + std::to_string(ready[1]) : "";

  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    if (::dup2(child.stderr_fd_, 2) < 0) die_in_child("dup2 stderr");
    int out = options.stdout_fd >= 0 ? options.stdout_fd : child.stdout_fd_;
    if (::dup2(out, 1) < 0) die_in_child("dup2 stdout");
    if (options.stdin_fd >= 0 && ::dup2(options.stdin_fd, 0) < 0) die_in_child("dup2 stdin");
    for (int fd : options.inherit) {
      int flags = ::fcntl(fd, F_GETFD);
      ::fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    if (with_ready) {
      ::fcntl(ready[1], F_SETFD, 0);
      ::putenv(ready_env.data());
    }
    if (options.as_nobody) {
      if (::setgroups(0, nullptr) != 0) die_in_child("setgroups");
      if (::setgid(65534) != 0) die_in_child("setgid");
      if (::setuid(65534) != 0) die_in_child("setuid");
    }
    ::execv(argv[0], argv.data());
    die_in_child("execv");
  }
  child.pid_ = pid;
  if (with_ready) {
    ::close(ready[1]);
    child.ready_fd_ = ready[0];
  }
  return child;
}

child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      ready_fd_(std::exchange(other.ready_fd_, -1)),
      stderr_fd_(std::exchange(other.stderr_fd_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      status_(other.status_),
      name_(std::move(other.name_)) {}

child_process::~child_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  for (int fd : {ready_fd_, stderr_fd_, stdout_fd_})
    if (fd >= 0) ::close(fd);
}

bool child_process::wait_ready(std::chrono::milliseconds timeout) {
  if (ready_fd_ < 0) {
    ADD_FAILURE() << name_ << " has no readiness descriptor";
    return false;
  }
  pollfd p{.fd = ready_fd_, .events = POLLIN, .revents = 0};
  int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  char byte = 0;
  bool ok = rc > 0 && ::read(ready_fd_, &byte, 1) == 1 && byte == 'R';
  ::close(ready_fd_);
  ready_fd_ = -1;
  if (!ok) {
    if (rc == 0) kill();
    ADD_FAILURE() << name_ << (rc == 0 ? " was not ready in time" : " exited before ready")
                  << "; its stderr:\n"
                  << stderr_text();
  }
  return ok;
}

int child_process::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_;
  auto until = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    pid_t rc = ::waitpid(pid_, &status, WNOHANG);
    if (rc == pid_) break;
    if (std::chrono::steady_clock::now() >= until) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      ADD_FAILURE() << name_ << " did not exit within " << timeout.count()
                    << " ms and was killed; its stderr:\n"
                    << stderr_text();
      return status_ = -1;
    }
    std::this_thread::sleep_for(2ms);
  }
  pid_ = -1;
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return status_;
}

bool child_process::wait_stderr_contains(const std::string& text,
                                         std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (stderr_text().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(2ms);
  }
  ADD_FAILURE() << name_ << " did not print \"" << text << "\" in time; its stderr:\n"
                << stderr_text();
  return false;
}

void child_process::kill(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::string child_process::stderr_text() const { return read_memfd(stderr_fd_); }
std::string child_process::stdout_text() const { return read_memfd(stdout_fd_); }

pipe_pair::pipe_pair() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) == 0) {
    read = fds[0];
    write = fds[1];
  }
}
pipe_pair::~pipe_pair() {
  close_read();
  close_write();
}
void pipe_pair::close_read() {
  if (read >= 0) ::close(read);
  read = -1;
}
void pipe_pair::close_write() {
  if (write >= 0) ::close(write);
  write = -1;
}

std::string built_program(const std::string& name) {
  auto self = self_path();  // test binaries are built into the same bin/ as the programs
  return self.substr(0, self.rfind('/') + 1) + name;
}

int online_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

bool wait_until_blocked_in(pid_t pid, long number, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
    long current = -1;
    if (in >> current && current == number) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

long host_limit(const char* path) {
  std::ifstream in(path);
  long value = -1;
  in >> value;
  return value;
}

int report(const char* what, const ipcx::error& e) {
  std::fprintf(stderr, "%s: %s\n", what, e.message().c_str());
  return 1;
}

int echo_messages(ipcx::channel& in, ipcx::channel& out, std::chrono::milliseconds wait) {
  std::vector<std::byte> buffer(1 << 20);
  for (;;) {
    auto n = in.recv(buffer, wait);
    if (!n) {
      if (n.error() == ipcx::errc::end_of_stream) return 0;
      std::fprintf(stderr, "recv: %s\n", n.error().message().c_str());
      return 3;
    }
    auto sent = out.send(std::span(buffer.data(), *n), wait);
    if (!sent) {
      std::fprintf(stderr, "send: %s\n", sent.error().message().c_str());
      return 4;
    }
  }
}

int request_reply(const std::string& address, const std::string& text,
                  std::chrono::milliseconds wait) {
  auto ch = ipcx::channel::join(address);
  if (!ch) {
    std::fprintf(stderr, "join: %s\n", ch.error().message().c_str());
    return 2;
  }
  ready();
  if (auto sent = ch->send(text, wait); !sent) {
    std::fprintf(stderr, "send: %s\n", sent.error().message().c_str());
    return 3;
  }
  std::vector<std::byte> buffer(ch->info().max_message);
  auto n = ch->recv(buffer, wait);
  std::string reply = n ? std::string(reinterpret_cast<const char*>(buffer.data()), *n)
                        : "error: " + n.error().message();
  if (reply != "re: " + text) {
    std::fprintf(stderr, "reply: %s\n", reply.c_str());
    return 4;
  }
  return 0;
}

}  // namespace ipcx::test
