// Float-family kernels (F32, F16, BF16, FP8 E4M3), AVX2 + F16C. Lane r of every ymm is row r
// of an 8-row tile; each column step is one exact fp32 weight vector times a broadcast activation.
#include <immintrin.h>

#include <algorithm>

#include "kernels/simd_util.h"

namespace lowbit {

namespace {

// Local, so that no shared inline function is emitted from an ISA-specific source.
inline int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

constexpr int R = 8;
using Elem = FloatPacked::Elem;

template <Elem E>
constexpr int elem_bytes() {
  return E == Elem::F32 ? 4 : E == Elem::FP8 ? 1 : 2;
}

// 16 weights (one column of a row tile) as exact fp32 (FP8: e4m3/256, see pack_float.cpp).
template <Elem E>
inline __attribute__((always_inline)) __m256 load_w(const uint8_t* p) {
  if constexpr (E == Elem::F32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  if constexpr (E == Elem::F16)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if constexpr (E == Elem::BF16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  if constexpr (E == Elem::FP8) {
    // sign-extend, shift: sign lands in bit 15 (and 14, cleared), magnitude in bits 13..7.
    const __m128i h =
        _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))), 7);
    return _mm256_cvtph_ps(_mm_and_si128(h, _mm_set1_epi16(static_cast<short>(0xBF80))));
  }
}

inline __m256 load_scales256(const FloatPacked& w, int64_t slot) {
  __m256 s;
  switch (w.scale_store) {
    case ScaleStore::F16:
      s = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales.as<uint16_t>() + slot)));
      break;
    case ScaleStore::BF16:
      s = _mm256_castsi256_ps(_mm256_slli_epi32(
          _mm256_cvtepu16_epi32(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales.as<uint16_t>() + slot))),
          16));
      break;
    default:
      s = _mm256_loadu_ps(w.scales.as<float>() + slot);
  }
  return _mm256_mul_ps(s, _mm256_set1_ps(256.0f));
}

// FMA chain over columns [k0, k1) into acc for NR tiles × NT tokens.
template <Elem E, int NR, int NT>
inline __attribute__((always_inline)) void fma_cols(const uint8_t* const (&e)[NR], const float* x,
                                                    int64_t k0, int64_t k1, __m256 (&acc)[NR][NT]) {
  constexpr int eb = elem_bytes<E>();
  for (int64_t k = k0; k < k1; ++k) {
    for (int i = 0; i < NR; ++i) {
      const __m256 wv = load_w<E>(e[i] + k * R * eb);
      for (int t = 0; t < NT; ++t)
        acc[i][t] = _mm256_fmadd_ps(wv, _mm256_set1_ps(x[k * NT + t]), acc[i][t]);
    }
  }
}

template <Elem E, int NR, int NT>
inline __attribute__((always_inline)) void float_tile(const FloatPacked& w, const FloatActs& a,
                                                      int64_t tile, int64_t ttile,
                                                      __m256 (&acc)[NR][NT]) {
  constexpr int eb = elem_bytes<E>();
  const int64_t cols = w.cols;
  const uint8_t* e[NR];
  for (int i = 0; i < NR; ++i) e[i] = w.elems.data() + (tile + i) * cols * R * eb;
  const float* x = a.x + ttile * cols * NT;
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = _mm256_setzero_ps();
  if constexpr (E != Elem::FP8) {
    fma_cols<E, NR, NT>(e, x, 0, cols, acc);
  } else {
    for (int64_t g = 0; g < w.n_groups; ++g) {
      __m256 gacc[NR][NT];
      for (int i = 0; i < NR; ++i)
        for (int t = 0; t < NT; ++t) gacc[i][t] = _mm256_setzero_ps();
      fma_cols<E, NR, NT>(e, x, g * w.group_len, min64(cols, (g + 1) * w.group_len), gacc);
      for (int i = 0; i < NR; ++i) {
        const __m256 s = load_scales256(w, ((tile + i) * w.n_groups + g) * R);
        for (int t = 0; t < NT; ++t) acc[i][t] = _mm256_fmadd_ps(gacc[i][t], s, acc[i][t]);
      }
    }
  }
}

inline void store_rows(float* y, int64_t rows, int64_t tile, __m256 v) {
  const int64_t r0 = tile * R;
  if (r0 + R <= rows) {
    _mm256_storeu_ps(y + r0, v);
    return;
  }
  alignas(32) float tmp[R];
  _mm256_store_ps(tmp, v);
  for (int64_t r = r0; r < rows; ++r) y[r] = tmp[r - r0];
}

template <Elem E>
void float_run(const FloatPacked& w, const FloatActs& a, int64_t tile0, int64_t tile1, int64_t T,
               float* y) {
  if (a.nt == 1) {
    for (int64_t tile = tile0; tile < tile1;) {
      if (tile + 4 <= tile1) {
        __m256 out[4][1];
        float_tile<E, 4, 1>(w, a, tile, 0, out);
        for (int i = 0; i < 4; ++i) store_rows(y, w.rows, tile + i, out[i][0]);
        tile += 4;
      } else {
        __m256 out[1][1];
        float_tile<E, 1, 1>(w, a, tile, 0, out);
        store_rows(y, w.rows, tile, out[0][0]);
        tile += 1;
      }
    }
    return;
  }
  constexpr int NT = 4;
  constexpr int64_t chunk = kPrefillChunkTokens / NT;
  for (int64_t tt0 = 0; tt0 < a.tok_tiles; tt0 += chunk) {
    const int64_t tt1 = min64(a.tok_tiles, tt0 + chunk);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
      for (int64_t tt = tt0; tt < tt1; ++tt) {
        __m256 out[1][NT];
        float_tile<E, 1, NT>(w, a, tile, tt, out);
        for (int t = 0; t < NT && tt * NT + t < T; ++t)
          store_rows(y + (tt * NT + t) * w.rows, w.rows, tile, out[0][t]);
      }
    }
  }
}

}  // namespace

FloatKernel float_kernel_avx2(const FloatPacked& w) {
  switch (w.elem) {
    case Elem::F32:
      return float_run<Elem::F32>;
    case Elem::F16:
      return float_run<Elem::F16>;
    case Elem::BF16:
      return float_run<Elem::BF16>;
    default:
      return float_run<Elem::FP8>;
  }
}

}  // namespace lowbit
