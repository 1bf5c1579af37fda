// file_follow — a record log written by one process and followed by another, like `tail -f`.
//
// What it shows: file:/PATH is an append-only log of whole records (length, checksum, payload)
// in an ordinary file. A writer appends; a follower reads from the start and, at the end of the
// file, sleeps until the kernel reports that the file grew (inotify), with no polling loop. Here
// the follower (a child process) starts first and waits on the empty log; the parent appends a
// record every 100 ms, and each one is printed by the follower as it arrives. Because the log is a
// file, the records outlive every process: afterwards a new reader joins and reads them all again
// from the beginning. The parent created the file (0600, O_EXCL) with remove_on_close, so it
// deletes it when its channel closes.
//
// Run:    example_file_follow
// Prints (pids vary):
//   [writer 100] created file:/tmp/ipcx-example-log-100
//   [follower 101] joined the log; waiting for records
//   [writer 100] appended "record 1 of 5"
//   [follower 101] got "record 1 of 5"
//   ...
//   [writer 100] a late reader joined and read all 5 records from the start
//   [writer 100] ok
// Exits 0 when the follower and the late reader got every record in order; otherwise prints the
// error and exits 1.
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
#include <thread>

#include "ipcx/channel.hpp"

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;
constexpr int records = 5;

const char* role = "writer";

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

std::string record(int i) {
  return "record " + std::to_string(i) + " of " + std::to_string(records);
}

// Reads the next `records` records and checks each; `show` prints them as they come.
int read_all(ipcx::channel& log, bool show) {
  for (int i = 1; i <= records; ++i) {
    std::array<char, 256> buffer;
    // At the end of the log this sleeps until the writer appends (or the deadline passes).
    auto size = log.recv(std::as_writable_bytes(std::span(buffer)), patience);
    if (!size) return failure(size.error().message());
    std::string_view got(buffer.data(), *size);
    if (got != record(i)) return failure("got \"", got, "\", expected \"", record(i), '"');
    if (show) say("got \"", got, '"');
  }
  return 0;
}

int follow(const std::string& where) {
  role = "follower";
  auto log = ipcx::channel::join(where);
  if (!log) return failure(log.error().message());
  say("joined the log; waiting for records");
  return read_all(*log, true);
}

int run() {
  std::string where = "file:/tmp/ipcx-example-log-" + std::to_string(::getpid());
  auto log = ipcx::channel::create(where, {.remove_on_close = true});
  if (!log) return failure(log.error().message());
  say("created ", where);

  pid_t pid = ::fork();
  if (pid < 0) return failure("fork: ", std::strerror(errno));
  // _exit, not return: the child must not destroy the parent's channel, which would delete the
  // log.
  if (pid == 0) ::_exit(follow(where));

  int status = 0;
  for (int i = 1; i <= records && status == 0; ++i) {
    std::this_thread::sleep_for(100ms);  // only to make the following visible
    if (auto sent = log->send(record(i), patience); !sent) {
      status = failure(sent.error().message());
    } else {
      say("appended \"", record(i), '"');
    }
  }
  // The follower gives up on its own within `patience` if records stopped coming.
  int child_status = 0;
  if (::waitpid(pid, &child_status, 0) < 0) return failure("waitpid: ", std::strerror(errno));
  if (status != 0) return status;
  if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0) {
    return failure("the follower failed");
  }

  // Persistence: a reader that arrives after everything was written starts from record 1.
  auto late = ipcx::channel::join(where);
  if (!late) return failure(late.error().message());
  if (int read = read_all(*late, false); read != 0) return read;
  std::array<char, 256> buffer;
  auto more = late->try_recv(std::as_writable_bytes(std::span(buffer)));
  if (!more) return failure(more.error().message());
  if (*more) return failure("the log holds more than ", records, " records");
  say("a late reader joined and read all ", records, " records from the start");
  return 0;
}  // `log` closes here and, as its creator with remove_on_close, deletes the file

}  // namespace

int main() {
  if (int status = run(); status != 0) return status;
  say("ok");
  return 0;
}
