#include "kernels/activations.h"

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "base/parallel.h"

namespace lowbit {

// Numerics shared by both versions: amax exact; d = amax / 127 (one rounding); id = 1 / d
// (one rounding, 0 when d == 0); q = x · id rounded half-to-even (|q| ≤ 127 for finite x).
// Non-finite activations (a model whose weights overflow fp32) must not be undefined behaviour:
// as vcvtps2dq does, a NaN or out-of-range x·id converts to INT32_MIN, q saturates to [-128, 127]
// and the sum wraps modulo 2^32; the result is then NaN/inf, caught above the kernels.
void quantize_block_ref(const float* x, int n, int8_t* q, float* d, int32_t* sum) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float dd = amax / 127.0f;
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  uint32_t s = 0;
  for (int i = 0; i < kBlock; ++i) {
    const float r = i < n ? x[i] * id : 0.0f;
    const int32_t v = r >= -2147483648.0f && r < 2147483648.0f ? static_cast<int32_t>(std::nearbyint(r)) : INT32_MIN;
    q[i] = static_cast<int8_t>(std::clamp(v, -128, 127));
    s += static_cast<uint32_t>(v);
  }
  *d = dd;
  *sum = static_cast<int32_t>(s);
}

void quantize_block_avx2(const float* x, int n, int8_t* q, float* d, int32_t* sum) {
  alignas(32) float pad[kBlock];
  if (n < kBlock) {
    std::memset(pad, 0, sizeof(pad));
    std::memcpy(pad, x, sizeof(float) * n);
    x = pad;
  }
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 mx = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float amax = _mm_cvtss_f32(m4);
  const float dd = amax / 127.0f;
  const float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  __m256i iv[4];
  __m256i s = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) {
    iv[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], vid));  // MXCSR default: round half even
    s = _mm256_add_epi32(s, iv[i]);
  }
  // Pack 32 int32 -> 32 int8 (no saturation: |q| ≤ 127); packs interleave 128-bit lanes.
  const __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]);
  const __m256i p23 = _mm256_packs_epi32(iv[2], iv[3]);
  __m256i p = _mm256_packs_epi16(p01, p23);
  p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), p);
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
  *d = dd;
  *sum = _mm_cvtsi128_si32(s4);
}

IntActs quantize_acts(const IntPacked& w, const float* x, int64_t T, int nt, bool simd,
                      IntActBuffer& buf) {
  IntActs a;
  a.nt = nt;
  a.tok_tiles = (T + nt - 1) / nt;
  a.n_blocks = w.n_blocks;
  const int64_t slots = a.tok_tiles * w.n_blocks * nt;
  if (static_cast<int64_t>(buf.q.size()) < slots * kBlock) buf.q.resize(slots * kBlock);
  if (static_cast<int64_t>(buf.scale.size()) < slots) buf.scale.resize(slots);
  if (static_cast<int64_t>(buf.negsum.size()) < slots) buf.negsum.resize(slots);
  int8_t* q = buf.q.data();
  float* sc = buf.scale.data();
  int32_t* ns = buf.negsum.data();
  const auto quant = simd ? quantize_block_avx2 : quantize_block_ref;
  const int64_t bpg = w.blocks_per_group, glen = w.group_len, cols = w.cols;
  const float m = w.act_mult;
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t tile = t / nt, lane = t % nt;
      for (int64_t b = 0; b < w.n_blocks; ++b) {
        const int64_t slot = (tile * w.n_blocks + b) * nt + lane;
        int8_t* qb = q + slot * kBlock;
        if (t >= T) {  // padding token
          std::memset(qb, 0, kBlock);
          sc[slot] = 0.0f;
          ns[slot] = 0;
          continue;
        }
        const int64_t g = b / bpg;
        const int64_t c0 = g * glen + (b - g * bpg) * kBlock;
        const int64_t gend = std::min(cols, (g + 1) * glen);
        const int n = static_cast<int>(std::min<int64_t>(kBlock, gend - c0));
        float d;
        int32_t s;
        quant(x + t * cols + c0, n, qb, &d, &s);
        sc[slot] = m == 1.0f ? d : d * m;
        // Wrapping arithmetic, as in the SIMD dot products: non-finite inputs make s INT32_MIN
        // (the forward reports their non-finite logits later).
        const uint32_t us = static_cast<uint32_t>(s);
        ns[slot] = w.asym ? static_cast<int32_t>(static_cast<uint16_t>(0u - us))
                          : static_cast<int32_t>(0u - static_cast<uint32_t>(w.const_zero) * us);
      }
    }
  };
  const int64_t padded = a.tok_tiles * nt;
  if (padded * w.cols < (1 << 16))
    run(0, padded);
  else
    parallel_for(padded, run);
  a.q = q;
  a.scale = sc;
  a.negsum = ns;
  return a;
}

FloatActs tile_float_acts(const float* x, int64_t T, int64_t cols, int nt,
                          std::vector<float>& buf) {
  FloatActs a;
  a.nt = nt;
  a.tok_tiles = (T + nt - 1) / nt;
  if (nt == 1) {
    a.x = x;
    return a;
  }
  const int64_t n = a.tok_tiles * cols * nt;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(n);
  float* out = buf.data();
  for (int64_t tile = 0; tile < a.tok_tiles; ++tile) {
    float* o = out + tile * cols * nt;
    for (int lane = 0; lane < nt; ++lane) {
      const int64_t t = tile * nt + lane;
      if (t < T) {
        const float* xr = x + t * cols;
        for (int64_t k = 0; k < cols; ++k) o[k * nt + lane] = xr[k];
      } else {
        for (int64_t k = 0; k < cols; ++k) o[k * nt + lane] = 0.0f;
      }
    }
  }
  a.x = out;
  return a;
}

}  // namespace lowbit
