#include "ipcx/address.hpp"

#include "core/address_rules.hpp"

#include <limits.h>
#include <sys/un.h>

#include <array>
#include <charconv>
#include <utility>

namespace ipcx {
namespace {

struct scheme {
  std::string_view prefix;
  mechanism kind;
};

// Longer prefixes first: "unix-dgram:" must not be taken for "unix:".
constexpr std::array<scheme, 14> schemes{{
    {"unix-seqpacket:", mechanism::unix_seqpacket},
    {"unix-dgram:", mechanism::unix_dgram},
    {"sysv-shm:", mechanism::sysv_shm},
    {"sysv-mq:", mechanism::sysv_mq},
    {"signal:", mechanism::signal},
    {"memfd:", mechanism::memfd},
    {"tcp://", mechanism::tcp},
    {"udp://", mechanism::udp},
    {"unix:", mechanism::unix_stream},
    {"pipe:", mechanism::pipe},
    {"fifo:", mechanism::fifo},
    {"file:", mechanism::file},
    {"shm:", mechanism::shm},
    {"mq:", mechanism::mq},
}};

constexpr std::string_view kExpected =
    "pipe:, fifo:/path, file:/path, signal:PID|self, shm:/name, sysv-shm:KEY, memfd:/socket, "
    "mq:/name, sysv-mq:KEY, unix:/path|@name, unix-dgram:/path, unix-seqpacket:/path, "
    "tcp://HOST:PORT or udp://HOST:PORT";

template <typename Int>
bool parse_int(std::string_view s, Int& out, int base = 10) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

namespace detail {

std::unexpected<error> malformed(std::string_view text, std::string detail) {
  return fail(errc::bad_address, "parse_address", std::string(text), std::move(detail));
}

bool has_dotdot_component(std::string_view path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace detail

namespace {
using namespace detail;

result<void> parse_host_port(std::string_view text, std::string_view rest, std::string_view form,
                             address& out) {
  std::string expected = "expected " + std::string(form);
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return malformed(text, expected + " (unclosed '[')");
    host = rest.substr(1, close - 1);
    if (rest.substr(close + 1).size() < 1 || rest[close + 1] != ':')
      return malformed(text, expected + " (missing :PORT)");
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return malformed(text, expected + " (missing :PORT)");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return malformed(text, expected + " (write IPv6 hosts in brackets: [::1]:PORT)");
  }
  if (host.empty()) return malformed(text, expected + " (missing HOST)");
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '%' || c == '_';
    if (!ok) return malformed(text, expected + " (HOST has an invalid character)");
  }
  unsigned value = 0;
  if (!parse_int(port, value) || value > 65535)
    return malformed(text, expected + " (PORT a number from 0 to 65535)");
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return {};
}

}  // namespace

namespace detail {

result<std::string> check_path(std::string_view text, std::string_view path, std::string_view form,
                               std::size_t limit) {
  std::string expected = "expected " + std::string(form);
  if (path.empty()) return malformed(text, expected + " (the path is empty)");
  if (path.find('\0') != std::string_view::npos)
    return malformed(text, expected + " (the path contains a NUL byte)");
  if (path.front() != '/') return malformed(text, expected + " (the path must be absolute)");
  if (has_dotdot_component(path)) return malformed(text, expected + " (\"..\" is not allowed)");
  if (path.size() > limit)
    return malformed(text, expected + " (longer than " + std::to_string(limit) + " bytes)");
  return std::string(path);
}

result<std::string> check_ipc_name(std::string_view text, std::string_view name,
                                   std::string_view form, std::size_t limit) {
  std::string expected = "expected " + std::string(form);
  if (name.find('\0') != std::string_view::npos)
    return malformed(text, expected + " (the name contains a NUL byte)");
  if (name.size() < 2 || name.front() != '/')
    return malformed(text, expected + " (a name starting with '/')");
  if (name.find('/', 1) != std::string_view::npos)
    return malformed(text, expected + " (no '/' after the first character)");
  if (name == "/." || name == "/..") return malformed(text, expected + " (\".\" and \"..\")");
  if (name.size() > limit)
    return malformed(text, expected + " (longer than " + std::to_string(limit) + " bytes)");
  return std::string(name);
}

result<void> parse_sysv_key(std::string_view text, std::string_view rest, std::string_view form,
                            address& out) {
  if (!rest.empty() && rest.front() == '/') {
    auto path = check_path(text, rest, form);
    if (!path) return std::unexpected(path.error());
    out.path = std::move(*path);
    return {};
  }
  long key = 0;
  bool ok = rest.starts_with("0x") || rest.starts_with("0X") ? parse_int(rest.substr(2), key, 16)
                                                             : parse_int(rest, key);
  // IPC_PRIVATE (0) cannot be joined by another process, so it is no address.
  if (!ok || key <= 0 || key > 0x7fffffff)
    return malformed(text, "expected " + std::string(form) +
                               " (KEY a positive number, decimal or 0x-hex, or an absolute path)");
  out.key = key;
  return {};
}

}  // namespace detail

std::string_view to_string(mechanism m) noexcept {
  for (const auto& s : schemes) {
    if (s.kind == m) {
      auto p = s.prefix;
      p.remove_suffix(p.ends_with("://") ? 3 : 1);
      return p;
    }
  }
  return "unknown";
}

result<address> address::parse(std::string_view text) {
  const scheme* found = nullptr;
  for (const auto& s : schemes) {
    if (text.starts_with(s.prefix)) {
      found = &s;
      break;
    }
  }
  if (found == nullptr) return malformed(text, "unknown scheme; expected one of " + std::string(kExpected));

  address out;
  out.kind = found->kind;
  std::string_view rest = text.substr(found->prefix.size());
  auto take_path = [&](std::string_view form, std::size_t limit = PATH_MAX - 1) -> result<void> {
    auto path = check_path(text, rest, form, limit);
    if (!path) return std::unexpected(path.error());
    out.path = std::move(*path);
    return {};
  };
  constexpr std::size_t sun_path_limit = sizeof(sockaddr_un{}.sun_path) - 1;

  result<void> ok{};
  switch (out.kind) {
    case mechanism::pipe:
      if (!rest.empty()) {
        auto comma = rest.find(',');
        if (comma == std::string_view::npos || !parse_int(rest.substr(0, comma), out.read_fd) ||
            !parse_int(rest.substr(comma + 1), out.write_fd) || out.read_fd < 0 ||
            out.write_fd < 0)
          return malformed(text, "expected pipe: or pipe:READ_FD,WRITE_FD");
      }
      break;
    case mechanism::fifo: ok = take_path("fifo:/path"); break;
    case mechanism::file: ok = take_path("file:/path"); break;
    case mechanism::signal:
      if (rest == "self") {
        out.pid = 0;
      } else if (!parse_int(rest, out.pid) || out.pid <= 0) {
        return malformed(text, "expected signal:PID (a positive process id) or signal:self");
      }
      break;
    case mechanism::shm:
    case mechanism::mq: {
      auto name = detail::check_ipc_name(text, rest,
                                         out.kind == mechanism::mq ? "mq:/name" : "shm:/name");
      if (!name) return std::unexpected(name.error());
      out.path = std::move(*name);
      break;
    }
    case mechanism::memfd: ok = take_path("memfd:/socket-path", sun_path_limit); break;
    case mechanism::sysv_shm: ok = parse_sysv_key(text, rest, "sysv-shm:KEY", out); break;
    case mechanism::sysv_mq: ok = parse_sysv_key(text, rest, "sysv-mq:KEY", out); break;
    case mechanism::unix_stream:
      if (rest.starts_with('@')) {
        std::string_view name = rest.substr(1);
        if (name.empty() || name.size() > sun_path_limit - 1 ||
            name.find('\0') != std::string_view::npos)
          return malformed(text, "expected unix:@name (1 to " +
                                     std::to_string(sun_path_limit - 1) + " bytes, no NUL)");
        out.abstract = true;
        out.path = std::string(name);
      } else {
        ok = take_path("unix:/path or unix:@name", sun_path_limit);
      }
      break;
    case mechanism::unix_dgram: ok = take_path("unix-dgram:/path", sun_path_limit); break;
    case mechanism::unix_seqpacket: ok = take_path("unix-seqpacket:/path", sun_path_limit); break;
    case mechanism::tcp: ok = parse_host_port(text, rest, "tcp://HOST:PORT", out); break;
    case mechanism::udp: ok = parse_host_port(text, rest, "udp://HOST:PORT", out); break;
  }
  if (!ok) return std::unexpected(ok.error());
  return out;
}

std::string address::to_string() const {
  std::string scheme_text(ipcx::to_string(kind));
  switch (kind) {
    case mechanism::pipe:
      if (read_fd == 0 && write_fd == 1) return "pipe:";
      return "pipe:" + std::to_string(read_fd) + "," + std::to_string(write_fd);
    case mechanism::signal:
      return pid == 0 ? "signal:self" : "signal:" + std::to_string(pid);
    case mechanism::sysv_shm:
    case mechanism::sysv_mq:
      return scheme_text + ":" + (path.empty() ? std::to_string(key) : path);
    case mechanism::unix_stream:
      return abstract ? "unix:@" + path : "unix:" + path;
    case mechanism::tcp:
    case mechanism::udp: {
      bool v6 = host.find(':') != std::string::npos;
      return scheme_text + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
    default:
      return scheme_text + ":" + path;
  }
}

}  // namespace ipcx
