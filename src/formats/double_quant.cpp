#include "formats/double_quant.h"

#include <algorithm>

namespace lowbit {

namespace {

void quantize_block(const float* s, int64_t n, uint8_t* codes, float* step, float* offset) {
  float lo = s[0], hi = s[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, s[i]);
    hi = std::max(hi, s[i]);
  }
  *offset = lo;
  *step = (hi - lo) / 255.0f;
  const float inv = *step > 0.0f ? 1.0f / *step : 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::nearbyint((s[i] - lo) * inv);
    codes[i] = static_cast<uint8_t>(std::clamp(q, 0.0f, 255.0f));
  }
}

}  // namespace

void double_quantize(const float* scales, int64_t n, uint8_t* codes, float* dq_scale,
                     float* dq_offset) {
  for (int64_t b = 0; b * kDqBlock < n; ++b) {
    const int64_t begin = b * kDqBlock;
    const int64_t len = std::min(kDqBlock, n - begin);
    quantize_block(scales + begin, len, codes + begin, &dq_scale[b], &dq_offset[b]);
  }
}

}  // namespace lowbit
