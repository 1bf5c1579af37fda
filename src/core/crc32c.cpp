#include "core/crc32c.hpp"

#include <array>

namespace ipcx::detail {
namespace {

// The Castagnoli polynomial 0x1EDC6F41, bit-reversed because the CRC is computed LSB first.
constexpr std::uint32_t polynomial = 0x82F63B78u;

using table_set = std::array<std::array<std::uint32_t, 256>, 8>;

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC of byte b followed by k
// zero bytes, so eight table lookups advance the CRC over eight bytes at once.
constexpr table_set make_tables() {
  table_set t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? polynomial : 0u);
    t[0][b] = crc;
  }
  for (std::size_t k = 1; k < 8; ++k)
    for (std::size_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xffu];
  return t;
}

constexpr table_set tables = make_tables();

std::uint32_t byte_at(const std::byte* p, std::size_t i) {
  return static_cast<std::uint32_t>(p[i]);
}

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  // The register holds the complement between calls, so a finished CRC extends directly.
  std::uint32_t c = ~crc;
  const std::byte* p = data.data();
  std::size_t n = data.size();
  while (n >= 8) {
    // Bytes are combined explicitly (not loaded as a word) so the result does not depend on the
    // host's byte order or on alignment.
    std::uint32_t lo =
        c ^ (byte_at(p, 0) | byte_at(p, 1) << 8 | byte_at(p, 2) << 16 | byte_at(p, 3) << 24);
    std::uint32_t hi =
        byte_at(p, 4) | byte_at(p, 5) << 8 | byte_at(p, 6) << 16 | byte_at(p, 7) << 24;
    c = tables[7][lo & 0xffu] ^ tables[6][(lo >> 8) & 0xffu] ^ tables[5][(lo >> 16) & 0xffu] ^
        tables[4][lo >> 24] ^ tables[3][hi & 0xffu] ^ tables[2][(hi >> 8) & 0xffu] ^
        tables[1][(hi >> 16) & 0xffu] ^ tables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  for (; n > 0; --n, ++p) c = (c >> 8) ^ tables[0][(c ^ static_cast<std::uint32_t>(*p)) & 0xffu];
  return ~c;
}

}  // namespace ipcx::detail
