// Ternary (BitNet b1.58, Ma et al. 2024): weights in {-1, 0, +1} times one absmean scale per
// group. Codes take 2 bits: q in {0, 1, 2} stands for q - 1; code 3 is invalid (validate()
// rejects it).
//
// Layout: codes bit-packed per row, 4 per byte, lowest bits first; scales [rows, groups]
// fp16/bf16.
//   value = scale * (q - 1)
// Bits per weight: 2 + 16/G (the 2-bit code spends 0.42 bit over log2(3) = 1.58 for simple
// unpacking).
//
// Fit: scale = round_scale(c * mean |w|) (BitNet's absmean; the clip ratio scales it).
// Encode: q = clamp(round_half_even(w * inv_scale), -1, 1) + 1, i.e. |w| <= scale/2 -> 0.
#pragma once

#include "formats/codec.h"
#include "formats/codec_impl.h"

namespace lowbit {

GroupParams ternary_fit(const QuantSpec& s, const float* w, int64_t n, float clip);

inline uint8_t ternary_encode(const QuantSpec&, float w, const GroupParams& p) {
  return static_cast<uint8_t>(detail::round_clamp(w * p.inv_scale, -1.0f, 1.0f) + 1);
}

inline float ternary_decode(const QuantSpec&, uint8_t q, const GroupParams& p) {
  return p.scale * static_cast<float>(static_cast<int>(q) - 1);
}

// ternary_decode(ternary_encode(w)) without the code: bit-identical, and it vectorises.
inline float ternary_reconstruct(const QuantSpec&, float w, const GroupParams& p) {
  return p.scale * detail::round_clamp_f(w * p.inv_scale, -1.0f, 1.0f);
}

extern const GroupCodec kTernaryCodec;

}  // namespace lowbit
