// Maps an address to its mechanism's factory: the one place that lists every transport.
#include "transport/transport.hpp"

namespace ipcx::detail {

result<transport_ptr> open_transport(const address& where, open_mode mode,
                                     const channel_options& options) {
  switch (where.kind) {
    case mechanism::pipe: return open_pipe(where, mode, options);
    case mechanism::fifo: return open_fifo(where, mode, options);
    case mechanism::file: return open_file_log(where, mode, options);
    case mechanism::signal: return open_signal(where, mode, options);
    case mechanism::mq: return open_posix_mq(where, mode, options);
    case mechanism::sysv_mq: return open_sysv_mq(where, mode, options);
    case mechanism::unix_stream:
    case mechanism::unix_dgram:
    case mechanism::unix_seqpacket:
    case mechanism::tcp:
    case mechanism::udp: return open_socket(where, mode, options);
    case mechanism::shm:
    case mechanism::sysv_shm:
    case mechanism::memfd: return open_shm_channel(where, mode, options);
  }
  return fail(errc::not_supported, "channel", where.to_string());
}

result<void> remove_object(const address& where) {
  switch (where.kind) {
    case mechanism::fifo: return remove_fifo(where);
    case mechanism::file: return remove_file_log(where);
    case mechanism::mq: return remove_posix_mq(where);
    case mechanism::sysv_mq: return remove_sysv_mq(where);
    case mechanism::unix_stream:
    case mechanism::unix_dgram:
    case mechanism::unix_seqpacket: return remove_socket(where);
    case mechanism::shm:
    case mechanism::sysv_shm:
    case mechanism::memfd: return remove_shm_channel(where);
    case mechanism::pipe:
    case mechanism::signal:
    case mechanism::tcp:
    case mechanism::udp: return {};  // nothing named to remove
  }
  return {};
}

}  // namespace ipcx::detail
