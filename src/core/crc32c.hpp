// CRC32C (Castagnoli, the polynomial iSCSI, ext4 and LevelDB use) of a byte range.
//
// The file log stores it beside every record so a reader can tell a record that was written
// whole from one that was torn, overwritten or bit-flipped.
//
//   auto sum = ipcx::detail::crc32c(bytes);              // one call
//   auto same = ipcx::detail::crc32c_extend(             // or in pieces:
//       ipcx::detail::crc32c(first_half), second_half);  //   crc32c(a + b) == extend(crc32c(a), b)
//
// Two implementations give the same results: portable table-driven code (slicing by 8: eight
// 1 KiB tables built at compile time, eight bytes per step, about 1.5 cycles a byte), and on x86-64
// processors with SSE4.2 the crc32 instruction over three interleaved streams (about 0.15 cycles a
// byte), chosen once at run time. Thread-safe and signal-safe: no state but that one choice.
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

// The table-driven code alone, and whether crc32c_extend uses the processor's instruction instead
// (for tests, which check that both agree).
std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept;
bool crc32c_uses_hardware() noexcept;

}  // namespace ipcx::detail
