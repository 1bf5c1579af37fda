// The internal interface every mechanism implements, and the factory for each one.
// Only src/transport/ knows what a mechanism is; the public types forward here.
#pragma once

#include <memory>
#include <span>

#include "ipcx/channel.hpp"

namespace ipcx::detail {

enum class open_mode { create, join, open };

// Deadline contract: deadline::never() blocks in the plain system call (no poll, no extra call:
// that path is what the benchmark compares with raw calls); an expired deadline makes exactly one
// non-blocking attempt; on expiry the call fails with errc::timed_out and has consumed nothing.
class transport {
 public:
  virtual ~transport() = default;
  virtual result<void> send(std::span<const std::byte> message, deadline until) = 0;
  virtual result<std::size_t> recv(std::span<std::byte> buffer, deadline until) = 0;
  virtual int wait_fd() const noexcept { return -1; }
  virtual channel_info info() const noexcept = 0;
  virtual const address& where() const noexcept = 0;
  virtual result<void> keep_across_exec() {
    return fail(errc::not_supported, "keep_across_exec", where().to_string());
  }
};

using transport_ptr = std::unique_ptr<transport>;

// One pair per mechanism, each in src/transport/<mechanism>.cpp.
result<transport_ptr> open_pipe(const address&, open_mode, const channel_options&);
result<std::pair<transport_ptr, transport_ptr>> make_pipe_pair(const channel_options&);
result<transport_ptr> open_fifo(const address&, open_mode, const channel_options&);
result<void> remove_fifo(const address&);
result<transport_ptr> open_file_log(const address&, open_mode, const channel_options&);
result<void> remove_file_log(const address&);
result<transport_ptr> open_signal(const address&, open_mode, const channel_options&);
result<transport_ptr> open_posix_mq(const address&, open_mode, const channel_options&);
result<void> remove_posix_mq(const address&);
result<transport_ptr> open_sysv_mq(const address&, open_mode, const channel_options&);
result<void> remove_sysv_mq(const address&);
// unix (stream, dgram, seqpacket), tcp, udp
result<transport_ptr> open_socket(const address&, open_mode, const channel_options&);
result<void> remove_socket(const address&);
// shm, sysv-shm, memfd: a segment holding two rings (src/transport/shm_channel.cpp)
result<transport_ptr> open_shm_channel(const address&, open_mode, const channel_options&);
result<void> remove_shm_channel(const address&);

result<transport_ptr> open_transport(const address&, open_mode, const channel_options&);
result<void> remove_object(const address&);

}  // namespace ipcx::detail
