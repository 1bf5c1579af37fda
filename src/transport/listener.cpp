#include "ipcx/listener.hpp"

#include "transport/socket_common.hpp"

namespace ipcx {

namespace detail {

struct listener_state {
  bound_socket bound;  // listening, O_NONBLOCK; owns the socket file
  channel_options options;
  std::string object;
};

}  // namespace detail

namespace {

result<std::unique_ptr<detail::listener_state>> listen_on(const address& where,
                                                          const channel_options& options,
                                                          bool replace_stale) {
  if (!detail::is_connection_socket(where.kind))
    return fail(errc::not_supported, "listener", where.to_string(),
                "a listener needs unix:, unix-seqpacket: or tcp://");
  auto bound = replace_stale ? detail::bind_socket_replacing_stale(where, options)
                             : detail::bind_socket(where, options);
  if (!bound) return std::unexpected(bound.error());
  auto state = std::make_unique<detail::listener_state>();
  state->object = bound->where.to_string();
  state->bound = std::move(*bound);
  state->options = options;
  return state;
}

}  // namespace

listener::listener(std::unique_ptr<detail::listener_state> state) noexcept
    : state_(std::move(state)) {}
listener::listener(listener&&) noexcept = default;
listener& listener::operator=(listener&&) noexcept = default;
listener::~listener() = default;

result<listener> listener::create(const ipcx::address& where, const channel_options& options) {
  auto state = listen_on(where, options, false);
  if (!state) return std::unexpected(state.error());
  return listener(std::move(*state));
}

result<listener> listener::create(std::string_view text, const channel_options& options) {
  auto where = ipcx::address::parse(text);
  if (!where) return std::unexpected(where.error());
  return create(*where, options);
}

result<listener> listener::open(const ipcx::address& where, const channel_options& options) {
  auto state = listen_on(where, options, true);
  if (!state) return std::unexpected(state.error());
  return listener(std::move(*state));
}

result<listener> listener::open(std::string_view text, const channel_options& options) {
  auto where = ipcx::address::parse(text);
  if (!where) return std::unexpected(where.error());
  return open(*where, options);
}

result<channel> listener::accept(deadline until) {
  auto fd = detail::accept_connection(state_->bound.fd.get(), until, state_->object);
  if (!fd) return std::unexpected(fd.error());
  auto transport =
      detail::make_connected_transport(std::move(*fd), state_->bound.where, state_->options);
  if (!transport) return std::unexpected(transport.error());
  return channel(std::move(*transport));
}

result<std::optional<channel>> listener::try_accept() {
  auto accepted = accept(deadline::immediate());
  if (accepted) return std::optional<channel>(std::move(*accepted));
  if (accepted.error() == errc::timed_out) return std::optional<channel>();
  return std::unexpected(accepted.error());
}

result<stream> listener::accept_stream(deadline until) {
  const auto& where = state_->bound.where;
  if (!detail::is_byte_stream_socket(where.kind))
    return fail(errc::not_supported, "accept_stream", state_->object,
                "raw streams exist for unix: and tcp:// only");
  auto fd = detail::accept_connection(state_->bound.fd.get(), until, state_->object);
  if (!fd) return std::unexpected(fd.error());
  if (where.kind == mechanism::tcp) {
    auto no_delay = detail::set_no_delay(fd->get(), state_->object);
    if (!no_delay) return std::unexpected(no_delay.error());
  }
  return stream(std::move(*fd), true, state_->object);
}

int listener::wait_fd() const noexcept { return state_->bound.fd.get(); }

const ipcx::address& listener::address() const noexcept { return state_->bound.where; }

}  // namespace ipcx
