#include "formats/ternary.h"

#include <cmath>

namespace lowbit {

namespace {
struct TernaryKind {
  static GroupParams fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
    return ternary_fit(s, w, n, clip);
  }
  static uint8_t encode(const QuantSpec& s, float w, const GroupParams& p) {
    return ternary_encode(s, w, p);
  }
  static float decode(const QuantSpec& s, uint8_t q, const GroupParams& p) {
    return ternary_decode(s, q, p);
  }
  static float reconstruct(const QuantSpec& s, float w, const GroupParams& p) {
    return ternary_reconstruct(s, w, p);
  }
};
}  // namespace

GroupParams ternary_fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
  double sum = 0.0;  // double: a long per-channel row must not lose the small terms
  for (int64_t i = 0; i < n; ++i) sum += std::fabs(w[i]);
  const float absmean = n > 0 ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
  return make_group_params(s, round_scale(s, clip * absmean));
}

const GroupCodec kTernaryCodec = detail::make_group_codec<TernaryKind>();

}  // namespace lowbit
