// framing_floor: what a message header costs plain system-call code, without ipcx.
//
// `ipcx bench` holds each kernel transport to 5 % of raw calls that move the bare payload. Over a
// byte stream (unix stream, TCP) a message needs its length in the stream, and a file log record
// needs its length and checksum in the file; this program measures what that alone costs code
// with no library at all, so the remaining distance of ipcx from raw can be read against it.
//
// Two processes pinned to one CPU (SCHED_FIFO when permitted, as the bench) play ping-pong; the
// variants of one transport alternate in blocks of round trips inside the same two processes, and
// each figure is the median block's mean round trip.
//   stream (unix stream socketpair, TCP loopback with TCP_NODELAY):
//     raw      send(N), recv until N                         (the bench's raw side)
//     raw+4    send(N+4), recv until N+4: the prefix in the kernel, no copies
//     staged   header and payload copied into one buffer, one send; one recv into a 64 KiB
//              buffer, payload copied out                     (ipcx's framing)
//     iovec    sendmsg [header, payload]; recvmsg [header, caller's buffer, spill]
//   file (two files on the file system of /tmp, followed with inotify, lock + pwrite + unlock):
//     raw      records of N bytes                             (the bench's raw side)
//     raw+8    records of N+8 bytes: an 8-byte header (length, CRC) in the file, no checksum
//
// Usage: framing_floor [SIZE (4096)] [BLOCKS per variant (150)]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr int round_trips_per_block = 500;
constexpr std::size_t spill_size = 64 * 1024;

double now_us() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "framing_floor: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void recv_all(int fd, char* p, std::size_t n) {
  for (std::size_t done = 0; done < n;) {
    ssize_t r = ::recv(fd, p + done, n - done, 0);
    if (r <= 0) die("recv");
    done += static_cast<std::size_t>(r);
  }
}

// One variant's side of a ping-pong: send(message) and recv(into).
struct variant {
  const char* name;
  void (*send)(int fd, const char* message, std::size_t size);
  void (*recv)(int fd, char* into, std::size_t size);
};

char staging[spill_size + 8];
char spill[spill_size];

const variant stream_variants[] = {
    {"raw",
     [](int fd, const char* m, std::size_t n) {
       if (::send(fd, m, n, 0) != static_cast<ssize_t>(n)) die("send");
     },
     [](int fd, char* p, std::size_t n) { recv_all(fd, p, n); }},
    {"raw+4",
     [](int fd, const char* m, std::size_t n) {
       if (::send(fd, m, n + 4, 0) != static_cast<ssize_t>(n + 4)) die("send");
     },
     [](int fd, char* p, std::size_t n) { recv_all(fd, p, n + 4); }},
    {"staged",
     [](int fd, const char* m, std::size_t n) {
       auto header = static_cast<std::uint32_t>(n);
       std::memcpy(staging, &header, 4);
       std::memcpy(staging + 4, m, n);
       if (::send(fd, staging, n + 4, 0) != static_cast<ssize_t>(n + 4)) die("send");
     },
     [](int fd, char* p, std::size_t n) {
       std::size_t have = 0;
       while (have < n + 4) {
         ssize_t r = ::recv(fd, spill + have, spill_size - have, 0);
         if (r <= 0) die("recv");
         have += static_cast<std::size_t>(r);
       }
       std::memcpy(p, spill + 4, n);
     }},
    {"iovec",
     [](int fd, const char* m, std::size_t n) {
       auto header = static_cast<std::uint32_t>(n);
       iovec parts[2] = {{&header, 4}, {const_cast<char*>(m), n}};
       msghdr msg{};
       msg.msg_iov = parts;
       msg.msg_iovlen = 2;
       if (::sendmsg(fd, &msg, 0) != static_cast<ssize_t>(n + 4)) die("sendmsg");
     },
     [](int fd, char* p, std::size_t n) {
       std::uint32_t header = 0;
       iovec parts[3] = {{&header, 4}, {p, n}, {spill, spill_size}};
       msghdr msg{};
       msg.msg_iov = parts;
       msg.msg_iovlen = 3;
       ssize_t r = ::recvmsg(fd, &msg, 0);
       if (r <= 0) die("recvmsg");
       if (static_cast<std::size_t>(r) < n + 4)
         recv_all(fd, p + (r - 4), n + 4 - static_cast<std::size_t>(r));
     }},
};

void pin_to_cpu0() {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) die("sched_setaffinity");
  sched_param fifo{};
  fifo.sched_priority = 1;
  (void)sched_setscheduler(0, SCHED_FIFO, &fifo);  // as the bench: when permitted
}

// Runs `variants` over their connected pairs (`ends[v][0]` the initiator's, [1] the responder's)
// and prints one line per variant.
template <typename Send, typename Recv>
void ping_pong(const char* transport, int count, const char* const* names, Send send, Recv recv,
               std::size_t size, int blocks) {
  std::vector<char> message(size + 8, 'x');
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    for (int b = 0; b < blocks * count; ++b)
      for (int i = 0; i < round_trips_per_block; ++i) {
        recv(b % count, 1, message.data());
        send(b % count, 1, message.data());
      }
    _exit(0);
  }
  std::vector<std::vector<double>> means(static_cast<std::size_t>(count));
  for (int b = 0; b < blocks * count; ++b) {
    double start = now_us();
    for (int i = 0; i < round_trips_per_block; ++i) {
      send(b % count, 0, message.data());
      recv(b % count, 0, message.data());
    }
    means[static_cast<std::size_t>(b % count)].push_back((now_us() - start) /
                                                         round_trips_per_block);
  }
  waitpid(child, nullptr, 0);
  double raw = 0;
  for (int v = 0; v < count; ++v) {
    auto& m = means[static_cast<std::size_t>(v)];
    std::sort(m.begin(), m.end());
    double median = m[m.size() / 2];
    if (v == 0) raw = median;
    std::printf("%-5s %-7s %6zu B  %8.3f us  x raw %.3f\n", transport, names[v], size, median,
                median / raw);
  }
}

void stream_case(const char* transport, bool tcp, std::size_t size, int blocks) {
  constexpr int count = std::size(stream_variants);
  int ends[count][2];
  for (auto& pair : ends) {
    if (!tcp) {
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) die("socketpair");
      continue;
    }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof at;
    if (bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&at), &length) != 0 ||
        listen(listener, 1) != 0)
      die("tcp listener");
    pair[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(pair[0], reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) die("connect");
    pair[1] = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (pair[1] < 0) die("accept4");
    close(listener);
    int on = 1;
    setsockopt(pair[0], IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(pair[1], IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  const char* names[count];
  for (int v = 0; v < count; ++v) names[v] = stream_variants[v].name;
  ping_pong(
      transport, count, names,
      [&](int v, int side, const char* m) { stream_variants[v].send(ends[v][side], m, size); },
      [&](int v, int side, char* p) { stream_variants[v].recv(ends[v][side], p, size); }, size,
      blocks);
  for (auto& pair : ends) {
    close(pair[0]);
    close(pair[1]);
  }
}

// One direction of a file log: the writer's descriptor and offset, the follower's descriptor,
// inotify watch and offset.
struct file_direction {
  int write_fd = -1;
  int read_fd = -1;
  int events = -1;
  off_t written = 0;
  off_t read = 0;
};

void lock(int fd, short type) {
  struct flock whole {};
  whole.l_type = type;
  whole.l_whence = SEEK_SET;
  if (fcntl(fd, type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW, &whole) != 0) die("fcntl lock");
}

void file_case(std::size_t size, int blocks) {
  constexpr int count = 2;  // raw, raw+8
  const std::size_t record[count] = {size, size + 8};
  const char* names[count] = {"raw", "raw+8"};
  // [variant][0]: initiator -> responder, [1]: the replies.
  file_direction dirs[count][2];
  std::vector<std::string> paths;
  for (int v = 0; v < count; ++v)
    for (int d = 0; d < 2; ++d) {
      std::string path = "/tmp/framing-floor-" + std::to_string(getpid()) + "-" +
                         std::to_string(v) + std::to_string(d);
      auto& dir = dirs[v][d];
      dir.write_fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (dir.write_fd < 0) die(path.c_str());
      dir.read_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      paths.push_back(path);
    }
  // Each process watches the file it follows; watches are made before the fork, in both.
  for (int v = 0; v < count; ++v)
    for (int d = 0; d < 2; ++d) {
      auto& dir = dirs[v][d];
      dir.events = inotify_init1(IN_CLOEXEC);
      if (dir.events < 0 ||
          inotify_add_watch(dir.events, paths[static_cast<std::size_t>(v * 2 + d)].c_str(),
                            IN_MODIFY) < 0)
        die("inotify");
    }
  alignas(inotify_event) char event_buffer[4096];
  auto send = [&](int v, int side, const char* m) {
    auto& dir = dirs[v][side];
    std::size_t n = record[v];
    lock(dir.write_fd, F_WRLCK);
    if (pwrite(dir.write_fd, m, n, dir.written) != static_cast<ssize_t>(n)) die("pwrite");
    dir.written += static_cast<off_t>(n);
    lock(dir.write_fd, F_UNLCK);
  };
  auto recv = [&](int v, int side, char* p) {
    auto& dir = dirs[v][1 - side];
    std::size_t n = record[v];
    while (pread(dir.read_fd, p, n, dir.read) != static_cast<ssize_t>(n))
      if (read(dir.events, event_buffer, sizeof event_buffer) < 0 && errno != EINTR)
        die("read(inotify)");
    dir.read += static_cast<off_t>(n);
  };
  ping_pong("file", count, names, send, recv, size, blocks);
  for (auto& path : paths) unlink(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t size = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4096;
  int blocks = argc > 2 ? std::atoi(argv[2]) : 150;
  if (size == 0 || size > spill_size / 2 || blocks < 1) {
    std::fprintf(stderr, "usage: framing_floor [SIZE 1..%zu] [BLOCKS]\n", spill_size / 2);
    return 2;
  }
  pin_to_cpu0();
  stream_case("unix", false, size, blocks);
  stream_case("tcp", true, size, blocks);
  file_case(size, std::max(1, blocks / 10));
  return 0;
}
