#include "core/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
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

// Processors with AVX-512 and VPCLMULQDQ fold 256 bytes per step instead. The message is a
// polynomial over GF(2) and only its remainder mod P matters, so a 128-bit lane L = H x^64 + Lo may
// be replaced by anything congruent to it. Moved D bits further along, onto a later lane (and added
// to it with xor), it is L x^D = H x^(D+64) + Lo x^D, congruent to H (x^(D+64) mod P) +
// Lo (x^D mod P): two carry-less products of a 64-bit half by a 32-bit constant, each under 128
// bits. In the reflected (LSB-first) order a lane's low quadword is its high half H, and a product
// of reflected operands comes out multiplied by x^33 (x^32 because the 32-bit constant sits at the
// low end of its 64-bit operand, x because the 127-bit product sits at the low end of its 128-bit
// register), so the constants are x^(D+64-33) and x^(D-33) mod P. Once everything is folded into
// one lane, two crc32 instructions reduce it.
constexpr std::uint32_t x_pow_mod(unsigned n) {  // x^n mod P, reflected: bit 31 is x^0
  std::uint32_t v = 0x80000000u;
  for (unsigned i = 0; i < n; ++i) v = (v >> 1) ^ ((v & 1u) ? polynomial : 0u);
  return v;
}

// The constants that move a lane `bits` further along: `low` multiplies the lane's low quadword
// (its high half H), `high` its high quadword (Lo).
struct fold_pair {
  long long low, high;
};

constexpr fold_pair fold_by(unsigned bits) {
  return {static_cast<long long>(x_pow_mod(bits + 64 - 33)),
          static_cast<long long>(x_pow_mod(bits - 33))};
}

// Namespace-scope constants, so the x_pow_mod loops run at compile time, never per call.
constexpr fold_pair by256 = fold_by(256 * 8), by128 = fold_by(128 * 8), by64 = fold_by(64 * 8),
                    by48 = fold_by(48 * 8), by32 = fold_by(32 * 8), by16 = fold_by(16 * 8);
static_assert(x_pow_mod(0) == 0x80000000u && x_pow_mod(32) == polynomial);

#define IPCX_CRC_FOLD_TARGET [[gnu::target("avx512f,avx512vl,vpclmulqdq,sse4.2")]]

IPCX_CRC_FOLD_TARGET inline __m512i broadcast(fold_pair k) {
  return _mm512_set_epi64(k.high, k.low, k.high, k.low, k.high, k.low, k.high, k.low);
}

// Each 128-bit lane of x moved along by k, plus data.
IPCX_CRC_FOLD_TARGET inline __m512i fold(__m512i x, __m512i k, __m512i data) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                   _mm512_clmulepi64_epi128(x, k, 0x11), data, 0x96);  // a^b^c
}

IPCX_CRC_FOLD_TARGET std::uint32_t extend_fold(std::uint32_t crc, const std::byte* p,
                                               std::size_t n) noexcept {
  std::uint64_t c = ~crc;
  if (n >= 256) {
    // Four registers of four lanes: 256 bytes in flight, four independent multiply chains. The
    // initial register is xored into the first four bytes, after which the folding starts from 0.
    __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p),
                                  _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, static_cast<long long>(c)));
    __m512i x1 = _mm512_loadu_si512(p + 64);
    __m512i x2 = _mm512_loadu_si512(p + 128);
    __m512i x3 = _mm512_loadu_si512(p + 192);
    p += 256;
    n -= 256;
    const __m512i k256 = broadcast(by256);
    for (; n >= 256; p += 256, n -= 256) {
      x0 = fold(x0, k256, _mm512_loadu_si512(p));
      x1 = fold(x1, k256, _mm512_loadu_si512(p + 64));
      x2 = fold(x2, k256, _mm512_loadu_si512(p + 128));
      x3 = fold(x3, k256, _mm512_loadu_si512(p + 192));
    }
    // Two levels instead of a chain of three: x0 and x1 move 128 bytes at once, in parallel.
    const __m512i k128 = broadcast(by128), k64 = broadcast(by64);
    x3 = fold(fold(x0, k128, x2), k64, fold(x1, k128, x3));
    for (; n >= 64; p += 64, n -= 64) x3 = fold(x3, k64, _mm512_loadu_si512(p));
    // Lanes 0, 1 and 2 move 48, 32 and 16 bytes along onto lane 3, which stays as it is.
    const __m512i k =
        _mm512_set_epi64(0, 0, by16.high, by16.low, by32.high, by32.low, by48.high, by48.low);
    __m512i products = _mm512_xor_si512(_mm512_clmulepi64_epi128(x3, k, 0x00),
                                        _mm512_clmulepi64_epi128(x3, k, 0x11));
    __m512i moved = _mm512_mask_blend_epi64(0xC0, products, x3);  // quadwords 6 and 7: lane 3
    // Sum the four lanes: quadwords 0, 2, 4, 6 are their high halves (first in memory), 1, 3, 5,
    // 7 their low. GCC's vector subscript rather than _mm512_extracti64x4_epi64 and friends, whose
    // _mm256_undefined_si256() g++ 12 reports as -Wmaybe-uninitialized at -O1 and above.
    c = _mm_crc32_u64(0, static_cast<std::uint64_t>(moved[0] ^ moved[2] ^ moved[4] ^ moved[6]));
    c = _mm_crc32_u64(c, static_cast<std::uint64_t>(moved[1] ^ moved[3] ^ moved[5] ^ moved[7]));
  }
  // Below 256 bytes, and for what is left over after the folding: the crc32 instruction, one chain.
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p));
  return ~c32;
}

#undef IPCX_CRC_FOLD_TARGET

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

bool crc32c_supported(crc32c_backend backend) noexcept {
  switch (backend) {
    case crc32c_backend::portable: return true;
#if defined(__x86_64__)
    case crc32c_backend::sse42: {
      // Resolved once; __builtin_cpu_init makes __builtin_cpu_supports usable even if the first
      // call comes from another translation unit's static initialiser.
      static const bool supported = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("sse4.2") != 0;
      }();
      return supported;
    }
    case crc32c_backend::fold: {
      // libgcc sets these only when XGETBV says the OS saves the AVX-512 (opmask, ZMM) state,
      // and VPCLMULQDQ only when it saves the AVX state: a CPUID bit alone is not enough.
      static const bool supported = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512vl") != 0 &&
               __builtin_cpu_supports("vpclmulqdq") != 0 && __builtin_cpu_supports("sse4.2") != 0;
      }();
      return supported;
    }
#else
    case crc32c_backend::sse42:
    case crc32c_backend::fold: return false;
#endif
  }
  return false;
}

crc32c_backend crc32c_selected() noexcept {
  static const crc32c_backend chosen = [] {
    if (crc32c_supported(crc32c_backend::fold)) return crc32c_backend::fold;
    if (crc32c_supported(crc32c_backend::sse42)) return crc32c_backend::sse42;
    return crc32c_backend::portable;
  }();
  return chosen;
}

namespace {
// Make the choice while the program loads, so the first crc32c_extend does not run the
// initialisation of a function-local static (not async-signal-safe) from a signal handler.
[[maybe_unused]] const crc32c_backend chosen_at_load = crc32c_selected();
}  // namespace

#if defined(__x86_64__)
std::uint32_t crc32c_extend_sse42(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return extend_sse42(crc, data.data(), data.size());
}

std::uint32_t crc32c_extend_fold(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return extend_fold(crc, data.data(), data.size());
}
#else
// Never supported here, so never called (crc32c_supported says false); defined so code that
// names them still links.
std::uint32_t crc32c_extend_sse42(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return crc32c_extend_portable(crc, data);
}

std::uint32_t crc32c_extend_fold(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return crc32c_extend_portable(crc, data);
}
#endif

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
#if defined(__x86_64__)
  switch (crc32c_selected()) {
    case crc32c_backend::fold: return extend_fold(crc, data.data(), data.size());
    case crc32c_backend::sse42: return extend_sse42(crc, data.data(), data.size());
    case crc32c_backend::portable: break;
  }
#endif
  return crc32c_extend_portable(crc, data);
}

}  // namespace ipcx::detail
