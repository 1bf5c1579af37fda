#include "core/crc32c.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

namespace {

using ipcx::detail::crc32c;
using ipcx::detail::crc32c_extend;

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s)); }

std::vector<std::byte> filled(std::size_t n, int (*value)(std::size_t)) {
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::byte(static_cast<unsigned char>(value(i)));
  return out;
}

// One bit at a time, straight from the definition: the reference the table code must match.
std::uint32_t bitwise_crc32c(std::span<const std::byte> data) {
  std::uint32_t c = 0xffffffffu;
  for (auto b : data) {
    c ^= static_cast<std::uint32_t>(b);
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ ((c & 1u) ? 0x82F63B78u : 0u);
  }
  return ~c;
}

TEST(Crc32c, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u);
}

TEST(Crc32c, OfNothingIsZero) { EXPECT_EQ(crc32c({}), 0u); }

// RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32c, MatchesTheIscsiTestVectors) {
  EXPECT_EQ(crc32c(filled(32, [](std::size_t) { return 0x00; })), 0x8A9136AAu);
  EXPECT_EQ(crc32c(filled(32, [](std::size_t) { return 0xff; })), 0x62A8AB43u);
  EXPECT_EQ(crc32c(filled(32, [](std::size_t i) { return static_cast<int>(i); })), 0x46DD794Eu);
  EXPECT_EQ(crc32c(filled(32, [](std::size_t i) { return static_cast<int>(31 - i); })),
            0x113FDB5Cu);
  const unsigned char pdu[48] = {0x01, 0xc0, 0, 0, 0, 0, 0,    0, 0,    0, 0, 0,    0, 0, 0, 0,
                                 0x14, 0,    0, 0, 0, 0, 0x04, 0, 0,    0, 0, 0x14, 0, 0, 0, 0x18,
                                 0x28, 0,    0, 0, 0, 0, 0,    0, 0x02, 0, 0, 0,    0, 0, 0, 0};
  EXPECT_EQ(crc32c(std::as_bytes(std::span(pdu))), 0xD9963A56u);
}

TEST(Crc32c, AgreesWithTheBitwiseDefinitionAtEveryLengthAndAlignment) {
  std::mt19937 random(42);
  std::vector<std::byte> data(300);
  for (auto& b : data) b = std::byte(static_cast<unsigned char>(random()));
  for (std::size_t start = 0; start < 9; ++start)
    for (std::size_t length = 0; start + length <= data.size(); length += 7) {
      auto piece = std::span(data).subspan(start, length);
      ASSERT_EQ(crc32c(piece), bitwise_crc32c(piece)) << "start " << start << " length " << length;
    }
}

TEST(Crc32c, HardwareAndTableCodeAgreeOnLongInputs) {
  // Lengths around multiples of the hardware path's 768-byte interleaved block.
  std::mt19937 random(7);
  std::vector<std::byte> data(5100);
  for (auto& b : data) b = std::byte(static_cast<unsigned char>(random()));
  for (std::size_t length : {767u, 768u, 769u, 1535u, 1536u, 1537u, 4096u, 4104u, 4999u})
    for (std::size_t start : {0u, 1u, 5u}) {
      auto piece = std::span(data).subspan(start, length);
      ASSERT_EQ(crc32c(piece), ipcx::detail::crc32c_extend_portable(0, piece))
          << "start " << start << " length " << length;
      ASSERT_EQ(crc32c(piece), bitwise_crc32c(piece)) << "start " << start << " length " << length;
    }
  RecordProperty("hardware", ipcx::detail::crc32c_uses_hardware() ? "yes" : "no");
}

TEST(Crc32c, TableCodeMatchesTheStandardCheckValue) {
  EXPECT_EQ(ipcx::detail::crc32c_extend_portable(0, bytes_of("123456789")), 0xE3069283u);
}

TEST(Crc32c, ExtendingInPiecesEqualsTheWhole) {
  auto data = filled(100, [](std::size_t i) { return static_cast<int>(i * 37 + 11); });
  auto whole = crc32c(data);
  for (std::size_t split = 0; split <= data.size(); ++split) {
    auto first = std::span(data).first(split);
    auto rest = std::span(data).subspan(split);
    EXPECT_EQ(crc32c_extend(crc32c(first), rest), whole) << "split at " << split;
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  auto data = filled(64, [](std::size_t i) { return static_cast<int>(i); });
  auto good = crc32c(data);
  for (std::size_t i = 0; i < data.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      data[i] ^= std::byte(1u << bit);
      EXPECT_NE(crc32c(data), good) << "byte " << i << " bit " << bit;
      data[i] ^= std::byte(1u << bit);
    }
}

}  // namespace
