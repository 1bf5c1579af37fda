// ipcx/address.hpp — the typed form of a channel address.
//
// Every channel is named by a string such as "mq:/orders" or "tcp://127.0.0.1:5555". The string is
// parsed once into an `ipcx::address`; a malformed one is rejected with an error that quotes it and
// says what was expected:
//
//   auto a = ipcx::address::parse("tcp://localhost");
//   // a.error().message() == R"(parse_address("tcp://localhost"): malformed address: expected
//   //                          tcp://HOST:PORT (missing :PORT))"
//
// | form                                   | mechanism                                       |
// |----------------------------------------|-------------------------------------------------|
// | pipe:  pipe:R,W                        | anonymous pipe (stdin/stdout, or inherited fds) |
// | fifo:/path                             | named pipe                                      |
// | file:/path                             | append-only record log                          |
// | signal:PID  signal:self                | real-time signal with a 64-bit value            |
// | shm:/name  sysv-shm:KEY  memfd:/socket | shared-memory ring                              |
// | mq:/name                               | POSIX message queue                             |
// | sysv-mq:KEY                            | System V queue; KEY a number or a path (ftok)   |
// | unix:/path  unix:@name                 | Unix stream socket (@ = abstract namespace)     |
// | unix-dgram:/path  unix-seqpacket:/path | Unix datagram / seqpacket socket                |
// | tcp://HOST:PORT  udp://HOST:PORT       | TCP / UDP; HOST an IPv4, [IPv6] or a name       |
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ipcx/error.hpp"

namespace ipcx {

enum class mechanism {
  pipe,
  fifo,
  file,
  signal,
  shm,
  sysv_shm,
  memfd,
  mq,
  sysv_mq,
  unix_stream,
  unix_dgram,
  unix_seqpacket,
  tcp,
  udp,
};

// The scheme as written in addresses ("sysv-mq", "unix-dgram"...).
std::string_view to_string(mechanism m) noexcept;

struct address {
  mechanism kind = mechanism::pipe;
  // fifo, file, unix*: the path (for abstract unix sockets, the name without '@');
  // mq, shm: the name with its leading '/'; sysv with a path key: the path given to ftok.
  std::string path;
  bool abstract = false;  // unix*: "@name"
  std::string host;       // tcp, udp: without IPv6 brackets
  std::uint16_t port = 0; // tcp, udp
  long key = 0;           // sysv-*: the numeric key when no path was given
  pid_t pid = 0;          // signal: the target process; 0 means "self"
  int read_fd = 0;        // pipe: inherited descriptors ("pipe:" alone means stdin/stdout)
  int write_fd = 1;

  [[nodiscard]] static result<address> parse(std::string_view text);

  // Canonical text, which parse() turns back into an equal address.
  std::string to_string() const;

  bool operator==(const address&) const = default;
};

}  // namespace ipcx
