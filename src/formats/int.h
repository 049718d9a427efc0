// Int: uniform integer grid with b-bit codes (b in 2..8), one scale per group, optionally one
// integer zero-point per group (asymmetric).
//
// Layout: codes bit-packed per row (bitpack.h); scales [rows, groups] fp16/bf16 (or double
// quantized); zeros [rows, groups] uint8 (asym only).
//   sym:   value = scale * (q - 2^(b-1)),  q in [0, 2^b - 1]   (levels -2^(b-1) .. 2^(b-1)-1)
//   asym:  value = scale * (q - zero),     q, zero in [0, 2^b - 1]
// Bits per weight: b + 16/G (sym), b + 24/G (asym), b + 8/G + 64/(256 G) (sym, double quant).
//
// Fit (clip ratio c in (0, 1]):
//   sym:  m = the group's value of largest magnitude (signed; the first one on ties);
//         scale = round_scale(c * m / -2^(b-1)). The extreme value lands exactly on the lowest
//         level -2^(b-1), which has one more step than the positive side (llama.cpp Q4_0 rule);
//         the scale is therefore NEGATIVE when m > 0 — stored scales carry a sign.
//   asym: lo = c * min(0, min w), hi = c * max(0, max w) (the range always contains 0, so the
//         zero-point is a valid code; the clip shrinks both ends jointly by the same ratio);
//         scale = round_scale((hi - lo) / (2^b - 1)); zero = clamp(round(-lo / scale), 0, 2^b-1).
// Encode: q = clamp(round_half_even(w * inv_scale) + zero, 0, 2^b - 1).
#pragma once

#include "formats/codec.h"
#include "formats/codec_impl.h"

namespace lowbit {

GroupParams int_fit(const QuantSpec& s, const float* w, int64_t n, float clip);

inline uint8_t int_encode(const QuantSpec& s, float w, const GroupParams& p) {
  const float maxq = static_cast<float>((1 << s.bits) - 1);
  const float z = static_cast<float>(p.zero);
  return static_cast<uint8_t>(detail::round_clamp(w * p.inv_scale, -z, maxq - z) + p.zero);
}

inline float int_decode(const QuantSpec& s, uint8_t q, const GroupParams& p) {
  return p.scale * static_cast<float>(static_cast<int>(q) - p.zero);
}

// int_decode(int_encode(w)) without the code: bit-identical, and it vectorises (clip search).
inline float int_reconstruct(const QuantSpec& s, float w, const GroupParams& p) {
  const float maxq = static_cast<float>((1 << s.bits) - 1);
  const float z = static_cast<float>(p.zero);
  return p.scale * detail::round_clamp_f(w * p.inv_scale, -z, maxq - z);
}

extern const GroupCodec kIntCodec;

}  // namespace lowbit
