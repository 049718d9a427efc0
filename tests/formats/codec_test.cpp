// Known values of each format kind, worked out by hand from the published definitions, and the
// properties every codec must have (encode picks the nearest level of the stored scale).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "base/half.h"
#include "formats/codebooks.h"
#include "formats/codec.h"
#include "formats/fp4.h"
#include "formats/fp8.h"
#include "formats/int.h"
#include "formats/nf4.h"
#include "formats/quant_spec.h"
#include "formats/registry.h"
#include "formats/ternary.h"
#include "formats/test_data.h"

namespace lowbit {
namespace {

std::vector<uint8_t> codes_of(const QuantSpec& s, const std::vector<float>& w, GroupParams* p) {
  *p = fit_group(s, w.data(), static_cast<int64_t>(w.size()));
  std::vector<uint8_t> q(w.size());
  encode_group(s, w.data(), static_cast<int64_t>(w.size()), *p, q.data());
  return q;
}

TEST(Nf4, AbsmaxZeroAndNegativeAbsmax) {
  const QuantSpec s = parse_quant_spec("nf4:g64");
  GroupParams p;
  // Code book ends are exactly -1 (code 0) and +1 (code 15); zero is code 7.
  EXPECT_EQ(codes_of(s, {0.5f, 0.0f, -0.5f}, &p), (std::vector<uint8_t>{15, 7, 0}));
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(decode(s, 15, p), 0.5f);
  EXPECT_EQ(decode(s, 7, p), 0.0f);
  EXPECT_EQ(decode(s, 0, p), -0.5f);
  // 0.3 of absmax lies between kNf4[10] = 0.2461 and kNf4[11] = 0.3379 (midpoint 0.2920);
  // -0.6 between kNf4[1] = -0.6962 and kNf4[2] = -0.5251 (midpoint -0.6106).
  EXPECT_EQ(codes_of(s, {1.0f, 0.3f, 0.29f, -0.6f}, &p), (std::vector<uint8_t>{15, 11, 10, 2}));
  EXPECT_EQ(decode(s, 11, p), kNf4[11]);
}

TEST(Fp4, E2M1ValuesAndTiesToEven) {
  const QuantSpec s = parse_quant_spec("fp4:g32");
  GroupParams p;
  // absmax 6 -> scale 1. Ties: 0.75 -> 1 (code 2), 1.25 -> 1, 1.75 -> 2 (code 4), 2.5 -> 2,
  // 3.5 -> 4 (code 6), 5 -> 4, 0.25 -> 0; negatives set bit 3.
  const std::vector<float> w = {6.0f,  0.75f, -1.25f, 1.75f, 2.5f,
                                -3.5f, 5.0f,  0.25f,  -0.5f, 100.0f / 17};
  EXPECT_EQ(codes_of(s, w, &p), (std::vector<uint8_t>{7, 2, 10, 4, 4, 14, 6, 0, 9, 7}));
  EXPECT_EQ(p.scale, 1.0f);
  for (int q = 0; q < 16; ++q) EXPECT_EQ(decode(s, static_cast<uint8_t>(q), p), kFp4E2M1[q]);
  // A negative value too small for 0.5 gives +0 (code 0), never -0 (code 8).
  EXPECT_EQ(encode(s, -0.2f, p), 0);
}

TEST(Fp8, E4M3KnownEncodings) {
  EXPECT_EQ(f32_to_fp8_e4m3(448.0f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(-448.0f), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(500.0f), 0x7e);  // saturates, never NaN 0x7f
  EXPECT_EQ(f32_to_fp8_e4m3(1e30f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(1.0f), 0x38);                    // exponent 7 = bias, mantissa 0
  EXPECT_EQ(f32_to_fp8_e4m3(0.001953125f), 0x01);            // 2^-9, smallest subnormal
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(1.0f, -6)), 0x08);    // smallest normal
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(7.0f, -9)), 0x07);    // largest subnormal
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(1.0f, -10)), 0x00);   // tie 0 | 2^-9 -> even 0
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(3.0f, -10)), 0x02);   // tie 1 | 2 (x 2^-9) -> even 2
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(15.0f, -10)), 0x08);  // tie 7 | 8 -> 8 (normal 2^-6)
  EXPECT_EQ(f32_to_fp8_e4m3(1.0625f), 0x38);                 // tie 1 | 1.125 -> even mantissa 0
  EXPECT_EQ(f32_to_fp8_e4m3(1.1875f), 0x3a);                 // tie 1.125 | 1.25 -> even mantissa 2
  EXPECT_EQ(f32_to_fp8_e4m3(1.95f), 0x40);                   // rounds up into the next binade: 2.0
  EXPECT_EQ(f32_to_fp8_e4m3(432.0f), 0x7e);  // tie 416 | 448 -> even mantissa 6 (448)
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x00);
  EXPECT_EQ(detail::kFp8E4M3Values[0x7e], 448.0f);
  EXPECT_EQ(detail::kFp8E4M3Values[0x01], 0.001953125f);
  EXPECT_TRUE(std::isnan(detail::kFp8E4M3Values[0x7f]));
  EXPECT_TRUE(std::isnan(detail::kFp8E4M3Values[0xff]));
}

TEST(Fp8, EveryFiniteCodeRoundTripsAndTableMatchesCodebook) {
  for (int q = 0; q < 256; ++q) {
    const float v = detail::kFp8E4M3Values[q];
    const float ref = fp8_e4m3_to_f32(static_cast<uint8_t>(q));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(v));
      continue;
    }
    EXPECT_EQ(v, ref) << q;
    if (q == 0x80) continue;  // -0 encodes as +0
    EXPECT_EQ(f32_to_fp8_e4m3(v), q) << q;
  }
}

TEST(Fp8, GroupScaleIsAbsmaxOver448) {
  const QuantSpec s = parse_quant_spec("fp8:gc");
  GroupParams p;
  EXPECT_EQ(codes_of(s, {448.0f, -1.0f, 0.001953125f, 0.0f}, &p),
            (std::vector<uint8_t>{0x7e, 0xb8, 0x01, 0x00}));
  EXPECT_EQ(p.scale, 1.0f);
}

TEST(Int, SymmetricUsesTheSignedExtreme) {
  const QuantSpec s = parse_quant_spec("int4:g32");
  GroupParams p;
  // m = -4 -> scale = -4 / -8 = 0.5, zero 8. 3.5 -> 7 (code 15); 1.2 -> 2.4 -> 2 (code 10);
  // 0.25 -> 0.5 -> tie to even 0 (code 8); 0.75 -> 1.5 -> 2 (code 10).
  EXPECT_EQ(codes_of(s, {-4.0f, 3.5f, 1.2f, 0.25f, 0.75f}, &p),
            (std::vector<uint8_t>{0, 15, 10, 8, 10}));
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(p.zero, 8);
  EXPECT_EQ(decode(s, 0, p), -4.0f);
  // m = +4 -> scale -0.5: +4 lands on code 0 and decodes exactly.
  EXPECT_EQ(codes_of(s, {4.0f, -3.5f, 0.0f}, &p), (std::vector<uint8_t>{0, 15, 8}));
  EXPECT_EQ(p.scale, -0.5f);
  EXPECT_EQ(decode(s, 0, p), 4.0f);
  // int2: levels {-2, -1, 0, 1} x scale; m = 2 -> scale -1, so -1.5 -> 1.5 -> 2 saturates at 1.
  const QuantSpec s2 = parse_quant_spec("int2:g32");
  EXPECT_EQ(codes_of(s2, {2.0f, -1.0f, 0.4f, -1.5f}, &p), (std::vector<uint8_t>{0, 3, 2, 3}));
}

TEST(Int, AsymmetricZeroPoints) {
  const QuantSpec s = parse_quant_spec("int4:g32:asym");
  GroupParams p;
  // All positive: the range is [0, 7.5] -> scale 7.5 / 15 = 0.5, zero-point 0.
  EXPECT_EQ(codes_of(s, {0.5f, 1.0f, 7.5f, 3.0f}, &p), (std::vector<uint8_t>{1, 2, 15, 6}));
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(p.zero, 0);
  // All negative: [-7.5, 0] -> scale 0.5, zero-point 15.
  EXPECT_EQ(codes_of(s, {-7.5f, -1.0f}, &p), (std::vector<uint8_t>{0, 13}));
  EXPECT_EQ(p.zero, 15);
  EXPECT_EQ(decode(s, 15, p), 0.0f);
  // Mixed, int2: [-1, 2] -> scale 3 / 3 = 1, zero-point 1.
  const QuantSpec s2 = parse_quant_spec("int2:g32:asym");
  EXPECT_EQ(codes_of(s2, {-1.0f, 2.0f, 0.4f, 0.6f}, &p), (std::vector<uint8_t>{0, 3, 1, 2}));
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero, 1);
  // Clip 0.5 shrinks both ends: [-0.5, 1] -> scale 0.5, zero-point 1; 2 saturates at code 3.
  p = fit_group(s2, std::vector<float>{-1.0f, 2.0f}.data(), 2, 0.5f);
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(p.zero, 1);
  EXPECT_EQ(encode(s2, 2.0f, p), 3);
}

TEST(Ternary, AbsmeanScale) {
  const QuantSpec s = parse_quant_spec("ternary:g64");
  GroupParams p;
  // absmean = (1 + 0.25 + 0.5 + 0.25) / 4 = 0.5. x = 2 -> +1; -0.5 -> tie to even 0; 1 -> +1.
  EXPECT_EQ(codes_of(s, {1.0f, -0.25f, 0.5f, -0.25f}, &p), (std::vector<uint8_t>{2, 1, 2, 1}));
  EXPECT_EQ(p.scale, 0.5f);
  // absmean 0.3625: -1 -> -2.8 -> -1; -0.15 -> -0.41 -> 0; 0.3 -> 0.83 -> +1.
  EXPECT_EQ(codes_of(s, {-1.0f, -0.15f, 0.0f, 0.3f}, &p), (std::vector<uint8_t>{0, 1, 1, 2}));
  EXPECT_EQ(decode(s, 0, p), -p.scale);
}

TEST(Codec, AllZeroGroupDecodesToZero) {
  const std::vector<float> z(40, 0.0f);
  for (const QuantSpec& s : all_test_specs()) {
    const GroupParams p = fit_group(s, z.data(), 40);
    std::vector<uint8_t> q(40);
    std::vector<float> back(40, 1.0f);
    encode_group(s, z.data(), 40, p, q.data());
    decode_group(s, q.data(), 40, p, back.data());
    for (float v : back) EXPECT_EQ(v, 0.0f) << s.to_string();
  }
}

// fit_group's scale is exactly representable in its storage type, and encode returns the nearest
// of all levels of that scale (what dequantization will produce).
TEST(Codec, EncodeIsNearestLevelOfTheStoredScale) {
  test::Rng rng(11);
  for (const QuantSpec& s : all_test_specs()) {
    if (vector_dim(s) > 1) continue;  // no per-value codes: e8p_test checks its search
    std::vector<float> w = test::student_t_data(64, rng.next());
    for (float clip : {1.0f, 0.7f}) {
      const GroupParams p = fit_group(s, w.data(), 64, clip);
      if (!s.double_quant) {
        const float stored = s.scale_type == ScaleType::BF16 ? bf16_to_f32(f32_to_bf16(p.scale))
                                                             : f16_to_f32(f32_to_f16(p.scale));
        EXPECT_EQ(stored, p.scale) << s.to_string();
      }
      const int n_codes = s.kind == FormatKind::Ternary ? 3 : 1 << s.bits;
      for (float v : w) {
        const double got = std::fabs(v - decode(s, encode(s, v, p), p));
        double best = INFINITY;
        for (int q = 0; q < n_codes; ++q) {
          const float d = decode(s, static_cast<uint8_t>(q), p);
          if (!std::isnan(d)) best = std::min(best, std::fabs(double(v) - d));
        }
        // Slack: encode scales by 1/scale (one rounding) before picking the level.
        ASSERT_LE(got, best + 1e-6 * std::fabs(p.scale)) << s.to_string() << " w=" << v;
      }
    }
  }
}

TEST(Codec, FitGroupRoundsScaleToBf16WhenAsked) {
  const QuantSpec s = parse_quant_spec("int4:g128:bf16s");
  const std::vector<float> w = {0.0123456f, -0.07f, 0.031f};
  const GroupParams p = fit_group(s, w.data(), 3);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(p.scale)), p.scale);
  EXPECT_NE(p.scale, 0.07f / 8);  // not representable in bf16: it was rounded
  EXPECT_NEAR(p.scale, 0.07f / 8, 0.07f / 8 / 256);
}

TEST(Codec, F16ScaleSaturatesInsteadOfInf) {
  const QuantSpec s = parse_quant_spec("fp8:gc");
  const std::vector<float> w = {1e9f};
  const GroupParams p = fit_group(s, w.data(), 1);
  EXPECT_EQ(p.scale, 65504.0f);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// The float-only reconstruct functions the clip search uses must give exactly the value of the
// code round trip (sign of zero aside), for random values, ties, saturation and specials.
TEST(Codec, ReconstructEqualsDecodeOfEncode) {
  test::Rng rng(5);
  std::vector<float> xs = {0.0f, -0.0f, 1e30f, -1e30f, INFINITY, -INFINITY, NAN, 1e-30f};
  for (int i = 0; i < 20000; ++i) xs.push_back(static_cast<float>(rng.student_t(3) * 3));
  for (int i = -40; i <= 40; ++i) xs.push_back(i * 0.25f);  // integer and half-integer ties
  for (int q = 0; q < 256; ++q) {  // every FP8 value and the midpoints around it
    const float v = detail::kFp8E4M3Values[q];
    if (std::isnan(v)) continue;
    xs.push_back(v);
    xs.push_back(std::nextafter(v, 1e9f));
    xs.push_back(std::nextafter(v, -1e9f));
  }
  for (int i = 0; i < 7; ++i) xs.push_back(detail::kFp4Mid[i]);
  for (int i = 0; i < 15; ++i) xs.push_back(detail::kNf4Mid[i]);
  struct Kind {
    const char* spec;
    float (*reconstruct)(const QuantSpec&, float, const GroupParams&);
  };
  for (const Kind& k :
       {Kind{"int4:g32", int_reconstruct}, Kind{"int3:g32:asym", int_reconstruct},
        Kind{"nf4:g64", nf4_reconstruct}, Kind{"fp4:g32", fp4_reconstruct},
        Kind{"fp8:gc", fp8_reconstruct}, Kind{"ternary:g64", ternary_reconstruct}}) {
    const QuantSpec s = parse_quant_spec(k.spec);
    for (float scale : {1.0f, 0.37f, -0.5f}) {
      const GroupParams p = make_group_params(s, scale, 3);
      for (float x : xs) {
        const float a = k.reconstruct(s, x, p), b = decode(s, encode(s, x, p), p);
        ASSERT_TRUE(a == b) << k.spec << " x=" << x << " scale=" << scale << ": " << a << " vs "
                            << b;
      }
    }
  }
}

}  // namespace
}  // namespace lowbit
