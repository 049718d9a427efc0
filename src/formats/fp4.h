// FP4 E2M1 (OCP Microscaling spec): 4-bit codes, bit 3 sign, bits 2..1 exponent (bias 1),
// bit 0 mantissa; magnitudes of codes 0..7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6 (kFp4E2M1 in
// codebooks.h), codes 8..15 their negatives. One scale per group.
//
// Layout: codes bit-packed per row, 2 per byte, low nibble first; scales [rows, groups] fp16/bf16
// or double-quantized.
//   value = scale * e2m1(q)
// Bits per weight: 4 + 16/G, or 4 + 8/G + 64/(256 G) with double quant.
//
// Fit: scale = round_scale(c * absmax / 6), so the group's absmax maps to the largest
// magnitude 6. Encode: x = w * inv_scale, magnitude rounded to the nearest E2M1 magnitude with
// ties to the even code (= even mantissa, IEEE round-half-even: 0.25 -> 0, 0.75 -> 1,
// 1.25 -> 1, 1.75 -> 2, 2.5 -> 2, 3.5 -> 4, 5 -> 4), saturating at 6; sign bit set for x < 0
// unless the magnitude is 0 (the reference never emits -0, code 8; it decodes to 0 all the same).
#pragma once

#include <array>
#include <cmath>

#include "formats/codebooks.h"
#include "formats/codec.h"

namespace lowbit {

namespace detail {
// Midpoints between consecutive E2M1 magnitudes.
inline constexpr std::array<float, 7> kFp4Mid = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
}  // namespace detail

GroupParams fp4_fit(const QuantSpec& s, const float* w, int64_t n, float clip);

inline uint8_t fp4_encode(const QuantSpec&, float w, const GroupParams& p) {
  const float x = w * p.inv_scale;
  const float a = std::fabs(x);
  int m = 0;
  // Midpoint i separates codes i and i+1; a tie goes to the even one of the two.
  for (int i = 0; i < 7; ++i) m += (i % 2 == 0) ? a > detail::kFp4Mid[i] : a >= detail::kFp4Mid[i];
  return static_cast<uint8_t>(m | (x < 0.0f && m != 0 ? 8 : 0));
}

inline float fp4_decode(const QuantSpec&, uint8_t q, const GroupParams& p) {
  return p.scale * kFp4E2M1[q & 15];
}

// fp4_decode(fp4_encode(w)) without the code, as a chain of selects that vectorises; the same
// value (a negative x rounding to magnitude 0 gives -0 here, +0 through the code).
inline float fp4_reconstruct(const QuantSpec&, float w, const GroupParams& p) {
  const float x = w * p.inv_scale;
  const float a = std::fabs(x);
  float m = 0.0f;
  for (int i = 0; i < 7; ++i) {
    const bool up = (i % 2 == 0) ? a > detail::kFp4Mid[i] : a >= detail::kFp4Mid[i];
    m = up ? kFp4E2M1[i + 1] : m;
  }
  return p.scale * (x < 0.0f ? -m : m);
}

extern const GroupCodec kFp4Codec;

}  // namespace lowbit
