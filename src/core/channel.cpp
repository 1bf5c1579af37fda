#include "ipcx/channel.hpp"

#include "transport/transport.hpp"

namespace ipcx {
namespace {

result<channel> open_with(std::string_view text, detail::open_mode mode,
                          const channel_options& options) {
  auto where = address::parse(text);
  if (!where) return std::unexpected(where.error());
  auto transport = detail::open_transport(*where, mode, options);
  if (!transport) return std::unexpected(transport.error());
  return channel(std::move(*transport));
}

result<channel> open_with(const address& where, detail::open_mode mode,
                          const channel_options& options) {
  auto transport = detail::open_transport(where, mode, options);
  if (!transport) return std::unexpected(transport.error());
  return channel(std::move(*transport));
}

}  // namespace

channel::channel(std::unique_ptr<detail::transport> transport) noexcept
    : transport_(std::move(transport)) {}
channel::channel(channel&&) noexcept = default;
channel& channel::operator=(channel&&) noexcept = default;
channel::~channel() = default;

result<channel> channel::create(std::string_view a, const channel_options& o) {
  return open_with(a, detail::open_mode::create, o);
}
result<channel> channel::join(std::string_view a, const channel_options& o) {
  return open_with(a, detail::open_mode::join, o);
}
result<channel> channel::open(std::string_view a, const channel_options& o) {
  return open_with(a, detail::open_mode::open, o);
}
result<channel> channel::create(const ipcx::address& a, const channel_options& o) {
  return open_with(a, detail::open_mode::create, o);
}
result<channel> channel::join(const ipcx::address& a, const channel_options& o) {
  return open_with(a, detail::open_mode::join, o);
}
result<channel> channel::open(const ipcx::address& a, const channel_options& o) {
  return open_with(a, detail::open_mode::open, o);
}

result<std::pair<channel, channel>> channel::pipe(const channel_options& options) {
  auto ends = detail::make_pipe_pair(options);
  if (!ends) return std::unexpected(ends.error());
  return std::pair{channel(std::move(ends->first)), channel(std::move(ends->second))};
}

result<void> channel::remove(std::string_view text) {
  auto where = address::parse(text);
  if (!where) return std::unexpected(where.error());
  return detail::remove_object(*where);
}
result<void> channel::remove(const ipcx::address& where) { return detail::remove_object(where); }

result<void> channel::send(std::span<const std::byte> message, deadline until) {
  return transport_->send(message, until);
}

result<bool> channel::try_send(std::span<const std::byte> message) {
  auto sent = transport_->send(message, deadline::immediate());
  if (sent) return true;
  if (sent.error() == errc::timed_out) return false;
  return std::unexpected(sent.error());
}

result<std::size_t> channel::recv(std::span<std::byte> buffer, deadline until) {
  return transport_->recv(buffer, until);
}

result<std::optional<std::size_t>> channel::try_recv(std::span<std::byte> buffer) {
  auto got = transport_->recv(buffer, deadline::immediate());
  if (got) return std::optional<std::size_t>(*got);
  if (got.error() == errc::timed_out) return std::optional<std::size_t>();
  return std::unexpected(got.error());
}

int channel::wait_fd() const noexcept { return transport_->wait_fd(); }
channel_info channel::info() const noexcept { return transport_->info(); }
const ipcx::address& channel::address() const noexcept { return transport_->where(); }
result<void> channel::keep_across_exec() { return transport_->keep_across_exec(); }

}  // namespace ipcx
