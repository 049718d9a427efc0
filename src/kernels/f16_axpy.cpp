#include "kernels/f16_axpy.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "base/cpu.h"
#include "base/half.h"

namespace lowbit {

std::vector<uint16_t> block_f16_rows(const uint16_t* bt, int64_t r, int64_t n) {
  const int64_t n_blocks = (n + kF16Block - 1) / kF16Block;
  std::vector<uint16_t> out(static_cast<size_t>(n_blocks * r * kF16Block), 0);
  for (int64_t j = 0; j < r; ++j)
    for (int64_t i = 0; i < n; ++i)
      out[(i / kF16Block * r + j) * kF16Block + i % kF16Block] = bt[j * n + i];
  return out;
}

void add_scaled_f16_blocks_ref(const float* s, const uint16_t* blocks, int64_t r, int64_t i0,
                               int64_t i1, float* y) {
  for (int64_t i = i0; i < i1; ++i) {
    const uint16_t* col = blocks + i / kF16Block * r * kF16Block + i % kF16Block;
    float acc = y[i];
    for (int64_t j = 0; j < r; ++j) acc = std::fma(s[j], f16_to_f32(col[j * kF16Block]), acc);
    y[i] = acc;
  }
}

namespace {

// kVec consecutive blocks from block k: two 8-float accumulators each; for every j they read
// kVec rows of 32 bytes, r·32 bytes apart, all inside the range's stream. AVX2 + F16C + FMA are
// in every build's baseline (ARCHITECTURE.md convention 4).
template <int kVec>
void add_blocks_avx2(const float* s, const uint16_t* blocks, int64_t r, int64_t k, float* y) {
  const uint16_t* base = blocks + k * r * kF16Block;
  float* out = y + k * kF16Block;
  __m256 acc[2 * kVec];
  for (int v = 0; v < 2 * kVec; ++v) acc[v] = _mm256_loadu_ps(out + 8 * v);
  for (int64_t j = 0; j < r; ++j) {
    const __m256 sj = _mm256_set1_ps(s[j]);
    for (int v = 0; v < kVec; ++v) {
      const uint16_t* row = base + (v * r + j) * kF16Block;
      const __m256 lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)));
      const __m256 hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8)));
      acc[2 * v] = _mm256_fmadd_ps(sj, lo, acc[2 * v]);
      acc[2 * v + 1] = _mm256_fmadd_ps(sj, hi, acc[2 * v + 1]);
    }
  }
  for (int v = 0; v < 2 * kVec; ++v) _mm256_storeu_ps(out + 8 * v, acc[v]);
}

}  // namespace

namespace detail {

void add_scaled_f16_blocks_avx2(const float* s, const uint16_t* blocks, int64_t r, int64_t k0,
                                int64_t k1, float* y) {
  int64_t k = k0;
  for (; k + 2 <= k1; k += 2) add_blocks_avx2<2>(s, blocks, r, k, y);
  for (; k < k1; ++k) add_blocks_avx2<1>(s, blocks, r, k, y);
}

bool runs_f16_blocks_avx512() {
  static const bool yes = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx512f && f.avx512vl;
  }();
  return yes;
}

}  // namespace detail

void add_scaled_f16_blocks(const float* s, const uint16_t* blocks, int64_t r, int64_t i0,
                           int64_t i1, float* y) {
  // The partial block at each end by the twin; whole blocks by the vector paths.
  const int64_t k0 = (i0 + kF16Block - 1) / kF16Block, k1 = i1 / kF16Block;
  if (k0 >= k1) {
    add_scaled_f16_blocks_ref(s, blocks, r, i0, i1, y);
    return;
  }
  add_scaled_f16_blocks_ref(s, blocks, r, i0, k0 * kF16Block, y);
  if (detail::runs_f16_blocks_avx512())
    detail::add_scaled_f16_blocks_avx512(s, blocks, r, k0, k1, y);
  else
    detail::add_scaled_f16_blocks_avx2(s, blocks, r, k0, k1, y);
  add_scaled_f16_blocks_ref(s, blocks, r, k1 * kF16Block, i1, y);
}

}  // namespace lowbit
