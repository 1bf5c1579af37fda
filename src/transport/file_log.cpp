// Placeholder until this mechanism is written.
#include "transport/transport.hpp"

namespace ipcx::detail {

result<transport_ptr> open_file_log(const address& a, open_mode, const channel_options&) {
  return fail(errc::not_supported, "open_file_log", a.to_string());
}

result<void> remove_file_log(const address& a) {
  return fail(errc::not_supported, "remove_file_log", a.to_string());
}

}  // namespace ipcx::detail
