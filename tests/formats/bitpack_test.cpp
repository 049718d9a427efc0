#include <gtest/gtest.h>

#include <vector>

#include "formats/bitpack.h"
#include "formats/test_data.h"

namespace lowbit {
namespace {

TEST(BitPack, KnownLayoutLsbFirst) {
  // 3-bit codes 1, 2, 3: bits 0-2 = 001, bits 3-5 = 010, bits 6-8 = 011 -> 0xD1, 0x00.
  const uint8_t codes[3] = {1, 2, 3};
  uint8_t out[2] = {0xff, 0xff};
  pack_codes(codes, 3, 3, out);
  EXPECT_EQ(out[0], 0xD1);
  EXPECT_EQ(out[1], 0x00);
  // 4-bit: low nibble first.
  const uint8_t nib[3] = {0x1, 0xA, 0x7};
  pack_codes(nib, 3, 4, out);
  EXPECT_EQ(out[0], 0xA1);
  EXPECT_EQ(out[1], 0x07);
  // 2-bit: four per byte, lowest bits first.
  const uint8_t two[5] = {0, 1, 2, 3, 2};
  pack_codes(two, 5, 2, out);
  EXPECT_EQ(out[0], 0xE4);
  EXPECT_EQ(out[1], 0x02);
}

TEST(BitPack, EveryWidthAndAwkwardLengthRoundTrips) {
  test::Rng rng(7);
  for (int bits = 1; bits <= 8; ++bits) {
    for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 127, 129, 257, 704}) {
      std::vector<uint8_t> codes(n), back(n, 0xAA);
      for (auto& c : codes) c = static_cast<uint8_t>(rng.next() & ((1u << bits) - 1u));
      const int64_t nb = packed_bytes(n, bits);
      EXPECT_EQ(nb, (n * bits + 7) / 8);
      std::vector<uint8_t> packed(nb + 1, 0x5A);  // one guard byte past the end
      pack_codes(codes.data(), n, bits, packed.data());
      EXPECT_EQ(packed[nb], 0x5A) << "wrote past the end, bits " << bits << " n " << n;
      const int tail = static_cast<int>(n * bits % 8);
      if (tail != 0) {
        EXPECT_EQ(packed[nb - 1] >> tail, 0) << "padding bits must be zero";
      }
      unpack_codes(packed.data(), n, bits, back.data());
      EXPECT_EQ(back, codes) << "bits " << bits << " n " << n;
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(packed_code(packed.data(), j, bits), codes[j]) << bits << " " << j;
    }
  }
}

TEST(BitPack, IgnoresHighBitsOfCodes) {
  const uint8_t codes[4] = {0xFF, 0xF0, 0x0F, 0x3C};
  uint8_t out[1];
  pack_codes(codes, 4, 2, out);  // keeps 11, 00, 11, 00
  EXPECT_EQ(out[0], 0x33);
}

}  // namespace
}  // namespace lowbit
