// The two sides of every ping-pong: raw system calls, and an ipcx channel pair.
//
// An endpoint has `bool send(const std::byte*, std::size_t)`, `ssize_t recv(std::byte*,
// std::size_t size)` (-1 on failure; `size` is the message size both sides agreed on) and
// `error()`, the text of the last failure. The round-trip loop is a template over the endpoint, so
// a raw endpoint's calls are inlined into it: the raw side is exactly the system calls a C
// programmer would write, and nothing else (no ipcx code, no virtual call, no allocation).
// Failure paths format their message only when they fail.
#pragma once

#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/msg.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "ipcx/channel.hpp"
#include "stream.hpp"

namespace ipcx::bench {

class raw_endpoint_base {
 public:
  const std::string& error() const { return error_; }

 protected:
  bool failed(const char* call) {
    error_ = std::string(call) + ": " + std::strerror(errno);
    return false;
  }
  ssize_t failed_size(const char* call) {
    failed(call);
    return -1;
  }
  ssize_t closed(const char* what) {
    error_ = std::string(what) + ": the peer closed";
    return -1;
  }

  std::string error_;
};

// pipe, fifo: write one descriptor, read another.
class fd_pair_endpoint : public raw_endpoint_base {
 public:
  fd_pair_endpoint(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

  bool send(const std::byte* data, std::size_t size) {
    // Writes up to PIPE_BUF (4 KiB here) are whole: one call.
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(write_fd_, data + done, size - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failed("write");
      }
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::read(read_fd_, data + done, size - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failed_size("read");
      }
      if (n == 0) return closed("read");
      done += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

 private:
  int read_fd_;
  int write_fd_;
};

// Connected sockets: unix stream (whole messages by looping), seqpacket, dgram and udp clients.
class socket_endpoint : public raw_endpoint_base {
 public:
  socket_endpoint(int fd, bool stream) : fd_(fd), stream_(stream) {}

  bool send(const std::byte* data, std::size_t size) {
    std::size_t done = 0;
    do {
      ssize_t n = ::send(fd_, data + done, size - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failed("send");
      }
      done += static_cast<std::size_t>(n);
    } while (stream_ && done < size);
    return true;
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    std::size_t done = 0;
    do {
      ssize_t n = ::recv(fd_, data + done, size - done, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return failed_size("recv");
      }
      if (n == 0 && stream_) return closed("recv");
      done += static_cast<std::size_t>(n);
    } while (stream_ && done < size);
    return static_cast<ssize_t>(done);
  }

 private:
  int fd_;
  bool stream_;
};

// A bound datagram socket answering whoever sent last (unix-dgram, udp server side).
class dgram_server_endpoint : public raw_endpoint_base {
 public:
  explicit dgram_server_endpoint(int fd) : fd_(fd) {}

  ssize_t recv(std::byte* data, std::size_t size) {
    for (;;) {
      peer_len_ = sizeof peer_;
      ssize_t n = ::recvfrom(fd_, data, size, 0, reinterpret_cast<sockaddr*>(&peer_), &peer_len_);
      if (n >= 0) return n;
      if (errno != EINTR) return failed_size("recvfrom");
    }
  }
  bool send(const std::byte* data, std::size_t size) {
    for (;;) {
      ssize_t n =
          ::sendto(fd_, data, size, MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&peer_), peer_len_);
      if (n >= 0) return true;
      if (errno != EINTR) return failed("sendto");
    }
  }

 private:
  int fd_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;
};

// file: pwrite records at the end of one file; wait on inotify for the other, then pread. In a
// ping-pong exactly one write is outstanding per file, so one event means one record; the loop
// only guards against an event that arrives before the data is visible (it cannot on Linux, where
// IN_MODIFY is queued after the write completes).
class file_endpoint : public raw_endpoint_base {
 public:
  file_endpoint(int write_fd, int read_fd, int inotify_fd)
      : write_fd_(write_fd), read_fd_(read_fd), inotify_fd_(inotify_fd) {}

  // The record log's contract is that several writers never interleave, so a writer appends under
  // a whole-file lock (OFD, as ipcx does); the raw side does that same work, without the framing
  // and checksum ipcx adds.
  bool send(const std::byte* data, std::size_t size) {
    if (!lock(F_WRLCK)) return failed("fcntl(F_OFD_SETLKW)");
    for (;;) {
      ssize_t n = ::pwrite(write_fd_, data, size, write_offset_);
      if (n == static_cast<ssize_t>(size)) break;
      if (n < 0 && errno == EINTR) continue;
      if (n >= 0) errno = EIO;  // short write: the disk is full
      return failed("pwrite");
    }
    write_offset_ += static_cast<off_t>(size);
    if (!lock(F_UNLCK)) return failed("fcntl(F_OFD_SETLK)");
    return true;
  }
  // Reads first and waits for a modification only when the record is not all there yet: a
  // streaming writer may be many records ahead, and inotify folds their events into one.
  ssize_t recv(std::byte* data, std::size_t size) {
    for (;;) {
      ssize_t n = ::pread(read_fd_, data, size, read_offset_);
      if (n < 0) return failed_size("pread");
      if (n == static_cast<ssize_t>(size)) break;
      while (::read(inotify_fd_, events_, sizeof events_) < 0)
        if (errno != EINTR) return failed_size("read(inotify)");
    }
    read_offset_ += static_cast<off_t>(size);
    return static_cast<ssize_t>(size);
  }

 private:
  bool lock(short type) {
    struct flock whole {};
    whole.l_type = type;
    whole.l_whence = SEEK_SET;
    for (;;) {
      if (::fcntl(write_fd_, type == F_UNLCK ? F_OFD_SETLK : F_OFD_SETLKW, &whole) == 0)
        return true;
      if (errno != EINTR) return false;
    }
  }

  int write_fd_;
  int read_fd_;
  int inotify_fd_;
  off_t write_offset_ = 0;
  off_t read_offset_ = 0;
  alignas(inotify_event) std::byte events_[16 * (sizeof(inotify_event) + 16)];
};

// signal: queue a real-time signal carrying the message (up to 8 bytes) as its value; receive
// with a blocking read of a signalfd. Sending is rt_sigqueueinfo, the system call under
// sigqueue(3), with the siginfo sigqueue would build made once: glibc's sigqueue calls getpid and
// getuid on every call, two system calls that are no part of sending a signal.
class signal_endpoint : public raw_endpoint_base {
 public:
  signal_endpoint(pid_t peer, int signo, int signal_fd)
      : peer_(peer), signo_(signo), signal_fd_(signal_fd) {
    std::memset(&info_, 0, sizeof info_);
    info_.si_signo = signo;
    info_.si_code = SI_QUEUE;
    info_.si_pid = ::getpid();
    info_.si_uid = ::getuid();
  }

  bool send(const std::byte* data, std::size_t size) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, data, size < 8 ? size : 8);
    info_.si_value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(bits));
    for (;;) {
      if (::syscall(SYS_rt_sigqueueinfo, peer_, signo_, &info_) == 0) return true;
      if (errno == EAGAIN) {
        // The receiver's queue is full (a stream outruns it): let it run, which on one core under
        // SCHED_FIFO it otherwise never would.
        ::sched_yield();
        continue;
      }
      if (errno != EINTR) return failed("rt_sigqueueinfo");
    }
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    signalfd_siginfo info;
    for (;;) {
      ssize_t n = ::read(signal_fd_, &info, sizeof info);
      if (n == static_cast<ssize_t>(sizeof info)) break;
      if (n < 0 && errno == EINTR) continue;
      return failed_size("read(signalfd)");
    }
    std::uint64_t bits = info.ssi_ptr;
    std::memcpy(data, &bits, size < 8 ? size : 8);
    return static_cast<ssize_t>(size);
  }

 private:
  pid_t peer_;
  int signo_;
  int signal_fd_;
  siginfo_t info_;
};

// mq: mq_send on one queue, mq_receive on the other.
class mq_endpoint : public raw_endpoint_base {
 public:
  mq_endpoint(mqd_t send_queue, mqd_t receive_queue)
      : send_queue_(send_queue), receive_queue_(receive_queue) {}

  bool send(const std::byte* data, std::size_t size) {
    for (;;) {
      if (::mq_send(send_queue_, reinterpret_cast<const char*>(data), size, 0) == 0) return true;
      if (errno != EINTR) return failed("mq_send");
    }
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    for (;;) {
      ssize_t n = ::mq_receive(receive_queue_, reinterpret_cast<char*>(data), size, nullptr);
      if (n >= 0) return n;
      if (errno != EINTR) return failed_size("mq_receive");
    }
  }

 private:
  mqd_t send_queue_;
  mqd_t receive_queue_;
};

// sysv-mq: msgsnd/msgrcv of {long mtype; payload}. The payload is copied in and out of one
// preallocated message buffer, since msgsnd needs the type word in front of it.
class sysv_endpoint : public raw_endpoint_base {
 public:
  sysv_endpoint(int send_id, int receive_id, std::size_t max_size)
      : send_id_(send_id),
        receive_id_(receive_id),
        message_(std::make_unique<long[]>(1 + (max_size + sizeof(long) - 1) / sizeof(long))) {}

  bool send(const std::byte* data, std::size_t size) {
    message_[0] = 1;
    std::memcpy(message_.get() + 1, data, size);
    for (;;) {
      if (::msgsnd(send_id_, message_.get(), size, 0) == 0) return true;
      if (errno != EINTR) return failed("msgsnd");
    }
  }
  ssize_t recv(std::byte* data, std::size_t size) {
    for (;;) {
      ssize_t n = ::msgrcv(receive_id_, message_.get(), size, 0, 0);
      if (n >= 0) {
        std::memcpy(data, message_.get() + 1, static_cast<std::size_t>(n));
        return n;
      }
      if (errno != EINTR) return failed_size("msgrcv");
    }
  }

 private:
  int send_id_;
  int receive_id_;
  std::unique_ptr<long[]> message_;
};

// ipcx: one channel to send on and one to receive on (the same one for pipes and sockets).
using ipcx_endpoint = api_endpoint<channel>;

}  // namespace ipcx::bench
