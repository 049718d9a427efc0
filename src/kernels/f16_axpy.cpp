#include "kernels/f16_axpy.h"

#include <immintrin.h>

#include "base/half.h"

namespace lowbit {

void add_scaled_f16_rows_ref(const float* s, const uint16_t* b, int64_t r, int64_t stride, int64_t i0,
                             int64_t i1, float* y) {
  for (int64_t i = i0; i < i1; ++i) {
    float acc = y[i];
    for (int64_t j = 0; j < r; ++j) acc += s[j] * f16_to_f32(b[j * stride + i]);
    y[i] = acc;
  }
}

namespace {

// kVec 8-float registers of accumulators for y[i, i + 8·kVec): each j reads 16·kVec contiguous
// bytes of row j. AVX2 + F16C are in every build's baseline (ARCHITECTURE.md convention 4).
template <int kVec>
void add_block(const float* s, const uint16_t* b, int64_t r, int64_t stride, int64_t i, float* y) {
  __m256 acc[kVec];
  for (int v = 0; v < kVec; ++v) acc[v] = _mm256_loadu_ps(y + i + 8 * v);
  for (int64_t j = 0; j < r; ++j) {
    const __m256 sj = _mm256_set1_ps(s[j]);
    const uint16_t* row = b + j * stride + i;
    for (int v = 0; v < kVec; ++v) {
      const __m256 bj = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * v)));
      acc[v] = _mm256_add_ps(acc[v], _mm256_mul_ps(sj, bj));
    }
  }
  for (int v = 0; v < kVec; ++v) _mm256_storeu_ps(y + i + 8 * v, acc[v]);
}

}  // namespace

void add_scaled_f16_rows(const float* s, const uint16_t* b, int64_t r, int64_t stride, int64_t i0, int64_t i1,
                         float* y) {
  int64_t i = i0;
  for (; i + 32 <= i1; i += 32) add_block<4>(s, b, r, stride, i, y);
  for (; i + 8 <= i1; i += 8) add_block<1>(s, b, r, stride, i, y);
  add_scaled_f16_rows_ref(s, b, r, stride, i, i1, y);
}

}  // namespace lowbit
