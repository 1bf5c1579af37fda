// Descriptor helpers shared by the transports: deadline-bounded waits and flags.
#pragma once

#include <poll.h>

#include <optional>
#include <string>

#include "ipcx/deadline.hpp"
#include "ipcx/error.hpp"
#include "ipcx/unique_fd.hpp"

namespace ipcx::detail {

// Waits until `fd` reports one of `events` (POLLIN/POLLOUT). Returns false when the deadline passed
// first. POLLHUP/POLLERR count as ready: the following call reports what happened.
result<bool> wait_for(int fd, short events, deadline until, const std::string& object);

// Sets or clears FD_CLOEXEC / O_NONBLOCK.
result<void> set_cloexec(int fd, bool on, const std::string& object);
result<void> set_nonblocking(int fd, bool on, const std::string& object);
// Adds a file status flag (F_SETFL), e.g. O_DIRECT for a pipe's packet mode.
result<void> set_flag(int fd, int flag, const std::string& object);

// Once per process: SIGPIPE is ignored if it still has its default action, so a write to a closed
// pipe or socket returns EPIPE instead of killing the process.
void ignore_sigpipe_once();

// A second open file description of the same pipe or FIFO (through /proc/self/fd), so one can
// block in read/write and the other be O_NONBLOCK without an fcntl per call.
result<unique_fd> reopen(int fd, int flags, const std::string& object);

// A number from a /proc or /sys file (a host limit such as /proc/sys/kernel/msgmax), or nothing
// when it cannot be read.
std::optional<long> read_proc_number(const char* path);

}  // namespace ipcx::detail
