// NF4: QLoRA NormalFloat-4 (Dettmers et al. 2023). 4-bit codes into the code book kNf4
// (codebooks.h: 16 quantiles of N(0,1) normalised to [-1, 1], with an exact 0 at code 7),
// one absmax scale per group.
//
// Layout: codes bit-packed per row, 2 per byte, low nibble first; scales [rows, groups] fp16/bf16
// or double-quantized.
//   value = scale * kNf4[q]
// Bits per weight: 4 + 16/G, or 4 + 8/G + 64/(256 G) with double quant (QLoRA's 4.127 at G=64).
//
// Fit: scale = round_scale(c * absmax) (positive). Encode: x = w * inv_scale, q = the index of
// the nearest code-book entry (ties go to the lower code), found as the number of midpoints
// (kNf4[i] + kNf4[i+1]) / 2 lying strictly below x; saturates at codes 0 and 15.
#pragma once

#include <array>

#include "formats/codebooks.h"
#include "formats/codec.h"

namespace lowbit {

namespace detail {
inline constexpr std::array<float, 15> kNf4Mid = [] {
  std::array<float, 15> m{};
  for (int i = 0; i < 15; ++i) m[i] = (kNf4[i] + kNf4[i + 1]) * 0.5f;
  return m;
}();
}  // namespace detail

GroupParams nf4_fit(const QuantSpec& s, const float* w, int64_t n, float clip);

inline uint8_t nf4_encode(const QuantSpec&, float w, const GroupParams& p) {
  const float x = w * p.inv_scale;
  int q = 0;
  for (float m : detail::kNf4Mid) q += x > m;  // branch-free count; NaN counts 0 -> code 0
  return static_cast<uint8_t>(q);
}

inline float nf4_decode(const QuantSpec&, uint8_t q, const GroupParams& p) {
  return p.scale * kNf4[q & 15];
}

// nf4_decode(nf4_encode(w)) without the uint8 code in between: bit-identical, and GCC vectorises
// it (the count and a gather), which it does not for the encode + decode round trip.
inline float nf4_reconstruct(const QuantSpec&, float w, const GroupParams& p) {
  const float x = w * p.inv_scale;
  int q = 0;
  for (float m : detail::kNf4Mid) q += x > m;
  return p.scale * kNf4[q];
}

extern const GroupCodec kNf4Codec;

}  // namespace lowbit
