// shm_hello — the classic: a process writes "Hello" into shared memory; another maps it to read it.
//
// What it shows: a POSIX shared-memory segment (shm:/NAME, a file in /dev/shm) is memory with a
// name. The writer creates it (0600, O_EXCL: create fails if the name is taken) and starts a
// reader, a fresh copy of this program that knows nothing but the names on its command line. The
// reader joins the segment by name and maps the same physical pages: what the writer stores, the
// reader sees, with no system call per byte and no copy through the kernel.
//
// Shared memory carries no "it is written now" signal of its own: a reader that simply looks may
// find the zeros the segment was created with, or half a message. So the writer also creates a
// named semaphore (sem:/NAME) at 0, and posts it only after the text is in place; the reader waits
// on it (at most 5 s) before it reads. sem_post/sem_wait order memory too: the bytes stored before
// the post are visible after the wait. The reader treats the segment as input: it reads at most the
// segment's size, up to the first NUL, never trusting the writer to have terminated the text.
//
// Both names carry the writer's pid, and the writer created both with remove_on_close: they are
// unlinked when its objects close, on every path, so /dev/shm is left as it was.
//
// Run:    example_shm_hello
// Prints (pids vary; the reader's first line may come before or after the writer's second):
//   [writer 100] created shm:/ipcx-example-shm-hello-100 (4096 bytes) and sem:/ipcx-example-...
//   [reader 101] joined shm:/ipcx-example-shm-hello-100 (4096 bytes); waiting for the writer
//   [writer 100] wrote "Hello from 100" and posted the semaphore
//   [reader 101] read "Hello from 100"
//   [writer 100] ok
// Exits 0 when the reader read exactly what was written; otherwise prints the error and exits 1.
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

#include "ipcx/semaphore.hpp"
#include "ipcx/shared_memory.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;
constexpr std::size_t segment_size = 4096;

const char* role = "writer";

template <typename... Parts>
std::string line(const Parts&... parts) {
  std::ostringstream out;
  out << '[' << role << ' ' << ::getpid() << "] ";
  (out << ... << parts);
  out << '\n';
  return out.str();
}

// One flushed write per line, so the lines of the two processes do not mix.
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

std::string hello_from(pid_t pid) { return "Hello from " + std::to_string(pid); }

// The reader: it knows the two names and the writer's pid (to check the text), nothing else.
int reader(const std::string& segment_name, const std::string& semaphore_name, pid_t writer) {
  role = "reader";
  // Joined before the text is there, on purpose: mapping is not reading, the semaphore is the gate.
  auto segment = ipcx::shared_memory::join(segment_name);
  if (!segment) return failure(segment.error().message());
  auto written = ipcx::semaphore::join(semaphore_name);
  if (!written) return failure(written.error().message());
  say("joined ", segment_name, " (", segment->size(), " bytes); waiting for the writer");

  if (auto waited = written->wait(patience); !waited) return failure(waited.error().message());

  // The segment is another process's memory: read within its size, up to the first NUL if any.
  std::span<const std::byte> bytes = segment->bytes();
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  text = text.substr(0, std::min(text.find('\0'), text.size()));
  if (text != hello_from(writer)) {
    return failure("read \"", text, "\", expected \"", hello_from(writer), '"');
  }
  say("read \"", text, '"');
  return 0;
}

// Starts this program again as the reader: a new process image that inherits no ipcx descriptor
// (they are all close-on-exec) and no mapping; only the arguments connect it to us.
pid_t start_reader(const char* self, std::string segment_name, std::string semaphore_name) {
  std::string role_name = "reader";
  std::string writer = std::to_string(::getpid());
  std::array<char*, 6> argv{
      const_cast<char*>(self), role_name.data(), segment_name.data(),
      semaphore_name.data(),   writer.data(),    nullptr,
  };
  pid_t pid = -1;
  int error = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    failure("posix_spawn(/proc/self/exe reader): ", std::strerror(error));
    return -1;
  }
  return pid;
}

// Waits for the reader; true if it succeeded. The reader bounds its own waits by `patience`.
bool succeeded(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) {
    failure("waitpid: ", std::strerror(errno));
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  failure("the reader (pid ", pid, ") failed");
  return false;
}

int writer(const char* self) {
  std::string suffix = "/ipcx-example-shm-hello-" + std::to_string(::getpid());
  std::string segment_name = "shm:" + suffix;
  std::string semaphore_name = "sem:" + suffix;
  // Declared first so it is closed last: both objects remove their names when they close.
  auto segment = ipcx::shared_memory::create(segment_name, segment_size, {.remove_on_close = true});
  if (!segment) return failure(segment.error().message());
  auto written = ipcx::semaphore::create(semaphore_name, 0, {.remove_on_close = true});
  if (!written) return failure(written.error().message());
  say("created ", segment_name, " (", segment->size(), " bytes) and ", semaphore_name, " (0)");

  pid_t reader_pid = start_reader(self, segment_name, semaphore_name);
  if (reader_pid < 0) return 1;

  // Zero-filled at creation, so the text ends with a NUL without writing one; written with the
  // NUL anyway, as a reader of a reused segment would need.
  std::string hello = hello_from(::getpid());
  std::memcpy(segment->bytes().data(), hello.c_str(), hello.size() + 1);
  // The post comes after the stores: the reader's wait returns only once they are visible.
  if (auto posted = written->post(); !posted) {
    // The reader times out on its own and exits; it is still waited for.
    (void)succeeded(reader_pid);
    return failure(posted.error().message());
  }
  say("wrote \"", hello, "\" and posted the semaphore");
  return succeeded(reader_pid) ? 0 : 1;
}  // `written` and `segment` close here and, as creators with remove_on_close, unlink their names

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string_view(argv[1]) == "reader") {
    return reader(argv[2], argv[3], static_cast<pid_t>(std::strtol(argv[4], nullptr, 10)));
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [reader shm:/NAME sem:/NAME WRITER_PID]\n", argv[0]);
    return 2;
  }
  if (int status = writer(argv[0]); status != 0) return status;
  say("ok");
  return 0;
}
