// CRC32C (Castagnoli, the polynomial iSCSI, ext4 and LevelDB use) of a byte range.
//
// The file log stores it beside every record so a reader can tell a record that was written
// whole from one that was torn, overwritten or bit-flipped.
//
//   auto sum = ipcx::detail::crc32c(bytes);            // one call
//   auto same = ipcx::detail::crc32c_extend(           // or in pieces:
//       ipcx::detail::crc32c(first_half), second_half);  //   crc32c(a + b) == extend(crc32c(a), b)
//
// Portable table-driven code (slicing by 8: eight 1 KiB tables built at compile time, eight bytes
// per step). Thread-safe and signal-safe: no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ipcx::detail {

// The CRC32C of `data` appended to a message whose CRC32C was `crc` (0 for the empty message).
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept;

inline std::uint32_t crc32c(std::span<const std::byte> data) noexcept {
  return crc32c_extend(0, data);
}

}  // namespace ipcx::detail
