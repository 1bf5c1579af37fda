// shm:/name, sysv-shm:KEY, memfd:/path — a channel over a shared-memory segment holding two rings.
//
// Design:
//   - Segment: [ channel header, 64 bytes ][ ring "to creator" ][ ring "to joiner" ]. Each ring is
//     an ipcx::ring (src/ring) in its own 64-byte aligned sub-region. "to creator" is multi-
//     producer: any number of joiners (up to the ring's producer slots) may send to the creator,
//     e.g. several `ipcx send` processes. "to joiner" has a single producer (the creator) and a
//     single consumer (the joiner that receives first; another joiner receiving while it lives
//     gets EBUSY).
//   - The creator formats both rings and attaches at once (consumer of "to creator", producer of
//     "to joiner"). A joiner attaches lazily: as a producer on its first send, as the consumer on
//     its first recv, so a joiner that only sends never blocks another from receiving.
//   - The channel header is written by the creator before `magic` is stored (release); a joiner
//     loads magic (acquire), copies the fixed fields once and validates them against the mapping
//     (offsets aligned, both rings inside it, no overlap): errc::corrupt_segment otherwise. Each
//     ring then validates its own header and every index on use (see ring.hpp), so a scribbling
//     peer gives corrupt_segment, and a segment truncated before join fails at join (the mapping
//     is the segment's size at join time; see shared_memory.hpp for truncation after join).
//   - Sizes: options.max_message (default 65536) and options.capacity, the bytes of data per ring
//     (default 1 MiB, rounded up to a power of two, and raised so that a max_message record fits
//     in half of it, which the ring requires).
//   - memfd:/path: the memory has no name; the creator hands it to each joiner over the socket at
//     /path. The channel API has no "serve" call and the creator may be blocked anywhere (in the
//     ring's futex wait, or not in ipcx at all, e.g. waiting for a child to say it joined), so the
//     creator runs one small thread that polls the listening socket and a stop eventfd and serves
//     each joiner (serve_one) for as long as the channel lives. The thread touches only the
//     shared_memory object's listening socket, policy and descriptor, which nothing else uses after
//     creation; the destructor stops and joins it before anything is unmapped. A joiner waits at
//     most memfd_join_timeout for its hand-over.
//   - Peer death and waiting are the ring's: adaptive spin then futex, errc::peer_dead when the
//     other side died (within ~100 ms). The never-deadline path is exactly the ring's send/recv.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "core/syscall.hpp"
#include "ipcx/ring.hpp"
#include "ipcx/shared_memory.hpp"
#include "ipcx/unique_fd.hpp"
#include "transport/transport.hpp"

namespace ipcx::detail {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t channel_magic = 0x31434d4853584350ULL;  // "PCXSHMC1", little-endian
constexpr std::uint32_t channel_version = 1;
constexpr std::size_t cache_line = 64;
constexpr std::size_t default_max_message = 65536;
constexpr std::size_t default_ring_capacity = std::size_t{1} << 20;
constexpr std::size_t max_ring_capacity = std::size_t{1} << 34;  // 16 GiB per ring
// A creator that has made the segment but not yet published the header (a joiner raced it).
constexpr auto format_wait = 200ms;
constexpr auto memfd_join_timeout = 10s;

struct channel_header {
  // Stored last by the creator (release), loaded by joiners (acquire); the fields below are
  // immutable after it, but a scribbling peer may still change them: they are copied and checked.
  std::atomic<std::uint64_t> magic;
  std::uint32_t version;
  std::uint32_t header_size;
  std::uint64_t to_creator_offset;
  std::uint64_t to_creator_size;
  std::uint64_t to_joiner_offset;
  std::uint64_t to_joiner_size;
  std::uint64_t max_message;
  std::uint64_t reserved;
};
static_assert(sizeof(channel_header) == cache_line);

struct layout {
  std::uint64_t to_creator_offset, to_creator_size, to_joiner_offset, to_joiner_size;
  std::uint64_t max_message;
};

std::string_view part_name(bool to_creator) { return to_creator ? "to creator" : "to joiner"; }

// Sizes for a new channel, from the options; EINVAL for sizes the ring cannot hold.
result<layout> plan(const address& where, const channel_options& options) {
  std::uint64_t max_message = options.max_message > 0 ? options.max_message : default_max_message;
  // A record is an 8-byte word plus the payload padded to 8, and may take half the ring.
  std::uint64_t needed = 2 * (((max_message + 7) & ~std::uint64_t{7}) + 8);
  std::uint64_t capacity = options.capacity > 0 ? options.capacity : default_ring_capacity;
  capacity = std::max<std::uint64_t>({capacity, needed, 256});
  if (capacity > max_ring_capacity)
    return std::unexpected(error(std::make_error_code(std::errc::invalid_argument),
                                 "channel::create", where.to_string(),
                                 "max_message " + std::to_string(max_message) + " and capacity " +
                                     std::to_string(options.capacity) + " need rings larger than " +
                                     std::to_string(max_ring_capacity) + " bytes"));
  capacity = std::bit_ceil(capacity);
  std::uint64_t ring_size = ring::region_size(capacity);
  return layout{.to_creator_offset = sizeof(channel_header),
                .to_creator_size = ring_size,
                .to_joiner_offset = sizeof(channel_header) + ring_size,
                .to_joiner_size = ring_size,
                .max_message = max_message};
}

// The header of a joined segment, copied once and checked against the mapping.
result<layout> read_header(std::span<std::byte> bytes, const std::string& text) {
  auto bad = [&](std::string detail) {
    return std::unexpected(error(errc::corrupt_segment, "channel::join", text, std::move(detail)));
  };
  if (bytes.size() < sizeof(channel_header))
    return bad("the segment has " + std::to_string(bytes.size()) +
               " bytes, fewer than a channel header (" + std::to_string(sizeof(channel_header)) +
               ")");
  auto* h = reinterpret_cast<channel_header*>(bytes.data());
  std::uint64_t magic = h->magic.load(std::memory_order_acquire);
  // A zero magic is a segment whose creator has not finished formatting it: wait a little.
  for (auto until = std::chrono::steady_clock::now() + format_wait;
       magic == 0 && std::chrono::steady_clock::now() < until;
       magic = h->magic.load(std::memory_order_acquire))
    std::this_thread::sleep_for(1ms);
  if (magic != channel_magic)
    return bad(
        "channel magic " + std::to_string(magic) + ", expected " + std::to_string(channel_magic) +
        (magic == 0 ? " (not formatted: is it an ipcx channel?)" : " (not an ipcx channel)"));
  // Volatile reads: the compiler must not re-read a field after it was checked.
  auto field = [](const auto& f) {
    return *static_cast<const volatile std::remove_cvref_t<decltype(f)>*>(&f);
  };
  if (auto v = field(h->version); v != channel_version)
    return bad("channel version " + std::to_string(v) + ", this build reads version " +
               std::to_string(channel_version));
  if (auto v = field(h->header_size); v != sizeof(channel_header))
    return bad("channel header size " + std::to_string(v) + ", expected " +
               std::to_string(sizeof(channel_header)));
  layout l{.to_creator_offset = field(h->to_creator_offset),
           .to_creator_size = field(h->to_creator_size),
           .to_joiner_offset = field(h->to_joiner_offset),
           .to_joiner_size = field(h->to_joiner_size),
           .max_message = field(h->max_message)};
  const std::uint64_t size = bytes.size();
  auto inside = [&](std::uint64_t offset, std::uint64_t length) {
    return offset % cache_line == 0 && offset >= sizeof(channel_header) && offset <= size &&
           length <= size - offset && length > 0;
  };
  for (bool to_creator : {true, false}) {
    auto offset = to_creator ? l.to_creator_offset : l.to_joiner_offset;
    auto length = to_creator ? l.to_creator_size : l.to_joiner_size;
    if (!inside(offset, length))
      return bad("ring \"" + std::string(part_name(to_creator)) + "\" at offset " +
                 std::to_string(offset) + ", " + std::to_string(length) +
                 " bytes, does not fit the " + std::to_string(size) + "-byte segment");
  }
  bool apart = l.to_creator_offset + l.to_creator_size <= l.to_joiner_offset ||
               l.to_joiner_offset + l.to_joiner_size <= l.to_creator_offset;
  if (!apart) return bad("the two rings overlap");
  return l;
}

class shm_channel final : public transport {
 public:
  shm_channel(address where, shared_memory segment, layout l)
      : where_(std::move(where)),
        text_(where_.to_string()),
        segment_(std::move(segment)),
        layout_(l) {}

  ~shm_channel() override {
    if (server_.joinable()) {
      std::uint64_t one = 1;
      // The stop eventfd cannot be full (one write), so this write does not fail in practice;
      // were it to, the thread would still be polling: abort rather than hang or unmap under it.
      if (sys([&] { return ::write(stop_.get(), &one, sizeof one); }) != sizeof one) std::abort();
      server_.join();
    }
    // Rings go before the segment (a ring's destructor writes its header): members order it.
  }

  // Creator: formats the rings and publishes the header.
  result<void> format() {
    auto bytes = segment_.bytes();
    auto to_creator =
        ring::create(region(true),
                     {.capacity_bytes = layout_.to_creator_size - ring::region_size(0),
                      .max_message = layout_.max_message,
                      .producers = ring_producers::multi,
                      .name = text_ + " (to creator)"},
                     ring_role::consumer);
    if (!to_creator) return std::unexpected(to_creator.error());
    auto to_joiner = ring::create(region(false),
                                  {.capacity_bytes = layout_.to_joiner_size - ring::region_size(0),
                                   .max_message = layout_.max_message,
                                   .producers = ring_producers::single,
                                   .name = text_ + " (to joiner)"},
                                  ring_role::producer);
    if (!to_joiner) return std::unexpected(to_joiner.error());
    incoming_.emplace(std::move(*to_creator));
    outgoing_.emplace(std::move(*to_joiner));
    auto* h = ::new (bytes.data()) channel_header{};
    h->version = channel_version;
    h->header_size = sizeof(channel_header);
    h->to_creator_offset = layout_.to_creator_offset;
    h->to_creator_size = layout_.to_creator_size;
    h->to_joiner_offset = layout_.to_joiner_offset;
    h->to_joiner_size = layout_.to_joiner_size;
    h->max_message = layout_.max_message;
    h->magic.store(channel_magic, std::memory_order_release);
    return {};
  }

  // memfd:/path creator: serves hand-overs in a thread until the channel closes.
  result<void> start_serving() {
    stop_.reset(sys([] { return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }));
    if (!stop_) return fail_errno(errno, "eventfd", text_);
    server_ = std::thread([this] { serve(); });
    return {};
  }

  result<void> send(std::span<const std::byte> message, deadline until) override {
    if (!outgoing_) [[unlikely]] {
      if (message.size() > layout_.max_message) return too_large(message.size());
      auto attached = attach(true);
      if (!attached) return std::unexpected(attached.error());
    }
    return outgoing_->send(message, until);
  }

  result<std::size_t> recv(std::span<std::byte> buffer, deadline until) override {
    if (!incoming_) [[unlikely]] {
      auto attached = attach(false);
      if (!attached) return std::unexpected(attached.error());
    }
    return incoming_->recv(buffer, until);
  }

  channel_info info() const noexcept override {
    return {.kind = where_.kind,
            .max_message = layout_.max_message,
            .ordered = true,
            .persistent = false,
            .cross_host = false,
            .stream = false};
  }

  int wait_fd() const noexcept override { return incoming_ ? incoming_->wait_fd() : -1; }
  const address& where() const noexcept override { return where_; }

 private:
  std::span<std::byte> region(bool to_creator) const {
    auto bytes = segment_.bytes();
    return to_creator ? bytes.subspan(layout_.to_creator_offset, layout_.to_creator_size)
                      : bytes.subspan(layout_.to_joiner_offset, layout_.to_joiner_size);
  }

  // Joiner: a producer of "to creator" for send, the consumer of "to joiner" for recv.
  result<void> attach(bool for_send) {
    auto attached =
        ring::attach(region(for_send), for_send ? ring_role::producer : ring_role::consumer,
                     {.name = text_ + " (" + std::string(part_name(for_send)) + ")"});
    if (!attached) return std::unexpected(attached.error());
    // The ring's own max_message is what it enforces; the channel header's must agree.
    if (attached->max_message() != layout_.max_message)
      return fail(errc::corrupt_segment, "channel::join", text_,
                  "ring max_message " + std::to_string(attached->max_message()) +
                      " differs from the channel's " + std::to_string(layout_.max_message));
    (for_send ? outgoing_ : incoming_).emplace(std::move(*attached));
    return {};
  }

  std::unexpected<error> too_large(std::size_t size) const {
    return fail(errc::message_too_large, "send", text_,
                std::to_string(size) + " bytes, the channel's max_message is " +
                    std::to_string(layout_.max_message));
  }

  void serve() {
    std::array<pollfd, 2> fds{pollfd{.fd = segment_.serve_fd(), .events = POLLIN, .revents = 0},
                              pollfd{.fd = stop_.get(), .events = POLLIN, .revents = 0}};
    for (;;) {
      if (sys([&] { return ::poll(fds.data(), fds.size(), -1); }) < 0) return;
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) {
        // One attempt: the listening socket is non-blocking. A joiner the policy refuses is told
        // so by serve_one and gets its own error; one that gave up is simply gone. Neither
        // concerns the creator, so the result is dropped.
        (void)segment_.serve_one(deadline::immediate());
      }
    }
  }

  address where_;
  std::string text_;
  shared_memory segment_;
  layout layout_;
  // Creator: incoming = "to creator" (consumer), outgoing = "to joiner" (producer).
  // Joiner: incoming = "to joiner" (consumer), outgoing = "to creator" (producer).
  std::optional<ring> incoming_;
  std::optional<ring> outgoing_;
  unique_fd stop_;
  std::thread server_;
};

segment_options segment_for(const channel_options& options, bool creating) {
  return {.permissions = options.permissions,
          .remove_on_close = creating && options.remove_on_close,
          .peers = {},
          .until = deadline(memfd_join_timeout)};
}

result<transport_ptr> create_channel(const address& where, const channel_options& options) {
  auto l = plan(where, options);
  if (!l) return std::unexpected(l.error());
  auto segment = shared_memory::create(where, l->to_joiner_offset + l->to_joiner_size,
                                       segment_for(options, true));
  if (!segment) return std::unexpected(segment.error());
  auto ch = std::make_unique<shm_channel>(where, std::move(*segment), *l);
  // On failure the channel's destructor removes the segment only with remove_on_close; a
  // half-made named segment is removed here so a failed create leaves nothing behind.
  if (auto formatted = ch->format(); !formatted) {
    ch.reset();
    if (where.kind != mechanism::memfd) (void)shared_memory::remove(where);
    return std::unexpected(formatted.error());
  }
  if (where.kind == mechanism::memfd) {
    if (auto serving = ch->start_serving(); !serving) return std::unexpected(serving.error());
  }
  return transport_ptr(std::move(ch));
}

result<transport_ptr> join_channel(const address& where, const channel_options& options) {
  auto segment = shared_memory::join(where, sizeof(channel_header), segment_for(options, false));
  if (!segment) return std::unexpected(segment.error());
  auto l = read_header(segment->bytes(), where.to_string());
  if (!l) return std::unexpected(l.error());
  return transport_ptr(std::make_unique<shm_channel>(where, std::move(*segment), *l));
}

bool missing(const address& where, const error& e) {
  return e == std::errc::no_such_file_or_directory ||
         // memfd:/path: a socket file nobody listens on is a dead creator's; create replaces it.
         (where.kind == mechanism::memfd && e == std::errc::connection_refused);
}

}  // namespace

result<transport_ptr> open_shm_channel(const address& where, open_mode mode,
                                       const channel_options& options) {
  if (where.kind == mechanism::memfd && where.path.empty())
    return fail(errc::bad_address, "channel", where.to_string(),
                "a memfd channel needs a socket path to meet at: memfd:/path");
  if (mode == open_mode::create) return create_channel(where, options);
  if (mode == open_mode::join) return join_channel(where, options);
  // open: join, else create; someone may create or remove it in between: retry a few times.
  for (int attempt = 0;; ++attempt) {
    auto joined = join_channel(where, options);
    if (joined || !missing(where, joined.error()) || attempt == 8) return joined;
    auto created = create_channel(where, options);
    if (created || created.error() != std::errc::file_exists) return created;
  }
}

result<void> remove_shm_channel(const address& where) {
  auto removed = shared_memory::remove(where);
  // memfd:/path names no lasting object: its socket file lives and dies with the creator, so
  // once the creator is gone there is nothing left to remove, which is what `rm` wants.
  if (!removed && where.kind == mechanism::memfd &&
      removed.error() == std::errc::no_such_file_or_directory)
    return {};
  return removed;
}

}  // namespace ipcx::detail
