// fifo_unrelated — a FIFO (named pipe) between two unrelated programs.
//
// What it shows: an anonymous pipe can only be shared by inheriting its descriptors; a FIFO has a
// name in the filesystem, so any two processes that know the path can meet through it. Here the
// program starts two fresh copies of itself (posix_spawn of /proc/self/exe with a role argument):
// a writer and a reader that share no descriptor, no memory, only the path given on their command
// lines. The starter creates the FIFO (mkfifo, mode 0600, failing if the path exists) and removes
// it at the end (remove_on_close); the two roles join() it. The writer is started first: its
// first send waits until a reader has the FIFO open. When the writer exits, the reader gets its
// messages and then errc::end_of_stream.
//
// Run:    example_fifo_unrelated
//    or, by hand in two terminals:  mkfifo -m 600 /tmp/f
//                                   example_fifo_unrelated reader /tmp/f
//                                   example_fifo_unrelated writer /tmp/f
// Prints (pids vary, the writer's and reader's lines may interleave differently):
//   [starter 100] created fifo:/tmp/ipcx-example-fifo-100; starting a writer and a reader
//   [writer 101] sent "message 1 of 3"
//   [reader 102] got "message 1 of 3"
//   ...
//   [reader 102] the writer closed the FIFO: end of stream after 3 messages
//   [starter 100] ok
// Exits 0 when the reader got every message in order; otherwise prints the error and exits 1.
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
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

extern char** environ;

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;
constexpr int messages = 3;

const char* role = "starter";

template <typename... Parts>
std::string line(const Parts&... parts) {
  std::ostringstream out;
  out << '[' << role << ' ' << ::getpid() << "] ";
  (out << ... << parts);
  out << '\n';
  return out.str();
}

// One flushed write per line, so the lines of the three processes do not mix.
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

std::string message(int i) {
  return "message " + std::to_string(i) + " of " + std::to_string(messages);
}

int writer(const std::string& path) {
  role = "writer";
  auto fifo = ipcx::channel::join("fifo:" + path);
  if (!fifo) return failure(fifo.error().message());
  for (int i = 1; i <= messages; ++i) {
    // The first send opens the writing end, waiting (up to the deadline) for a reader.
    if (auto sent = fifo->send(message(i), patience); !sent) {
      return failure(sent.error().message());
    }
    say("sent \"", message(i), '"');
  }
  return 0;  // closing the writing end is what tells the reader there is no more
}

int reader(const std::string& path) {
  role = "reader";
  auto fifo = ipcx::channel::join("fifo:" + path);
  if (!fifo) return failure(fifo.error().message());
  for (int received = 0;;) {
    std::array<char, 256> buffer;
    auto size = fifo->recv(std::as_writable_bytes(std::span(buffer)), patience);
    if (!size && size.error() == ipcx::errc::end_of_stream) {
      if (received != messages) return failure("end of stream after only ", received, " messages");
      say("the writer closed the FIFO: end of stream after ", received, " messages");
      return 0;
    }
    if (!size) return failure(size.error().message());
    std::string_view got(buffer.data(), *size);
    ++received;
    if (got != message(received)) {
      return failure("got \"", got, "\", expected \"", message(received), '"');
    }
    say("got \"", got, '"');
  }
}

// Starts this program again, as a new process image that inherits no ipcx descriptor (they are
// all close-on-exec); only the arguments connect it to us.
pid_t start(const char* self, std::string role_name, std::string path) {
  std::array<char*, 4> argv{const_cast<char*>(self), role_name.data(), path.data(), nullptr};
  pid_t pid = -1;
  int error = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
  if (error != 0) {
    failure("posix_spawn(/proc/self/exe ", role_name, "): ", std::strerror(error));
    return -1;
  }
  return pid;
}

// Waits for a started role; true if it succeeded. Each role bounds its own waits by `patience`.
bool succeeded(pid_t pid, std::string_view role_name) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) {
    failure("waitpid: ", std::strerror(errno));
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  failure("the ", role_name, " (pid ", pid, ") failed");
  return false;
}

int starter(const char* self) {
  std::string path = "/tmp/ipcx-example-fifo-" + std::to_string(::getpid());
  auto fifo = ipcx::channel::create("fifo:" + path, {.remove_on_close = true});
  if (!fifo) return failure(fifo.error().message());
  say("created fifo:", path, "; starting a writer and a reader");

  pid_t writer_pid = start(self, "writer", path);
  pid_t reader_pid = start(self, "reader", path);
  bool ok = writer_pid > 0 && reader_pid > 0;
  if (writer_pid > 0) ok = succeeded(writer_pid, "writer") && ok;
  if (reader_pid > 0) ok = succeeded(reader_pid, "reader") && ok;
  return ok ? 0 : 1;
}  // `fifo` closes here and, as its creator with remove_on_close, unlinks the FIFO

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "writer") return writer(argv[2]);
  if (argc == 3 && std::string_view(argv[1]) == "reader") return reader(argv[2]);
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [writer|reader FIFO_PATH]\n", argv[0]);
    return 2;
  }
  if (int status = starter(argv[0]); status != 0) return status;
  say("ok");
  return 0;
}
