// Placeholder until this mechanism is written.
#include "transport/transport.hpp"

namespace ipcx::detail {

result<transport_ptr> open_posix_mq(const address& a, open_mode, const channel_options&) {
  return fail(errc::not_supported, "open_posix_mq", a.to_string());
}

result<void> remove_posix_mq(const address& a) {
  return fail(errc::not_supported, "remove_posix_mq", a.to_string());
}

}  // namespace ipcx::detail
