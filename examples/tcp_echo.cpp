// tcp_echo — a TCP echo server and its clients, each in its own process.
//
// What it shows: ipcx::listener on tcp://127.0.0.1:0 binds a port the kernel chooses (0 means
// "any free port"), and address() tells which, so clients can be pointed at it. The parent is the
// server: it accepts one connection at a time and sends back every message until the client
// closes (errc::end_of_stream). Two client processes, forked after the listener exists so their
// connects cannot arrive before it, each join() the address, send a few lines and check every
// echo. The second client's connection waits in the listen backlog while the first is served.
// TCP is a byte stream; ipcx frames each message, so a line sent is a line received.
//
// Run:    example_tcp_echo
// Prints (pids and the port vary):
//   [server 100] listening on tcp://127.0.0.1:40123
//   [server 100] accepted a client
//   [client 101] sent "client 1: line 1", echoed back
//   [server 100] echoed "client 1: line 1"
//   ...
//   [server 100] client closed the connection: end of stream
//   ...
//   [server 100] ok
// Exits 0 when both clients got every echo; otherwise prints the error and exits 1.
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
#include <vector>

#include "ipcx/channel.hpp"
#include "ipcx/listener.hpp"

using namespace std::chrono_literals;

namespace {

// Every wait gives up after this long, so a broken peer cannot hang the example.
constexpr auto patience = 5s;
constexpr int clients = 2;
constexpr int lines_per_client = 3;

const char* role = "server";

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

int client(const std::string& where, int number) {
  role = "client";
  auto server = ipcx::channel::join(where);  // connects
  if (!server) return failure(server.error().message());
  for (int i = 1; i <= lines_per_client; ++i) {
    std::string text = "client " + std::to_string(number) + ": line " + std::to_string(i);
    if (auto sent = server->send(text, patience); !sent) return failure(sent.error().message());
    auto echo = recv_text(*server);
    if (!echo) return failure(echo.error().message());
    if (*echo != text) return failure("sent \"", text, "\", got back \"", *echo, '"');
    say("sent \"", text, "\", echoed back");
  }
  return 0;  // the connection closes as `server` goes out of scope
}

// Echoes one client's messages until it closes the connection.
int serve(ipcx::channel& connection) {
  for (;;) {
    auto text = recv_text(connection);
    if (!text && text.error() == ipcx::errc::end_of_stream) {
      say("client closed the connection: end of stream");
      return 0;
    }
    if (!text) return failure(text.error().message());
    if (auto sent = connection.send(*text, patience); !sent) {
      return failure(sent.error().message());
    }
    say("echoed \"", *text, '"');
  }
}

int run(std::vector<pid_t>& children) {
  auto server = ipcx::listener::create("tcp://127.0.0.1:0");
  if (!server) return failure(server.error().message());
  std::string where = server->address().to_string();
  say("listening on ", where);

  for (int number = 1; number <= clients; ++number) {
    pid_t pid = ::fork();
    if (pid < 0) return failure("fork: ", std::strerror(errno));
    // _exit, not return: the server's objects copied by fork must not be destroyed here too.
    if (pid == 0) ::_exit(client(where, number));
    children.push_back(pid);
  }

  for (int served = 0; served < clients; ++served) {
    auto connection = server->accept(patience);
    if (!connection) return failure(connection.error().message());
    say("accepted a client");
    if (int status = serve(*connection); status != 0) return status;
  }
  return 0;
}

}  // namespace

int main() {
  std::vector<pid_t> children;
  int status = run(children);
  // Always reap the clients; each gives up on its own within `patience` if the server failed.
  for (pid_t pid : children) {
    int child_status = 0;
    if (::waitpid(pid, &child_status, 0) < 0) return failure("waitpid: ", std::strerror(errno));
    if (status == 0 && (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0)) {
      status = failure("client ", pid, " failed");
    }
  }
  if (status == 0) say("ok");
  return status;
}
