// Non-uniform code books shared by the formats, the kernels and the tests.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace lowbit {

// QLoRA NormalFloat-4 (Dettmers et al. 2023, appendix E): quantiles of N(0, 1) normalised to
// [-1, 1], with an exact zero; code q (0..15) stands for kNf4[q] x absmax.
inline constexpr std::array<float, 16> kNf4 = {
    -1.0f,                 -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f,  0.16093020141124725f, 0.24611230194568634f,  0.33791524171829224f,
    0.44070982933044434f,  0.5626170039176941f,  0.7229568362236023f,   1.0f};

// FP4 E2M1 (OCP MX spec): bit 3 sign, bits 2..1 exponent (bias 1), bit 0 mantissa.
// Magnitudes of codes 0..7: 0, 0.5 (subnormal), 1, 1.5, 2, 3, 4, 6; codes 8..15 are negated.
inline constexpr std::array<float, 16> kFp4E2M1 = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                                   -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
inline constexpr float kFp4Max = 6.0f;

// FP8 E4M3 ("fn" variant, OCP): bit 7 sign, bits 6..3 exponent (bias 7), bits 2..0 mantissa;
// no infinities, 0x7f / 0xff are NaN, largest finite 448.
inline float fp8_e4m3_to_f32(uint8_t q) {
  const int sign = q >> 7, exp = (q >> 3) & 0xf, man = q & 0x7;
  if (exp == 0xf && man == 0x7) return NAN;
  const float mag = exp == 0 ? std::ldexp(static_cast<float>(man), -9)  // subnormal: man/8 * 2^-6
                             : std::ldexp(1.0f + man / 8.0f, exp - 7);
  return sign ? -mag : mag;
}
inline constexpr float kFp8E4M3Max = 448.0f;

}  // namespace lowbit
