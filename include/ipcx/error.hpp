// ipcx/error.hpp — errors and results.
//
// Every fallible ipcx call returns `ipcx::result<T>` (`std::expected<T, ipcx::error>`). An error
// carries a code (an errno value in `std::generic_category()`, or an `ipcx::errc`), the operation
// that failed and the object it was applied to, and renders as one line:
//
//   auto ch = ipcx::channel::join("mq:/orders");
//   if (!ch) std::cerr << ch.error().message() << '\n';   // mq_open("/orders"): permission denied
//
// "Would block" and "nothing yet" are values (`std::optional`, `bool`), never errors.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace ipcx {

// Conditions that have no errno of their own.
enum class errc {
  bad_address = 1,     // an address string that does not parse
  message_too_large,   // a message larger than the receiver's buffer or the channel's maximum
  timed_out,           // the deadline passed before the operation could complete
  end_of_stream,       // the peer closed its end; no more messages will come
  peer_dead,           // the peer process died
  corrupt_segment,     // a shared-memory header or index failed validation
  corrupt_record,      // a persistent record (file log) failed its length or checksum check
  bad_frame,           // a stream frame header claims more than the configured maximum
  not_supported,       // the operation does not exist for this mechanism
  no_peer,             // a datagram endpoint has nobody to answer yet
};

}  // namespace ipcx

template <>
struct std::is_error_code_enum<ipcx::errc> : std::true_type {};

namespace ipcx {

const std::error_category& ipcx_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), ipcx_category()};
}

class error {
 public:
  // `detail`, when given, follows the cause: what was expected, or which limit was passed.
  error(std::error_code code, std::string operation, std::optional<std::string> object = {},
        std::string detail = {})
      : code_(code),
        operation_(std::move(operation)),
        object_(std::move(object)),
        detail_(std::move(detail)) {}
  error(errc code, std::string operation, std::optional<std::string> object = {},
        std::string detail = {})
      : error(make_error_code(code), std::move(operation), std::move(object), std::move(detail)) {}

  // An error from a failed system call: `errno_value` as reported by the kernel.
  static error from_errno(int errno_value, std::string operation,
                          std::optional<std::string> object = {}) {
    return {std::error_code(errno_value, std::generic_category()), std::move(operation),
            std::move(object)};
  }

  const std::error_code& code() const noexcept { return code_; }
  const std::string& operation() const noexcept { return operation_; }
  // Empty when the error has no object.
  const std::string& object() const noexcept {
    static const std::string none;
    return object_ ? *object_ : none;
  }
  const std::string& detail() const noexcept { return detail_; }

  // `operation("object"): cause`, `operation: cause` when there is no object, and `: detail`
  // appended when there is one.
  std::string message() const;

  bool operator==(errc e) const noexcept { return code_ == make_error_code(e); }
  bool operator==(std::errc e) const noexcept { return code_ == std::make_error_code(e); }

 private:
  std::error_code code_;
  std::string operation_;
  std::optional<std::string> object_;  // quoted even when empty: parse_address("")
  std::string detail_;
};

template <typename T>
using result = std::expected<T, error>;

// Shorthand for `return ipcx::fail(...)` in functions returning a result.
inline std::unexpected<error> fail(errc code, std::string operation,
                                   std::optional<std::string> object = {},
                                   std::string detail = {}) {
  return std::unexpected(error(code, std::move(operation), std::move(object), std::move(detail)));
}
inline std::unexpected<error> fail_errno(int errno_value, std::string operation,
                                         std::optional<std::string> object = {},
                                         std::string detail = {}) {
  return std::unexpected(error(std::error_code(errno_value, std::generic_category()),
                               std::move(operation), std::move(object), std::move(detail)));
}

}  // namespace ipcx
