// FP8 E4M3 ("fn" variant, OCP FP8 spec): 8-bit codes, bit 7 sign, bits 6..3 exponent (bias 7),
// bits 2..0 mantissa; no infinities, 0x7f / 0xff are NaN (never emitted, rejected by
// validate()), largest finite 448 (0x7e), smallest subnormal 2^-9 (0x01). One scale per group
// or per channel (row).
//
// Layout: codes one byte each; scales [rows, groups] fp16/bf16.
//   value = scale * e4m3(q)
// Bits per weight: 8 + 16/G (per-channel: 8 + 16/cols).
//
// Fit: scale = round_scale(c * absmax / 448). Encode: x = w * inv_scale rounded to the nearest
// E4M3 value, ties to even mantissa (IEEE), saturating at ±448; zero magnitude gives code 0.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "base/half.h"
#include "formats/codebooks.h"
#include "formats/codec.h"

namespace lowbit {

namespace detail {
constexpr float exact_pow2(int e) {
  float r = 1.0f;
  for (; e > 0; --e) r *= 2.0f;
  for (; e < 0; ++e) r *= 0.5f;
  return r;
}
// e4m3(q) for every byte, same values as fp8_e4m3_to_f32 (codebooks.h).
inline constexpr std::array<float, 256> kFp8E4M3Values = [] {
  std::array<float, 256> t{};
  for (int q = 0; q < 256; ++q) {
    const int exp = (q >> 3) & 0xf, man = q & 0x7;
    float mag = exp == 0 ? man * exact_pow2(-9) : (8 + man) * exact_pow2(exp - 10);
    if (exp == 0xf && man == 0x7) mag = std::numeric_limits<float>::quiet_NaN();
    t[q] = (q & 0x80) ? -mag : mag;
  }
  return t;
}();
}  // namespace detail

// Nearest E4M3 code of x (round half to even, saturating to ±448; NaN -> 0).
inline uint8_t f32_to_fp8_e4m3(float x) {
  const uint32_t u = f32_to_bits(x);
  const uint32_t a = u & 0x7fffffffu;
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  if (a > 0x7f800000u) return 0;             // NaN
  if (a >= 0x43e00000u) return sign | 0x7e;  // >= 448: saturate
  if (a < 0x3c800000u) {                     // below 2^-6: subnormal grid of step 2^-9
    // a * 2^9 is exact; nearbyint rounds half to even; 8 carries into code 0x08 = 2^-6.
    const int q = static_cast<int>(std::nearbyint(bits_to_f32(a) * 512.0f));
    return q == 0 ? 0 : static_cast<uint8_t>(sign | q);
  }
  // Normal: keep 3 of the 23 mantissa bits, round half to even on the 20 dropped bits (a carry
  // bumps the exponent), then rebias the exponent 127 -> 7. a < 448 so it never reaches 0x7f.
  const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);
  return sign | static_cast<uint8_t>((r >> 20) - (120u << 3));
}

GroupParams fp8_fit(const QuantSpec& s, const float* w, int64_t n, float clip);

inline uint8_t fp8_encode(const QuantSpec&, float w, const GroupParams& p) {
  return f32_to_fp8_e4m3(w * p.inv_scale);
}

inline float fp8_decode(const QuantSpec&, uint8_t q, const GroupParams& p) {
  return p.scale * detail::kFp8E4M3Values[q];
}

// fp8_decode(fp8_encode(w)) without the code, in integer and float lane operations only (GCC
// vectorises it): |x| is saturated at 448 (NaN -> 0) on its bits, then rounded to the E4M3 grid
// of its binade, quantum 2^(E-3) for |x| in [2^E, 2^(E+1)), E >= -6, and 2^-9 below
// (subnormals). nearbyint(x / quantum) is the round-half-even of the 3-bit mantissa; both
// power-of-two scalings are exact. The same value as the code round trip (a negative x rounding
// to 0 gives -0 here, +0 through the code).
inline float fp8_reconstruct(const QuantSpec&, float w, const GroupParams& p) {
  const uint32_t u = std::bit_cast<uint32_t>(w * p.inv_scale);
  uint32_t a = u & 0x7fffffffu;
  a = a > 0x7f800000u ? 0u : a;           // NaN -> 0
  a = a < 0x43e00000u ? a : 0x43e00000u;  // saturate at 448
  const float x = std::bit_cast<float>((u & 0x80000000u) | a);
  uint32_t e = a & 0x7f800000u;             // biased exponent field of |x|
  e = e > (121u << 23) ? e : (121u << 23);  // below 2^-6: the subnormal quantum 2^-9
  const float quantum = std::bit_cast<float>(e - (3u << 23));                       // 2^(E-3)
  const float inv_quantum = std::bit_cast<float>((254u << 23) - (e - (3u << 23)));  // 2^(3-E)
  return p.scale * (std::nearbyint(x * inv_quantum) * quantum);
}

extern const GroupCodec kFp8Codec;

}  // namespace lowbit
