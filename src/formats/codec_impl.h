// Internal to src/formats: builds a kind's GroupCodec row from three inline functions so that the
// group loops are specialised (no per-element indirect call).
//
// A Kind provides
//   static GroupParams fit(const QuantSpec&, const float* w, int64_t n, float clip);
//   static uint8_t encode(const QuantSpec&, float w, const GroupParams&);
//   static float decode(const QuantSpec&, uint8_t q, const GroupParams&);
// and optionally
//   static float reconstruct(const QuantSpec&, float w, const GroupParams&);
// equal to decode(encode(w)) but written so that GCC vectorises it (used by group_sq_error, the
// clip search's inner loop; codec_test checks the equality).
#pragma once

#include <algorithm>
#include <cmath>

#include "formats/codec.h"

namespace lowbit::detail {

// Largest |w[i]| of the group (0 for n == 0).
inline float group_absmax(const float* w, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(w[i]));
  return m;
}

// Rounds x to the nearest integer (ties to even) and clamps it to the integers [lo, hi], as a
// float. Clamping first is equivalent (the bounds are integers) and lets GCC vectorise the
// selects (it will not after the nearbyint call); comparisons rather than libm fmaxf calls. NaN
// fails `x >= lo` and becomes lo, so the int conversion in round_clamp is always defined.
inline float round_clamp_f(float x, float lo, float hi) {
  x = x >= lo ? x : lo;
  x = x <= hi ? x : hi;
  return std::nearbyint(x);
}
inline int round_clamp(float x, float lo, float hi) {
  return static_cast<int>(round_clamp_f(x, lo, hi));
}

template <class Kind>
struct CodecLoops {
  static void encode_group(const QuantSpec& s, const float* w, int64_t n, const GroupParams& p,
                           uint8_t* q) {
    for (int64_t i = 0; i < n; ++i) q[i] = Kind::encode(s, w[i], p);
  }
  static void decode_group(const QuantSpec& s, const uint8_t* q, int64_t n, const GroupParams& p,
                           float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = Kind::decode(s, q[i], p);
  }
  // decode(encode(w)); a Kind may provide a bit-identical float-only `reconstruct` that
  // vectorises (no round trip through the uint8 code).
  static float reconstruct(const QuantSpec& s, float w, const GroupParams& p) {
    if constexpr (requires { Kind::reconstruct(s, w, p); })
      return Kind::reconstruct(s, w, p);
    else
      return Kind::decode(s, Kind::encode(s, w, p), p);
  }

  static double sq_error(const QuantSpec& s, const float* w, const float* imp, int64_t n,
                         const GroupParams& p) {
    return imp ? sq_error_lanes<true>(s, w, imp, n, p) : sq_error_lanes<false>(s, w, imp, n, p);
  }

  // The clip search's hot loop: blocks of values are reconstructed by a plain map loop (which
  // vectorises), then their squared errors go into eight double accumulators summed in a fixed
  // order, so the result is deterministic.
  template <bool kWeighted>
  static double sq_error_lanes(const QuantSpec& s, const float* w, const float* imp, int64_t n,
                               const GroupParams& p) {
    constexpr int64_t kBlock = 64;
    float r[kBlock];
    double acc[8] = {};
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t len = std::min(kBlock, n - b);
      for (int64_t j = 0; j < len; ++j) r[j] = reconstruct(s, w[b + j], p);
      for (int64_t j = 0; j < len; ++j) {
        const double d = static_cast<double>(w[b + j]) - r[j];
        acc[j & 7] += (kWeighted ? static_cast<double>(imp[b + j]) : 1.0) * d * d;
      }
    }
    double e = 0.0;
    for (double a : acc) e += a;
    return e;
  }
};

template <class Kind>
constexpr GroupCodec make_group_codec() {
  return GroupCodec{&Kind::fit,
                    &Kind::encode,
                    &Kind::decode,
                    &CodecLoops<Kind>::encode_group,
                    &CodecLoops<Kind>::decode_group,
                    &CodecLoops<Kind>::sq_error};
}

}  // namespace lowbit::detail
