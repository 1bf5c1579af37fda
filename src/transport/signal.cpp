// Placeholder until this mechanism is written.
#include "transport/transport.hpp"

namespace ipcx::detail {

result<transport_ptr> open_signal(const address& a, open_mode, const channel_options&) {
  return fail(errc::not_supported, "open_signal", a.to_string());
}

}  // namespace ipcx::detail
