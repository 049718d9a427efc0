// The AVX-512 path of kernels/f16_axpy.h: one 16-float register per block of the layout.
#include <immintrin.h>

#include "kernels/f16_axpy.h"

namespace lowbit::detail {

namespace {

// kVec consecutive blocks from block k; for every j they read kVec rows of 32 bytes, r·32 bytes
// apart.
template <int kVec>
void add_blocks(const float* s, const uint16_t* blocks, int64_t r, int64_t k, float* y) {
  const uint16_t* base = blocks + k * r * kF16Block;
  float* out = y + k * kF16Block;
  __m512 acc[kVec];
  for (int v = 0; v < kVec; ++v) acc[v] = _mm512_loadu_ps(out + 16 * v);
  for (int64_t j = 0; j < r; ++j) {
    const __m512 sj = _mm512_set1_ps(s[j]);
    for (int v = 0; v < kVec; ++v) {
      const uint16_t* row = base + (v * r + j) * kF16Block;
      acc[v] = _mm512_fmadd_ps(
          sj, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))), acc[v]);
    }
  }
  for (int v = 0; v < kVec; ++v) _mm512_storeu_ps(out + 16 * v, acc[v]);
}

}  // namespace

void add_scaled_f16_blocks_avx512(const float* s, const uint16_t* blocks, int64_t r, int64_t k0,
                                  int64_t k1, float* y) {
  int64_t k = k0;
  for (; k + 4 <= k1; k += 4) add_blocks<4>(s, blocks, r, k, y);
  for (; k < k1; ++k) add_blocks<1>(s, blocks, r, k, y);
}

}  // namespace lowbit::detail
