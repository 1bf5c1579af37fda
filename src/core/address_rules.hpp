// The validation rules of address parts, shared by every parser of an ipcx address form (the
// channel addresses in address.cpp, the semaphore addresses in src/sync/semaphore.cpp).
#pragma once

#include <limits.h>

#include <string>
#include <string_view>

#include "ipcx/address.hpp"
#include "ipcx/error.hpp"

namespace ipcx::detail {

// errc::bad_address from parse_address, quoting `text`; `detail` says what was expected.
std::unexpected<error> malformed(std::string_view text, std::string detail);

bool has_dotdot_component(std::string_view path);

// A filesystem path: absolute, no NUL, no ".." component, at most `limit` bytes.
result<std::string> check_path(std::string_view text, std::string_view path, std::string_view form,
                               std::size_t limit = PATH_MAX - 1);

// A POSIX IPC name: "/name", one leading slash and no other, at most `limit` bytes.
result<std::string> check_ipc_name(std::string_view text, std::string_view name,
                                   std::string_view form, std::size_t limit = NAME_MAX);

// A System V key: a positive number (decimal or 0x-hex) into out.key, or an absolute path (for
// ftok) into out.path.
result<void> parse_sysv_key(std::string_view text, std::string_view rest, std::string_view form,
                            address& out);

}  // namespace ipcx::detail
