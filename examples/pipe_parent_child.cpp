// pipe_parent_child — the classic parent/child pipe, through ipcx::channel::pipe().
//
// What it shows:
//   1. fork. channel::pipe() makes two connected ends (one pipe each way). After fork the parent
//      keeps one end and the child the other, and each closes the end it does not use: a process
//      that still holds a copy of the writing side never sees end of stream. The parent sends
//      three lines, the child answers each in upper case, then the parent closes its end and the
//      child learns it is done from errc::end_of_stream.
//   2. fork + exec. A new program inherits descriptors, not objects. The child's end clears
//      close-on-exec with keep_across_exec(), and its address, "pipe:R,W" (the two descriptor
//      numbers), goes on the command line of a re-executed copy of this program, which join()s it.
//      Every other ipcx descriptor is close-on-exec, so the new program gets only these two.
//
// Run:    example_pipe_parent_child
// Prints (pids and descriptor numbers vary):
//   [parent 100] sent "hello"
//   [child 101] got "hello", answering "HELLO"
//   [parent 100] child answered "HELLO"
//   ...
//   [child 101] the parent closed its end: end of stream
//   [exec'd child 102] joined pipe:5,8, inherited across exec
//   ...
//   [parent 100] ok
// Exits 0 when every answer came back right; otherwise prints the error and exits 1.
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
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
  std::array<char, 256> buffer;
  auto size = ch.recv(std::as_writable_bytes(std::span(buffer)), patience);
  if (!size) return std::unexpected(size.error());
  return std::string(buffer.data(), *size);
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Destroys our copy of an end, closing its descriptors in this process only.
void close_end(ipcx::channel& end) { ipcx::channel closed = std::move(end); }

// The exit status of child `pid` (128 + the signal if it was killed).
int wait_for(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return failure("waitpid: ", std::strerror(errno));
  if (WIFSIGNALED(status)) return failure("child ", pid, " killed by signal ", WTERMSIG(status));
  return WEXITSTATUS(status);
}

// The child's side: answer every line until the parent closes its end.
int answer_until_end(ipcx::channel& ch) {
  for (;;) {
    auto text = recv_text(ch);
    if (!text && text.error() == ipcx::errc::end_of_stream) {
      say("the parent closed its end: end of stream");
      return 0;
    }
    if (!text) return failure(text.error().message());
    std::string answer = upper(*text);
    say("got \"", *text, "\", answering \"", answer, '"');
    if (auto sent = ch.send(answer, patience); !sent) return failure(sent.error().message());
  }
}

// The parent's side: three lines, each answered in upper case.
int converse(ipcx::channel& ch, std::string_view peer) {
  for (std::string_view text : {"hello", "how are you?", "bye"}) {
    if (auto sent = ch.send(text, patience); !sent) return failure(sent.error().message());
    say("sent \"", text, '"');
    auto answer = recv_text(ch);
    if (!answer) return failure(answer.error().message());
    if (*answer != upper(text)) {
      return failure(peer, " answered \"", *answer, "\", expected \"", upper(text), '"');
    }
    say(peer, " answered \"", *answer, '"');
  }
  return 0;
}

int fork_only() {
  auto ends = ipcx::channel::pipe();
  if (!ends) return failure(ends.error().message());
  auto& [parent_end, child_end] = *ends;

  pid_t pid = ::fork();
  if (pid < 0) return failure("fork: ", std::strerror(errno));
  if (pid == 0) {
    role = "child";
    close_end(parent_end);
    // _exit, not return: the parent's objects copied by fork must not be destroyed here too.
    ::_exit(answer_until_end(child_end));
  }
  close_end(child_end);
  int status = converse(parent_end, "child");
  close_end(parent_end);  // the child now sees end of stream and exits
  int child_status = wait_for(pid);
  return status != 0 ? status : child_status;
}

int fork_and_exec(const char* self) {
  auto ends = ipcx::channel::pipe();
  if (!ends) return failure(ends.error().message());
  auto& [parent_end, child_end] = *ends;

  pid_t pid = ::fork();
  if (pid < 0) return failure("fork: ", std::strerror(errno));
  if (pid == 0) {
    role = "child";
    // Cleared in the child only, so no other program the parent starts inherits these.
    if (auto kept = child_end.keep_across_exec(); !kept) ::_exit(failure(kept.error().message()));
    std::string where = child_end.address().to_string();
    ::execl("/proc/self/exe", self, "--exec-child", where.c_str(), nullptr);
    ::_exit(failure("execl(/proc/self/exe): ", std::strerror(errno)));
  }
  close_end(child_end);
  int status = converse(parent_end, "exec'd child");
  close_end(parent_end);
  int child_status = wait_for(pid);
  return status != 0 ? status : child_status;
}

// The re-executed program: it knows the pipe only by the address on its command line.
int exec_child(const char* where) {
  role = "exec'd child";
  auto ch = ipcx::channel::join(where);
  if (!ch) return failure(ch.error().message());
  say("joined ", where, ", inherited across exec");
  return answer_until_end(*ch);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--exec-child") return exec_child(argv[2]);
  if (int status = fork_only(); status != 0) return status;
  if (int status = fork_and_exec(argv[0]); status != 0) return status;
  say("ok");
  return 0;
}
