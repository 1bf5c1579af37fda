#include "core/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

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

#if defined(__x86_64__)

// The hardware path runs three independent CRC chains over three adjacent blocks of `stride`
// bytes: the crc32 instruction has a latency of three cycles but a throughput of one per cycle,
// so one chain would leave it idle two cycles out of three. The chains are joined with the
// identity crc(A || B) = shift_|B|(crc(A)) ^ crc_from_zero(B), where shift_n(x) is the register
// after n zero bytes, a linear map of x: four 256-entry tables apply it for n = stride.
constexpr std::size_t stride = 256;

using shift_tables = std::array<std::array<std::uint32_t, 256>, 4>;

constexpr shift_tables make_shift_tables() {
  shift_tables s{};
  for (std::size_t k = 0; k < 4; ++k)
    for (std::uint32_t b = 0; b < 256; ++b) {
      std::uint32_t r = b << (8 * k);
      for (std::size_t i = 0; i < stride; ++i) r = (r >> 8) ^ tables[0][r & 0xffu];
      s[k][b] = r;
    }
  return s;
}

constexpr shift_tables shifts = make_shift_tables();

std::uint64_t shift(std::uint64_t x) {
  return shifts[0][x & 0xffu] ^ shifts[1][(x >> 8) & 0xffu] ^ shifts[2][(x >> 16) & 0xffu] ^
         shifts[3][(x >> 24) & 0xffu];
}

std::uint64_t load64(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // x86 is little-endian, the order the CRC consumes bytes in
  return v;
}

[[gnu::target("sse4.2")]] std::uint32_t extend_sse42(std::uint32_t crc, const std::byte* p,
                                                     std::size_t n) noexcept {
  std::uint64_t c = ~crc;
  while (n >= 3 * stride) {
    std::uint64_t c1 = 0, c2 = 0;
    for (std::size_t i = 0; i < stride; i += 8) {
      c = _mm_crc32_u64(c, load64(p + i));
      c1 = _mm_crc32_u64(c1, load64(p + stride + i));
      c2 = _mm_crc32_u64(c2, load64(p + 2 * stride + i));
    }
    c = shift(shift(c) ^ c1) ^ c2;
    p += 3 * stride;
    n -= 3 * stride;
  }
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p));
  return ~c32;
}

bool has_sse42() noexcept {
  // Resolved once; __builtin_cpu_init makes __builtin_cpu_supports usable even if the first call
  // comes from another translation unit's static initialiser.
  static const bool supported = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return supported;
}

#endif

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::span<const std::byte> data) noexcept {
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

bool crc32c_uses_hardware() noexcept {
#if defined(__x86_64__)
  return has_sse42();
#else
  return false;
#endif
}

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
#if defined(__x86_64__)
  if (has_sse42()) return extend_sse42(crc, data.data(), data.size());
#endif
  return crc32c_extend_portable(crc, data);
}

}  // namespace ipcx::detail
