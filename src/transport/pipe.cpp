// Placeholder until this mechanism is written.
#include "transport/transport.hpp"

namespace ipcx::detail {

result<transport_ptr> open_pipe(const address& a, open_mode, const channel_options&) {
  return fail(errc::not_supported, "open_pipe", a.to_string());
}

result<std::pair<transport_ptr, transport_ptr>> make_pipe_pair(const channel_options&) {
  return fail(errc::not_supported, "pipe");
}

}  // namespace ipcx::detail
