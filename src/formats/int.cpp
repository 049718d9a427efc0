#include "formats/int.h"

#include <algorithm>
#include <cmath>

namespace lowbit {

namespace {

GroupParams fit_sym(const QuantSpec& s, const float* w, int64_t n, float clip) {
  float m = 0.0f;  // signed value of largest magnitude; strict > keeps the first on ties
  for (int64_t i = 0; i < n; ++i)
    if (std::fabs(w[i]) > std::fabs(m)) m = w[i];
  const float half = static_cast<float>(1 << (s.bits - 1));
  return make_group_params(s, round_scale(s, clip * m / -half));
}

GroupParams fit_asym(const QuantSpec& s, const float* w, int64_t n, float clip) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  const int maxq = (1 << s.bits) - 1;
  lo *= clip;
  hi *= clip;
  const float scale = round_scale(s, (hi - lo) / static_cast<float>(maxq));
  // The zero-point is chosen against the stored (rounded) scale: -lo / scale is the code of 0.
  const int zero =
      scale > 0.0f ? detail::round_clamp(-lo / scale, 0.0f, static_cast<float>(maxq)) : 0;
  return make_group_params(s, scale, zero);
}

struct IntKind {
  static GroupParams fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
    return int_fit(s, w, n, clip);
  }
  static uint8_t encode(const QuantSpec& s, float w, const GroupParams& p) {
    return int_encode(s, w, p);
  }
  static float decode(const QuantSpec& s, uint8_t q, const GroupParams& p) {
    return int_decode(s, q, p);
  }
  static float reconstruct(const QuantSpec& s, float w, const GroupParams& p) {
    return int_reconstruct(s, w, p);
  }
};

}  // namespace

GroupParams int_fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
  return s.asym ? fit_asym(s, w, n, clip) : fit_sym(s, w, n, clip);
}

const GroupCodec kIntCodec = detail::make_group_codec<IntKind>();

}  // namespace lowbit
