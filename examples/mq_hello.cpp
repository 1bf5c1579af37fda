// mq_hello — "Hello" through a POSIX message queue, from one process to another.
//
// What it shows: a message queue is a kernel object with a name (mq:/NAME). The parent creates
// it; the child finds it by that name alone (as an unrelated program would), sends "Hello" and
// exits. Only then does the parent receive: the message waited in the kernel, owned by no
// process, because a queue holds whole messages until someone takes them. The queue is created
// 0600 with O_EXCL (create fails if the name is taken) and, with remove_on_close, the parent
// removes it when its channel closes; otherwise it would stay until channel::remove() or
// `ipcx rm`.
//
// Run:    example_mq_hello
// Prints (pids vary):
//   [parent 100] created mq:/ipcx-example-hello-100 (messages up to 64 bytes, 4 at most)
//   [child 101] joined mq:/ipcx-example-hello-100 by name, sent "Hello from 101"
//   [parent 100] the child has exited; its message is still in the queue
//   [parent 100] received "Hello from 101"
//   [parent 100] ok
// Exits 0 when the message arrived intact; otherwise prints the error and exits 1.
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

// The child: it knows nothing but the queue's name.
int send_hello(const std::string& name) {
  role = "child";
  auto queue = ipcx::channel::join(name);
  if (!queue) return failure(queue.error().message());
  std::string hello = "Hello from " + std::to_string(::getpid());
  if (auto sent = queue->send(hello, patience); !sent) return failure(sent.error().message());
  say("joined ", name, " by name, sent \"", hello, '"');
  return 0;
}

int run() {
  std::string name = "mq:/ipcx-example-hello-" + std::to_string(::getpid());
  // The host's limits cap these (here: /proc/sys/fs/mqueue/msg_max and msgsize_max).
  auto queue =
      ipcx::channel::create(name, {.max_message = 64, .capacity = 4, .remove_on_close = true});
  if (!queue) return failure(queue.error().message());
  say("created ", name, " (messages up to ", queue->info().max_message, " bytes, 4 at most)");

  pid_t pid = ::fork();
  if (pid < 0) return failure("fork: ", std::strerror(errno));
  // _exit, not return: the child must not destroy the parent's channel, which would remove the
  // queue.
  if (pid == 0) ::_exit(send_hello(name));

  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return failure("waitpid: ", std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return failure("the child failed");
  say("the child has exited; its message is still in the queue");

  std::array<char, 64> buffer;
  auto size = queue->recv(std::as_writable_bytes(std::span(buffer)), patience);
  if (!size) return failure(size.error().message());
  std::string_view got(buffer.data(), *size);
  std::string expected = "Hello from " + std::to_string(pid);
  if (got != expected) return failure("received \"", got, "\", expected \"", expected, '"');
  say("received \"", got, '"');
  return 0;
}  // `queue` closes here and, being the creator with remove_on_close, removes the queue

}  // namespace

int main() {
  if (int status = run(); status != 0) return status;
  say("ok");
  return 0;
}
