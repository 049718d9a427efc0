// The ggml block layouts of io/ggml_quants.h (Q5_1, IQ4_NL, Q3_K, Q5_K, Q2_K, IQ4_XS, TQ1_0,
// TQ2_0; the older types have their own tests in gguf_test.cpp and export/kquant_test.cpp),
// checked against the published llama.cpp format written out independently here, twice per
// type:
//   - a sparse block built byte by byte (a few hand-placed codes, literal scale bytes) whose
//     values are worked out by hand in the comments;
//   - pseudo-random blocks decoded by a transcription of llama.cpp's dequantize_row_* loops
//     (ggml-quants.c: the kmask/aux shuffle for Q3_K, the u1/u2 walk over qh for Q5_K), which
//     is organised differently from our per-element description. Both evaluate the same float
//     operations in the same order, so the comparison is exact.
//   (Q2_K, IQ4_XS, TQ1_0 and TQ2_0 instead get reference decoders written here field by field
//   from the format description; TQ1_0's reads each digit as a base-3 expansion of byte / 256.)
// Then pack/unpack round trips for every block type, the code-choice rule, the layout table and
// the GGUF reader's type ids 7, 10, 11, 13, 20, 23, 34, 35. Real llama-quantize output is
// checked in ggml_golden_test.cpp.
#include "io/ggml_quants.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "base/error.h"
#include "base/half.h"
#include "gguf_builder.h"
#include "io/gguf.h"
#include "io/decode_bytes.h"
#include "testutil/testutil.h"

namespace lowbit {
namespace {

using test::decode;

// fp16 bit patterns with their values: 0x3800 = 0.5, 0x3C00 = 1, 0x3400 = 0.25,
// 0xB400 = -0.25, 0xC200 = -3.
void put_half(std::vector<uint8_t>& b, size_t at, uint16_t bits) {
  b[at] = static_cast<uint8_t>(bits & 0xff);
  b[at + 1] = static_cast<uint8_t>(bits >> 8);
}

// The IQ4_NL code book as published (ggml-common.h kvalues_iq4nl), typed in again.
constexpr int kIq4Nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                            1,    13,   25,  38,  53,  69,  89,  113};

// ---- sparse hand-built blocks ---------------------------------------------------------------

// Q3_K (110 bytes): hmask[32] at 0, qs[64] at 32, scales[12] at 96, fp16 d at 108.
// Element e = 128h + 32k + l: low 2 bits = bits 2k..2k+1 of qs[32h + l], bit 2 = bit e/32 of
// hmask[e % 32]; value = d * (sc[e / 16] - 32) * (q - 4).
TEST(GgmlQuants, Q3KHandBuiltBlock) {
  // Scales, 6 bits each, chosen so that every packed byte differs:
  const int sc[16] = {0, 1, 63, 32, 17, 45, 8, 50, 33, 31, 62, 16, 5, 40, 48, 27};
  // s[k] (k < 8) = (sc[k] & 15) | (sc[k + 8] & 15) << 4, e.g. s[0] = 0 | 1 << 4 = 0x10,
  // s[2] = 15 | 14 << 4 = 0xef; s[8 + i] = sc[i] >> 4 | (sc[4 + i] >> 4) << 2 |
  // (sc[8 + i] >> 4) << 4 | (sc[12 + i] >> 4) << 6, e.g. s[8] = 0 | 1 << 2 | 2 << 4 | 0 = 0x24.
  const uint8_t scales[12] = {0x10, 0xf1, 0xef, 0x00, 0x51, 0x8d,
                              0x08, 0xb2, 0x24, 0x98, 0xf3, 0x5e};
  std::vector<uint8_t> b(110, 0);
  std::memcpy(b.data() + 96, scales, 12);
  put_half(b, 108, 0x3800);  // d = 0.5
  // Every code is 0 (q - 4 = -4) except:
  //  e = 0   (h 0, k 0, l 0):  q = 7: qs[0] bits 0..1 = 3, hmask[0] bit 0
  //  e = 77  (h 0, k 2, l 13): q = 5: qs[13] bits 4..5 = 1, hmask[13] bit 2
  //  e = 143 (h 1, k 0, l 15): q = 3: qs[32 + 15] bits 0..1 = 3
  //  e = 200 (h 1, k 2, l 8):  q = 2: qs[32 + 8] bits 4..5 = 2
  //  e = 255 (h 1, k 3, l 31): q = 4: hmask[31] bit 7
  b[32 + 0] |= 0x03, b[0] |= 0x01;
  b[32 + 13] |= 0x10, b[13] |= 0x04;
  b[32 + 32 + 15] |= 0x03;
  b[32 + 32 + 8] |= 0x20;
  b[31] |= 0x80;
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = 0.5f * static_cast<float>(sc[e / 16] - 32) * -4.0f;
  want[0] = -48.0f;             // 0.5 * (0 - 32) * (7 - 4)
  want[77] = -7.5f;             // 0.5 * (17 - 32) * (5 - 4)
  want[143] = -0.5f;            // 0.5 * (33 - 32) * (3 - 4)
  want[200] = 27.0f;            // 0.5 * (5 - 32) * (2 - 4)
  want[255] = 0.0f;             // q = 4
  EXPECT_EQ(want[16], 62.0f);   // 0.5 * (1 - 32) * -4
  EXPECT_EQ(want[40], -62.0f);  // 0.5 * (63 - 32) * -4
  EXPECT_EQ(want[48], 0.0f);    // sc 32: scale 0
  EXPECT_EQ(decode(DType::Q3_K, b, 256), want);
}

// Q5_K (176 bytes): fp16 d, fp16 dmin, scales[12] (as Q4_K), qh[32] at 16, qs[128] at 48.
// e = 64c + 32h + l: low 4 bits = nibble h of qs[32c + l], bit 4 = bit e/32 of qh[e % 32];
// value = d * sc_j * q - dmin * m_j, j = e / 32.
TEST(GgmlQuants, Q5KHandBuiltBlock) {
  const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63}, m[8] = {0, 5, 10, 15, 20, 40, 47, 63};
  // Packed as Q4_K: bytes 0..3 = sc[j] | (sc[j + 4] >> 4) << 6 (e.g. 1 | 1 << 6 = 65), bytes
  // 4..7 = m[j] | (m[j + 4] >> 4) << 6 (e.g. 15 | 3 << 6 = 207), bytes 8..11 =
  // (sc[j + 4] & 15) | (m[j + 4] & 15) << 4 (e.g. 2 | 15 << 4 = 242).
  const uint8_t scales[12] = {65, 130, 195, 196, 64, 133, 138, 207, 65, 129, 242, 255};
  std::vector<uint8_t> b(176, 0);
  put_half(b, 0, 0x3800);  // d = 0.5
  put_half(b, 2, 0x3C00);  // dmin = 1
  std::memcpy(b.data() + 4, scales, 12);
  uint8_t* qh = b.data() + 16;
  uint8_t* qs = b.data() + 48;
  // Every code is 0 (value -m_j) except:
  //  e = 0   (c 0, h 0, l 0):  q = 31: qs[0] low nibble 15, qh[0] bit 0
  //  e = 45  (c 0, h 1, l 13): q = 16: qh[13] bit 1
  //  e = 100 (c 1, h 1, l 4):  q = 20: qs[32 + 4] high nibble 4, qh[4] bit 3
  //  e = 200 (c 3, h 0, l 8):  q = 9:  qs[96 + 8] low nibble 9
  //  e = 255 (c 3, h 1, l 31): q = 17: qs[96 + 31] high nibble 1, qh[31] bit 7
  qs[0] |= 0x0f, qh[0] |= 0x01;
  qh[13] |= 0x02;
  qs[36] |= 0x40, qh[4] |= 0x08;
  qs[104] |= 0x09;
  qs[127] |= 0x10, qh[31] |= 0x80;
  std::vector<float> want(256);
  for (int e = 0; e < 256; ++e) want[e] = static_cast<float>(-m[e / 32]);
  want[0] = 15.5f;     // 0.5 * 1 * 31 - 0
  want[45] = 11.0f;    // 0.5 * 2 * 16 - 5
  want[100] = 25.0f;   // 0.5 * 4 * 20 - 15
  want[200] = 178.0f;  // 0.5 * 50 * 9 - 47
  want[255] = 472.5f;  // 0.5 * 63 * 17 - 63
  EXPECT_EQ(want[200], 0.5f * static_cast<float>(sc[6] * 9 - 2 * m[6]));
  EXPECT_EQ(decode(DType::Q5_K, b, 256), want);
}

// Q5_1 (24 bytes): fp16 d, fp16 m, u32 qh (little-endian), qs[16]; element j < 16: low nibble
// of qs[j], j + 16: high nibble of qs[j]; bit 4 of element e is bit e of qh; value d * q + m.
TEST(GgmlQuants, Q5_1HandBuiltBlock) {
  std::vector<uint8_t> b(24, 0);
  put_half(b, 0, 0x3400);                              // d = 0.25
  put_half(b, 2, 0xC200);                              // m = -3
  b[4] = 0x01, b[5] = 0x00, b[6] = 0x02, b[7] = 0x80;  // qh bits 0, 17, 31
  for (int j = 0; j < 16; ++j) b[8 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  std::vector<float> want(32);
  for (int j = 0; j < 16; ++j) {
    want[j] = 0.25f * static_cast<float>(j) - 3.0f;
    want[16 + j] = 0.25f * static_cast<float>(15 - j) - 3.0f;
  }
  want[0] = 1.0f;              // q = 0 | 16
  want[17] = 4.5f;             // q = 14 | 16
  want[31] = 1.0f;             // q = 0 | 16
  EXPECT_EQ(want[16], 0.75f);  // q = 15
  EXPECT_EQ(want[5], -1.75f);  // q = 5
  EXPECT_EQ(decode(DType::Q5_1, b, 32), want);
}

// IQ4_NL (18 bytes): fp16 d, qs[16] nibbles as Q4_0; value = d * kvalues_iq4nl[q].
TEST(GgmlQuants, Iq4NlHandBuiltBlock) {
  for (int k = 0; k < 16; ++k) EXPECT_EQ(kIq4NlValues[k], kIq4Nl[k]) << k;
  std::vector<uint8_t> b(36, 0);
  put_half(b, 0, 0x3800);   // block 0: d = 0.5
  put_half(b, 18, 0xB400);  // block 1: d = -0.25
  for (int j = 0; j < 16; ++j) {
    b[2 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
    b[20 + j] = static_cast<uint8_t>((j * 7) % 16 | ((j * 3) % 16) << 4);
  }
  std::vector<float> want(64);
  for (int j = 0; j < 16; ++j) {
    want[j] = 0.5f * static_cast<float>(kIq4Nl[j]);
    want[16 + j] = 0.5f * static_cast<float>(kIq4Nl[15 - j]);
    want[32 + j] = -0.25f * static_cast<float>(kIq4Nl[(j * 7) % 16]);
    want[48 + j] = -0.25f * static_cast<float>(kIq4Nl[(j * 3) % 16]);
  }
  EXPECT_EQ(want[0], -63.5f);
  EXPECT_EQ(want[16], 56.5f);
  EXPECT_EQ(want[8], 0.5f);
  EXPECT_EQ(want[33], 2.5f);  // code 7: -10 * -0.25
  EXPECT_EQ(decode(DType::IQ4_NL, b, 64), want);
}

// Q2_K (84 bytes): scales[16] at 0, qs[64] at 16, fp16 d at 80, fp16 dmin at 82. Sub-block
// j = e / 16 has scale sc_j = scales[j] & 15 and min m_j = scales[j] >> 4; element
// e = 128h + 32k + l has code q = bits 2k..2k+1 of qs[32h + l]; value = d sc_j q - dmin m_j.
TEST(GgmlQuants, Q2KHandBuiltBlock) {
  std::vector<uint8_t> b(3 * 84, 0);
  // Block 0: d = 0.5, dmin = -0.25 (a negative min scale adds), sc_j = j, m_j = 15 - j.
  for (int j = 0; j < 16; ++j) b[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  put_half(b, 80, 0x3800);
  put_half(b, 82, 0xB400);
  // Every code is 0 (value 0.25 m_j) except:
  //  e = 0   (h 0, k 0, l 0):  q = 3: qs[0] bits 0..1
  //  e = 45  (h 0, k 1, l 13): q = 2: qs[13] bits 2..3
  //  e = 130 (h 1, k 0, l 2):  q = 1: qs[32 + 2] bits 0..1
  //  e = 255 (h 1, k 3, l 31): q = 3: qs[63] bits 6..7
  b[16 + 0] = 0x03, b[16 + 13] = 0x08, b[16 + 34] = 0x01, b[16 + 63] = 0xC0;
  // Block 1: every byte 0xff except d = -0.25, dmin = 1: sc = m = 15, every code 3.
  std::fill(b.begin() + 84, b.begin() + 84 + 80, 0xff);
  put_half(b, 84 + 80, 0xB400);
  put_half(b, 84 + 82, 0x3C00);
  // Block 2: all zero bytes: d = dmin = 0, every value 0 - 0 = +0.
  std::vector<float> want(3 * 256);
  for (int e = 0; e < 256; ++e) {
    want[e] = 0.25f * static_cast<float>(15 - e / 16);
    want[256 + e] = -26.25f;  // -0.25 * 15 * 3 - 1 * 15
  }
  want[0] = 3.75f;    // 0.5 * 0 * 3 + 0.25 * 15
  want[45] = 5.25f;   // 0.5 * 2 * 2 + 0.25 * 13
  want[130] = 5.75f;  // 0.5 * 8 * 1 + 0.25 * 7
  want[255] = 22.5f;  // 0.5 * 15 * 3 + 0.25 * 0
  const std::vector<float> got = decode(DType::Q2_K, b, 3 * 256);
  EXPECT_EQ(got, want);
  for (int e = 512; e < 768; ++e) ASSERT_FALSE(std::signbit(got[e])) << e;
}

// IQ4_XS (136 bytes): fp16 d at 0, u16 scales_h at 2, scales_l[4] at 4, qs[128] at 8. Sub-block
// j (32 elements) has the 6-bit scale ls_j = nibble j % 2 of scales_l[j / 2] | bits 2j..2j+1
// of scales_h << 4, and its codes as an IQ4_NL block's in qs[16j..]; value = d (ls_j - 32) kv[q].
TEST(GgmlQuants, Iq4XsHandBuiltBlock) {
  // With d = 0.5 these give the steps -16, -0.5, 0, 0.5, 15.5, -8, 7.5, -13.5.
  const int ls[8] = {0, 31, 32, 33, 63, 16, 47, 5};
  // scales_l[k] = (ls[2k] & 15) | (ls[2k + 1] & 15) << 4; scales_h = sum (ls[j] >> 4) << 2j =
  // 1 << 2 | 2 << 4 | 2 << 6 | 3 << 8 | 1 << 10 | 2 << 12 = 0x27a4.
  std::vector<uint8_t> b(136, 0);
  put_half(b, 0, 0x3800);  // d = 0.5
  b[2] = 0xa4, b[3] = 0x27;
  b[4] = 0xf0, b[5] = 0x10, b[6] = 0x0f, b[7] = 0x5f;
  for (int i = 0; i < 128; ++i) b[8 + i] = static_cast<uint8_t>(i % 16 | (15 - i % 16) << 4);
  std::vector<float> want(256);
  for (int j = 0; j < 8; ++j) {
    const float step = 0.5f * static_cast<float>(ls[j] - 32);
    for (int i = 0; i < 16; ++i) {
      want[32 * j + i] = step * static_cast<float>(kIq4Nl[i]);
      want[32 * j + 16 + i] = step * static_cast<float>(kIq4Nl[15 - i]);
    }
  }
  EXPECT_EQ(want[0], 2032.0f);    // -16 * -127
  EXPECT_EQ(want[47], -56.5f);    // -0.5 * 113 (code 15)
  EXPECT_EQ(want[150], 201.5f);   // 15.5 * 13 (high nibble of qs[64 + 6]: code 9)
  EXPECT_EQ(want[255], 1714.5f);  // -13.5 * -127
  EXPECT_TRUE(std::signbit(want[64]));  // ls 32: 0 * -127 = -0, as llama.cpp computes it
  const std::vector<float> got = decode(DType::IQ4_XS, b, 256);
  EXPECT_EQ(got, want);
  for (int e = 64; e < 96; ++e) EXPECT_EQ(std::signbit(got[e]), std::signbit(want[e])) << e;
}

// TQ2_0 (66 bytes): qs[64], fp16 d at 64; codes as Q2_K's; value = d (q - 1), so code 3 (never
// written by llama.cpp's quantizer, still defined) is 2d.
TEST(GgmlQuants, Tq2HandBuiltBlock) {
  std::vector<uint8_t> b(66, 0xe4);  // every byte holds codes 0, 1, 2, 3 in k = 0..3
  put_half(b, 64, 0xB400);           // d = -0.25
  b[5] = 0x1b;                       // codes 3, 2, 1, 0 for e = 5, 37, 69, 101
  std::vector<float> want(256);
  const float v[4] = {0.25f, -0.0f, -0.25f, -0.5f};
  for (int e = 0; e < 256; ++e) want[e] = v[(e / 32) % 4];
  want[5] = -0.5f, want[37] = -0.25f, want[69] = -0.0f, want[101] = 0.25f;
  const std::vector<float> got = decode(DType::TQ2_0, b, 256);
  EXPECT_EQ(got, want);
  EXPECT_TRUE(std::signbit(got[32]));  // 0 * -0.25
}

// TQ1_0 (54 bytes): qs[48], qh[4], fp16 d at 52. A byte holds base-3 digits t0..t4 as
// ceil(256 v / 243), v = 81 t0 + 27 t1 + 9 t2 + 3 t3 + t4; digit n is
// floor(3 ((byte 3^n) mod 256) / 256). Element order: qs[m] digit n is e = 32n + m (m < 32),
// qs[32 + m] digit n is e = 160 + 16n + m, qh[m] digit n (n < 4) is e = 240 + 4n + m.
// value = d (t - 1).
TEST(GgmlQuants, Tq1HandBuiltBlock) {
  std::vector<uint8_t> b(54, 0);  // byte 0: every digit 0
  put_half(b, 52, 0x3800);        // d = 0.5
  // qs[0]: digits 1, 0, 2, 1, 0: v = 81 + 18 + 3 = 102, ceil(26112 / 243) = 108.
  // (108: 324 >> 8 = 1; 108·3 mod 256 = 68, 204 >> 8 = 0; 108·9 mod 256 = 204, 612 >> 8 = 2;
  // 108·27 mod 256 = 100, 300 >> 8 = 1; 108·81 mod 256 = 44, 132 >> 8 = 0.)
  b[0] = 108;
  b[7] = 255;  // every digit 2
  // qs[40] (m = 8 of the second group): digits 0, 1, 2, 0, 1: v = 46, ceil(11776 / 243) = 49.
  b[40] = 49;
  // qh[2]: digits 2, 0, 1, 2 (t4 = 0): v = 162 + 9 + 6 = 177, ceil(45312 / 243) = 187.
  b[48 + 2] = 187;
  std::vector<float> want(256, -0.5f);
  auto set = [&](std::initializer_list<int> es, std::initializer_list<int> digits) {
    auto d = digits.begin();
    for (int e : es) want[e] = 0.5f * static_cast<float>(*d++ - 1);
  };
  set({0, 32, 64, 96, 128}, {1, 0, 2, 1, 0});
  set({7, 39, 71, 103, 135}, {2, 2, 2, 2, 2});
  set({168, 184, 200, 216, 232}, {0, 1, 2, 0, 1});
  set({242, 246, 250, 254}, {2, 0, 1, 2});
  EXPECT_EQ(want[64], 0.5f);
  EXPECT_EQ(want[246], -0.5f);
  EXPECT_EQ(decode(DType::TQ1_0, b, 256), want);
}

// Every value 0..242 of a five-digit byte and 0..80 of a four-digit one survives pack/unpack,
// and the packed byte is ceil(256 v / 243).
TEST(GgmlQuants, Tq1TritBytesRoundTripExhaustively) {
  std::vector<uint8_t> block(54, 0), codes(256), back(256);
  for (int v = 0; v < 243; ++v) {
    std::fill(codes.begin(), codes.end(), 0);
    const int t[5] = {v / 81, v / 27 % 3, v / 9 % 3, v / 3 % 3, v % 3};
    for (int n = 0; n < 5; ++n) {
      codes[32 * n + 3] = static_cast<uint8_t>(t[n]);        // qs[3]
      codes[160 + 16 * n + 9] = static_cast<uint8_t>(t[n]);  // qs[41]
      if (n < 4 && t[4] == 0) codes[240 + 4 * n + 1] = static_cast<uint8_t>(t[n]);  // qh[1]
    }
    ggml_pack_codes(DType::TQ1_0, block.data(), codes.data());
    const int want = (256 * v + 242) / 243;
    ASSERT_EQ(block[3], want) << v;
    ASSERT_EQ(block[41], want) << v;
    if (t[4] == 0) {
      ASSERT_EQ(block[49], want) << v;  // qh[1]: t0..t3 with t4 = 0, the same v
    }
    ggml_unpack_codes(DType::TQ1_0, block.data(), back.data());
    ASSERT_EQ(back, codes) << v;
  }
}

// ---- pseudo-random blocks against llama.cpp's loops -------------------------------------------

// Finite fp16 scales of both signs and several magnitudes, for the d / dmin / m fields.
uint16_t random_half(std::mt19937& rng) {
  static const uint16_t kHalves[] = {0x3800, 0x3C00, 0x2E66, 0xB400,
                                     0x1A3F, 0x9C01, 0x4D00, 0x0000};
  return kHalves[rng() % 8];
}

std::vector<uint8_t> random_blocks(int64_t nblocks, int64_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(static_cast<size_t>(nblocks * bytes));
  for (uint8_t& v : b) v = static_cast<uint8_t>(rng());
  return b;
}

float h2f(const uint8_t* p) {
  return f16_to_f32(static_cast<uint16_t>(p[0] | p[1] << 8));
}

// dequantize_row_q3_K.
void ref_q3_k(const uint8_t* x, int64_t nb, float* y) {
  const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  for (int64_t i = 0; i < nb; ++i, x += 110) {
    uint32_t aux[4];
    std::memcpy(aux, x + 96, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, 16);
    const float d_all = h2f(x + 108);
    const uint8_t* q = x + 32;
    const uint8_t* hm = x;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      int shift = 0;
      for (int j = 0; j < 4; ++j) {
        float dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l] >> shift) & 3) -
                                         ((hm[l] & m) ? 0 : 4));
        dl = d_all * static_cast<float>(scales[is++] - 32);
        for (int l = 0; l < 16; ++l)
          *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l + 16] >> shift) & 3) -
                                         ((hm[l + 16] & m) ? 0 : 4));
        shift += 2;
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

// get_scale_min_k4.
void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// dequantize_row_q5_K.
void ref_q5_k(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 176) {
    const uint8_t* ql = x + 48;
    const uint8_t* qh = x + 16;
    const float d = h2f(x), min = h2f(x + 2);
    int is = 0;
    uint8_t sc, m;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
      scale_min_k4(is + 0, x + 4, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(is + 1, x + 4, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

// dequantize_row_q5_1.
void ref_q5_1(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 24, y += 32) {
    const float d = h2f(x), m = h2f(x + 2);
    uint32_t qh;
    std::memcpy(&qh, x + 4, 4);
    for (int j = 0; j < 16; ++j) {
      const uint8_t xh_0 = static_cast<uint8_t>(((qh >> (j + 0)) << 4) & 0x10);
      const uint8_t xh_1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = (x[8 + j] & 0x0F) | xh_0;
      const int x1 = (x[8 + j] >> 4) | xh_1;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + 16] = static_cast<float>(x1) * d + m;
    }
  }
}

// dequantize_row_iq4_nl.
void ref_iq4_nl(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = h2f(x);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * static_cast<float>(kIq4Nl[x[2 + j] & 0xf]);
      y[j + 16] = d * static_cast<float>(kIq4Nl[x[2 + j] >> 4]);
    }
  }
}

// Q2_K, field by field: sub-block j's scale/min byte, then its 16 codes (sub-block j covers
// e = 16j..16j+15, all in the same 32-byte half h = j / 8 and bit pair k = (j / 2) % 4).
void ref_q2_k(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 84, y += 256) {
    const float d = h2f(x + 80), dmin = h2f(x + 82);
    for (int j = 0; j < 16; ++j) {
      const float step = d * static_cast<float>(x[j] % 16);
      const float min = dmin * static_cast<float>(x[j] / 16);
      for (int i16 = 0; i16 < 16; ++i16) {
        const int e = 16 * j + i16;
        const int q = x[16 + 32 * (j / 8) + e % 32] / (1 << (2 * ((j / 2) % 4))) % 4;
        y[e] = step * static_cast<float>(q) - min;
      }
    }
  }
}

// IQ4_XS: the scales of the 8 sub-blocks first, then each sub-block as an IQ4_NL block.
void ref_iq4_xs(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 136, y += 256) {
    const float d = h2f(x);
    uint16_t high;
    std::memcpy(&high, x + 2, 2);
    for (int j = 0; j < 8; ++j) {
      const int low = j % 2 == 0 ? x[4 + j / 2] % 16 : x[4 + j / 2] / 16;
      const int scale = low + 16 * ((high / (1 << (2 * j))) % 4);
      const float step = d * static_cast<float>(scale - 32);
      const uint8_t* qs = x + 8 + 16 * j;
      for (int m = 0; m < 32; ++m)
        y[32 * j + m] = step * static_cast<float>(kIq4Nl[m < 16 ? qs[m] % 16 : qs[m - 16] / 16]);
    }
  }
}

// TQ1_0: digit n of a byte b is digit n + 1 after the point of b / 256 written in base 3, i.e.
// floor(b 3^(n+1) / 256) mod 3 (the same number as the format's floor(3 ((b 3^n) mod 256) / 256),
// computed another way).
void ref_tq1_0(const uint8_t* x, int64_t nb, float* y) {
  auto digit = [](int b, int n) {
    int p = 3;
    for (int k = 0; k < n; ++k) p *= 3;
    return b * p / 256 % 3;
  };
  for (int64_t i = 0; i < nb; ++i, x += 54) {
    const float d = h2f(x + 52);
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 32; ++m) *y++ = static_cast<float>(digit(x[m], n) - 1) * d;
    for (int n = 0; n < 5; ++n)
      for (int m = 0; m < 16; ++m) *y++ = static_cast<float>(digit(x[32 + m], n) - 1) * d;
    for (int n = 0; n < 4; ++n)
      for (int m = 0; m < 4; ++m) *y++ = static_cast<float>(digit(x[48 + m], n) - 1) * d;
  }
}

// TQ2_0: two halves of 128 elements, each four runs of 32 taking successive bit pairs.
void ref_tq2_0(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 66) {
    const float d = h2f(x + 64);
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 4; ++k)
        for (int l = 0; l < 32; ++l)
          *y++ = static_cast<float>(((x[32 * h + l] >> (2 * k)) & 3) - 1) * d;
  }
}

TEST(GgmlQuants, RandomBlocksDecodeAsLlamaCppDoes) {
  struct Case {
    DType t;
    int64_t elems, bytes;
    std::vector<size_t> halves;  // fp16 fields (offsets in the block)
    void (*ref)(const uint8_t*, int64_t, float*);
  };
  const Case cases[] = {{DType::Q3_K, 256, 110, {108}, ref_q3_k},
                        {DType::Q5_K, 256, 176, {0, 2}, ref_q5_k},
                        {DType::Q5_1, 32, 24, {0, 2}, ref_q5_1},
                        {DType::IQ4_NL, 32, 18, {0}, ref_iq4_nl},
                        {DType::Q2_K, 256, 84, {80, 82}, ref_q2_k},
                        {DType::IQ4_XS, 256, 136, {0}, ref_iq4_xs},
                        {DType::TQ1_0, 256, 54, {52}, ref_tq1_0},
                        {DType::TQ2_0, 256, 66, {64}, ref_tq2_0}};
  for (const Case& c : cases) {
    const int64_t nb = 13;  // an odd count of blocks
    std::vector<uint8_t> b = random_blocks(nb, c.bytes, 17 + c.bytes);
    std::mt19937 rng(5);
    for (int64_t i = 0; i < nb; ++i)
      for (size_t at : c.halves) put_half(b, i * c.bytes + at, random_half(rng));
    std::vector<float> want(nb * c.elems);
    c.ref(b.data(), nb, want.data());
    const std::vector<float> got = decode(c.t, b, nb * c.elems);
    EXPECT_EQ(got, want) << dtype_name(c.t);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * want.size()), 0)  // -0 vs +0 too
        << dtype_name(c.t);
    // Block by block through the library's own entry point.
    std::vector<float> y(c.elems);
    for (int64_t i = 0; i < nb; ++i) {
      ggml_dequantize_block(c.t, b.data() + i * c.bytes, y.data());
      EXPECT_TRUE(std::equal(y.begin(), y.end(), want.begin() + i * c.elems))
          << dtype_name(c.t) << i;
    }
  }
}

// ---- pack / unpack --------------------------------------------------------------------------

struct TypeCase {
  DType t = DType::F32;
  int64_t elems = 0, bytes = 0;
  int qmax = 0;
  size_t header_at = 0, header_len = 0;    // the header bytes (every other bit holds a code)
  size_t header2_at = 0, header2_len = 0;  // a second header run (Q2_K's d, dmin), or empty

  bool in_header(int64_t i) const {
    const auto u = static_cast<size_t>(i);
    return (u >= header_at && u < header_at + header_len) ||
           (u >= header2_at && u < header2_at + header2_len);
  }
};
// From the published layouts (io/ggml_quants.h table), not from ggml_block_layout.
const TypeCase kTypes[] = {
    {DType::Q4_0, 32, 18, 15, 0, 2, 0, 0},        {DType::Q5_0, 32, 22, 31, 0, 2, 0, 0},
    {DType::Q5_1, 32, 24, 31, 0, 4, 0, 0},        {DType::Q8_0, 32, 34, 255, 0, 2, 0, 0},
    {DType::IQ4_NL, 32, 18, 15, 0, 2, 0, 0},      {DType::Q3_K, 256, 110, 7, 96, 14, 0, 0},
    {DType::Q4_K, 256, 144, 15, 0, 16, 0, 0},     {DType::Q5_K, 256, 176, 31, 0, 16, 0, 0},
    {DType::Q6_K, 256, 210, 63, 192, 18, 0, 0},   {DType::Q2_K, 256, 84, 3, 0, 16, 80, 4},
    {DType::IQ4_XS, 256, 136, 15, 0, 8, 0, 0},    {DType::TQ1_0, 256, 54, 2, 52, 2, 0, 0},
    {DType::TQ2_0, 256, 66, 3, 64, 2, 0, 0},
};

TEST(GgmlQuants, LayoutTable) {
  for (const TypeCase& c : kTypes) {
    const GgmlBlockLayout& l = ggml_block_layout(c.t);
    EXPECT_TRUE(is_ggml_block_type(c.t)) << dtype_name(c.t);
    EXPECT_EQ(l.elems, c.elems) << dtype_name(c.t);
    EXPECT_EQ(l.bytes, c.bytes) << dtype_name(c.t);
    EXPECT_EQ(l.qmax, c.qmax) << dtype_name(c.t);
    EXPECT_EQ(dtype_block_elems(c.t), c.elems);
    EXPECT_EQ(dtype_storage_bytes(c.t, 3 * c.elems), static_cast<size_t>(3 * c.bytes));
    EXPECT_EQ(dtype_storage_bytes(c.t, c.elems + 1), 0u);  // not whole blocks
    // Bits: header + elems codes of log2(qmax + 1) bits fill the block exactly; TQ1_0's
    // 52 code bytes hold 48 x 5 + 4 x 4 = 256 base-3 digits instead.
    int bits = 0;
    while ((1 << bits) <= c.qmax) ++bits;
    const auto header = static_cast<int64_t>(c.header_len + c.header2_len);
    if (c.t == DType::TQ1_0)
      EXPECT_EQ(48 * 5 + 4 * 4, c.elems);
    else
      EXPECT_EQ(header * 8 + c.elems * bits, c.bytes * 8) << dtype_name(c.t);
  }
  EXPECT_EQ(ggml_block_layout(DType::Q2_K).sub, 16);
  EXPECT_EQ(ggml_block_layout(DType::IQ4_XS).sub, 32);
  EXPECT_EQ(ggml_block_layout(DType::IQ4_XS).codebook, kIq4NlValues);
  EXPECT_EQ(ggml_block_layout(DType::TQ1_0).zero, 1);
  EXPECT_EQ(ggml_block_layout(DType::TQ2_0).zero, 1);
  EXPECT_EQ(ggml_block_layout(DType::TQ2_0).sub, 256);
  EXPECT_EQ(std::string(dtype_name(DType::Q2_K)), "Q2_K");
  EXPECT_EQ(std::string(dtype_name(DType::IQ4_XS)), "IQ4_XS");
  EXPECT_EQ(std::string(dtype_name(DType::TQ1_0)), "TQ1_0");
  EXPECT_EQ(std::string(dtype_name(DType::TQ2_0)), "TQ2_0");
  EXPECT_EQ(ggml_block_layout(DType::Q3_K).sub, 16);
  EXPECT_EQ(ggml_block_layout(DType::Q5_K).sub, 32);
  EXPECT_EQ(ggml_block_layout(DType::Q3_K).zero, 4);
  EXPECT_EQ(ggml_block_layout(DType::Q5_1).zero, 0);
  EXPECT_EQ(ggml_block_layout(DType::IQ4_NL).codebook, kIq4NlValues);
  EXPECT_EQ(std::string(dtype_name(DType::Q3_K)), "Q3_K");
  EXPECT_EQ(std::string(dtype_name(DType::Q5_K)), "Q5_K");
  EXPECT_EQ(std::string(dtype_name(DType::Q5_1)), "Q5_1");
  EXPECT_EQ(std::string(dtype_name(DType::IQ4_NL)), "IQ4_NL");
  for (DType t : {DType::F32, DType::F16, DType::BF16}) EXPECT_FALSE(is_ggml_block_type(t));
}

TEST(GgmlQuants, PackUnpackRoundTripKeepsHeader) {
  std::mt19937 rng(23);
  for (const TypeCase& c : kTypes) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<uint8_t> block = random_blocks(1, c.bytes, static_cast<uint32_t>(rng()));
      const std::vector<uint8_t> before = block;
      std::vector<uint8_t> codes(c.elems), back(c.elems);
      for (uint8_t& q : codes) q = static_cast<uint8_t>(rng() % (c.qmax + 1));
      if (trial == 0) std::fill(codes.begin(), codes.end(), 0);
      if (trial == 1) std::fill(codes.begin(), codes.end(), static_cast<uint8_t>(c.qmax));
      ggml_pack_codes(c.t, block.data(), codes.data());
      ggml_unpack_codes(c.t, block.data(), back.data());
      ASSERT_EQ(back, codes) << dtype_name(c.t) << " trial " << trial;
      // Every code bit is overwritten and the header kept: packing into a block whose code
      // bytes are zero gives the same bytes.
      std::vector<uint8_t> clean(c.bytes, 0);
      for (int64_t i = 0; i < c.bytes; ++i) {
        if (!c.in_header(i)) continue;
        EXPECT_EQ(block[i], before[i]) << dtype_name(c.t) << " header byte " << i;
        clean[i] = before[i];
      }
      ggml_pack_codes(c.t, clean.data(), codes.data());
      EXPECT_EQ(clean, block) << dtype_name(c.t);
      // Codes all 0 / all qmax clear / set every non-header bit (Q8_0 stores code ^ 0x80;
      // TQ1_0's five digits 2 are ceil(256 · 242 / 243) = 255, its qh's four 253).
      if (trial < 2) {
        for (int64_t i = 0; i < c.bytes; ++i) {
          if (c.in_header(i)) continue;
          uint8_t want = trial == 0 ? 0x00 : 0xff;
          if (c.t == DType::Q8_0) want ^= 0x80;
          if (c.t == DType::TQ1_0 && trial == 1 && i >= 48) want = 253;
          ASSERT_EQ(block[i], want) << dtype_name(c.t) << " byte " << i;
        }
      }
    }
  }
}

// ---- code choice ----------------------------------------------------------------------------

TEST(GgmlQuants, NearestCodeRule) {
  const GgmlBlockLayout& q3 = ggml_block_layout(DType::Q3_K);
  const GgmlBlockLayout& q51 = ggml_block_layout(DType::Q5_1);
  const GgmlBlockLayout& nl = ggml_block_layout(DType::IQ4_NL);
  // Q3_K, step -2 (a negative sub-block scale): x = 6 -> q - 4 = -3; ties to even; clamped.
  EXPECT_EQ(ggml_nearest_code(q3, {-2.0f, 0.0f}, 6.0f), 1);
  EXPECT_EQ(ggml_nearest_code(q3, {1.0f, 0.0f}, 0.5f), 4);  // 0.5 -> 0 (even)
  EXPECT_EQ(ggml_nearest_code(q3, {1.0f, 0.0f}, 1.5f), 6);  // 1.5 -> 2 (even)
  EXPECT_EQ(ggml_nearest_code(q3, {1.0f, 0.0f}, 100.0f), 7);
  EXPECT_EQ(ggml_nearest_code(q3, {1.0f, 0.0f}, -100.0f), 0);
  EXPECT_EQ(ggml_nearest_code(q3, {0.0f, 0.0f}, 3.0f), 4);  // step 0: the zero code
  // Q5_1 d 0.25, m -3 (min = 3): x = -2 -> (x + 3) / 0.25 = 4.
  EXPECT_EQ(ggml_nearest_code(q51, {0.25f, 3.0f}, -2.0f), 4);
  EXPECT_EQ(ggml_nearest_code(q51, {0.25f, 3.0f}, 50.0f), 31);
  EXPECT_EQ(ggml_nearest_code(q51, {0.25f, 3.0f}, -50.0f), 0);
  // IQ4_NL: x / d nearest in the code book; halfway between -10 and 1 (-4.5) -> the lower.
  EXPECT_EQ(ggml_nearest_code(nl, {1.0f, 0.0f}, -4.5f), 7);
  EXPECT_EQ(ggml_nearest_code(nl, {1.0f, 0.0f}, -4.4f), 8);
  EXPECT_EQ(ggml_nearest_code(nl, {-1.0f, 0.0f}, 120.0f), 0);  // 120 / -1 -> -127
  EXPECT_EQ(ggml_nearest_code(nl, {0.5f, 0.0f}, 300.0f), 15);
  EXPECT_EQ(ggml_nearest_code(nl, {0.0f, 0.0f}, 3.0f), 8);  // step 0: value 1 * 0
  EXPECT_EQ(ggml_code_value(nl, {0.5f, 0.0f}, 15), 56.5f);
  EXPECT_EQ(ggml_code_value(q51, {0.25f, 3.0f}, 4), -2.0f);
  // TQ1_0: d (q - 1) with q in 0..2; Q2_K: step q - min with q in 0..3.
  const GgmlBlockLayout& tq1 = ggml_block_layout(DType::TQ1_0);
  const GgmlBlockLayout& q2 = ggml_block_layout(DType::Q2_K);
  EXPECT_EQ(ggml_nearest_code(tq1, {0.5f, 0.0f}, 0.3f), 2);
  EXPECT_EQ(ggml_nearest_code(tq1, {0.5f, 0.0f}, -0.2f), 1);
  EXPECT_EQ(ggml_nearest_code(tq1, {0.5f, 0.0f}, -9.0f), 0);
  EXPECT_EQ(ggml_nearest_code(tq1, {0.5f, 0.0f}, 9.0f), 2);
  EXPECT_EQ(ggml_nearest_code(q2, {1.0f, -2.0f}, 4.0f), 2);  // (4 - 2) / 1
  EXPECT_EQ(ggml_nearest_code(q2, {1.0f, -2.0f}, 9.0f), 3);
  EXPECT_EQ(ggml_code_value(tq1, {0.5f, 0.0f}, 0), -0.5f);
  EXPECT_EQ(ggml_code_value(q2, {1.5f, 0.25f}, 3), 4.25f);
}

// ---- the GGUF reader ------------------------------------------------------------------------

TEST(GgmlQuants, GgufReaderViewsNewTypes) {
  using test::tensor_spec;
  struct Case {
    const char* name;
    uint32_t id;
    DType t;
    int64_t elems, bytes;
  };
  const Case cases[] = {{"q51", 7, DType::Q5_1, 32, 24},
                        {"q3k", 11, DType::Q3_K, 256, 110},
                        {"q5k", 13, DType::Q5_K, 256, 176},
                        {"nl", 20, DType::IQ4_NL, 32, 18}};
  test::GgufBuilder b;
  b.kvs = {test::kv_string("general.architecture", "llama")};
  std::vector<std::vector<uint8_t>> data;
  for (const Case& c : cases) {
    std::vector<uint8_t> d = random_blocks(4, c.bytes, c.id);  // 2 rows of 2 blocks
    for (int i = 0; i < 4; ++i) put_half(d, i * c.bytes + (c.id == 11 ? 108 : 0), 0x3800);
    if (c.id == 7 || c.id == 13)
      for (int i = 0; i < 4; ++i) put_half(d, i * c.bytes + 2, 0xB400);
    b.tensors.push_back(tensor_spec(c.name, {static_cast<uint64_t>(2 * c.elems), 2}, c.id,
                                    std::string(d.begin(), d.end())));
    data.push_back(d);
  }
  const std::string bytes = b.build();
  const GgufFile g("mem.gguf", std::vector<uint8_t>(bytes.begin(), bytes.end()));
  for (size_t k = 0; k < 4; ++k) {
    const Case& c = cases[k];
    const TensorView v = g.view(c.name);
    EXPECT_EQ(v.dtype, c.t) << c.name;
    EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 2 * c.elems})) << c.name;
    EXPECT_EQ(v.nbytes, static_cast<size_t>(4 * c.bytes)) << c.name;
    EXPECT_EQ(to_f32(v), decode(c.t, data[k], 4 * c.elems)) << c.name;
    EXPECT_EQ(ggml_type_name(c.id), dtype_name(c.t));
  }
  b.tensors[2].ne = {128, 2};  // Q5_K rows must be whole 256-element blocks
  const std::string bad = b.build();
  try {
    GgufFile("mem.gguf", std::vector<uint8_t>(bad.begin(), bad.end()));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("row length 128 is not a multiple of the Q5_K block size 256"),
        std::string::npos)
        << e.what();
  }
}

// The reader maps ggml ids 10 (Q2_K), 23 (IQ4_XS), 34 (TQ1_0), 35 (TQ2_0) to their DTypes and
// decodes them; malformed sizes are refused with lowbit::Error.
TEST(GgmlQuants, GgufReaderViewsQ2KIq4XsTernary) {
  struct Case {
    const char* name;
    uint32_t id;
    DType t;
    int64_t bytes;
    size_t half_at;
  };
  const Case cases[] = {{"q2k", 10, DType::Q2_K, 84, 80},
                        {"iq4xs", 23, DType::IQ4_XS, 136, 0},
                        {"tq1", 34, DType::TQ1_0, 54, 52},
                        {"tq2", 35, DType::TQ2_0, 66, 64}};
  test::GgufBuilder b;
  b.kvs = {test::kv_string("general.architecture", "llama")};
  std::vector<std::vector<uint8_t>> data;
  for (const Case& c : cases) {
    std::vector<uint8_t> d = random_blocks(6, c.bytes, c.id);  // 3 rows of 2 blocks
    for (int i = 0; i < 6; ++i) put_half(d, i * c.bytes + c.half_at, 0xB400);
    b.tensors.push_back(test::tensor_spec(c.name, {512, 3}, c.id, std::string(d.begin(), d.end())));
    data.push_back(d);
  }
  const std::string bytes = b.build();
  const GgufFile g("mem.gguf", std::vector<uint8_t>(bytes.begin(), bytes.end()));
  for (size_t k = 0; k < 4; ++k) {
    const Case& c = cases[k];
    const TensorView v = g.view(c.name);
    EXPECT_EQ(v.dtype, c.t) << c.name;
    EXPECT_EQ(v.shape, (std::vector<int64_t>{3, 512})) << c.name;
    EXPECT_EQ(v.nbytes, static_cast<size_t>(6 * c.bytes)) << c.name;
    EXPECT_EQ(to_f32(v), decode(c.t, data[k], 6 * 256)) << c.name;
    EXPECT_EQ(ggml_type_name(c.id), dtype_name(c.t));
    // A view whose byte count disagrees with its shape is refused, not read past.
    TensorView short_view = v;
    short_view.nbytes -= 1;
    test::expect_error([&] { to_f32(short_view); }, "shape needs", "tensor");
    TensorView odd = v;
    odd.shape = {3 * 512 + 128};
    test::expect_error([&] { to_f32(odd); }, "needs a multiple of 256 elements", "tensor");
  }
  // Rows must be whole 256-element blocks.
  for (size_t k = 0; k < 4; ++k) {
    test::GgufBuilder bad = b;
    bad.tensors[k].ne = {384, 2};
    const std::string bb = bad.build();
    std::string needle = "row length 384 is not a multiple of the ";
    needle += dtype_name(cases[k].t);
    needle += " block size 256";
    test::expect_error(
        [&] { GgufFile("mem.gguf", std::vector<uint8_t>(bb.begin(), bb.end())); }, needle,
        "gguf");
  }
  // A data section cut short (the last tensor's bytes missing) is refused at open.
  const std::string cut = bytes.substr(0, bytes.size() - 100);
  try {
    GgufFile("mem.gguf", std::vector<uint8_t>(cut.begin(), cut.end()));
    ADD_FAILURE() << "a truncated file was accepted";
  } catch (const Error&) {
  }
}

}  // namespace
}  // namespace lowbit
