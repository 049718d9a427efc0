// Internal: the AVX-512 + VNNI integer-family row-tile kernel, shared by the sources compiled
// for AVX-512 (int_avx512.cpp, e8p_avx512.cpp). Everything here has internal linkage and is
// always inlined: an AVX-512 function must never be emitted where a non-AVX-512 caller could
// link to it. Lane r of every zmm is row r of a 16-row tile; vpdpbusd multiplies 4 codes of
// each row (u8) by the same 4 activations (s8, broadcast).
#pragma once

#include <immintrin.h>

#include "kernels/simd_util.h"

#ifndef __AVX512VNNI__
#error "int_avx512_tile.h is for sources compiled with AVX-512 VNNI"
#endif

namespace lowbit {
namespace {

inline int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

constexpr int R = 16;
constexpr int V = 4 * R;  // bytes per step vector

// Step J (columns 4J..4J+3 of the block) of a block's codes as u8 per byte.
template <int kBits, int J>
inline __attribute__((always_inline)) __m512i unpack_step(const uint8_t* blk) {
  __m512i u = _mm512_setzero_si512();
  static_for<planes_for(kBits).n>([&](auto PI) {
    constexpr Plane pl = planes_for(kBits).planes[PI.value];
    constexpr int m = J % pl.p, K = J / pl.p, sh = pl.p * K - pl.off;
    constexpr int base = plane_base(kBits, PI.value);
    __m512i v = _mm512_loadu_si512(blk + V * (base + m));
    if constexpr (sh > 0) v = _mm512_srli_epi16(v, sh);
    if constexpr (sh < 0) v = _mm512_slli_epi16(v, -sh);
    if constexpr (pl.p != 8)
      v = _mm512_and_si512(v, _mm512_set1_epi8(static_cast<char>(((1 << pl.p) - 1) << pl.off)));
    if constexpr (PI.value == 0)
      u = v;
    else
      u = _mm512_or_si512(u, v);
  });
  return u;
}

inline __m512 load_scales(const IntPacked& w, int64_t slot) {
  switch (w.scale_store) {
    case ScaleStore::F16:
      return _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.scales.as<uint16_t>() + slot)));
    case ScaleStore::BF16:
      return _mm512_castsi512_ps(_mm512_slli_epi32(
          _mm512_cvtepu16_epi32(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.scales.as<uint16_t>() + slot))),
          16));
    default:
      return _mm512_loadu_ps(w.scales.as<float>() + slot);
  }
}

inline __m512i bcast32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// NR row tiles from `tile` × NT tokens of token tile `ttile`: out[i][t] lane r = y[t, row r].
// tile_codes: the codes of row tile `tile` in w's layout with kBits (the next tiles follow);
// everything else (scales, zeros, shape) comes from w.
template <int kBits, bool kLut, int NR, int NT>
inline __attribute__((always_inline)) void int_tile(const IntPacked& w, const uint8_t* tile_codes,
                                                    const IntActs& a, int64_t tile, int64_t ttile,
                                                    __m512 (&out)[NR][NT]) {
  const int64_t nb = w.n_blocks, G = w.n_groups, bpg = w.blocks_per_group;
  constexpr int64_t BB = V * kBits;
  const uint8_t* codes[NR];
  for (int i = 0; i < NR; ++i) codes[i] = tile_codes + i * nb * BB;
  const int8_t* aq = a.q + ttile * nb * NT * kBlock;
  const float* as = a.scale + ttile * nb * NT;
  const int32_t* an = a.negsum + ttile * nb * NT;
  __m512i lut = _mm512_setzero_si512();
  if constexpr (kLut)
    lut = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.lut)));
  __m512 acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m512i z[NR];
    if (w.asym)
      for (int i = 0; i < NR; ++i)
        z[i] = _mm512_cvtepu8_epi32(_mm_loadu_si128(
            reinterpret_cast<const __m128i*>(w.zeros.data() + ((tile + i) * G + g) * R)));
    __m512 gacc[NR][NT];
    for (int i = 0; i < NR; ++i)
      for (int t = 0; t < NT; ++t) gacc[i][t] = _mm512_setzero_ps();
    const int64_t b_end = min64(nb, (g + 1) * bpg);
    for (int64_t b = g * bpg; b < b_end; ++b) {
      __m512i d[NR][NT];
      for (int i = 0; i < NR; ++i)
        for (int t = 0; t < NT; ++t)  // d starts at −z·Σq (asym: negsum's high half is 0)
          d[i][t] = w.asym ? _mm512_dpwssd_epi32(_mm512_setzero_si512(), z[i],
                                                 _mm512_set1_epi32(an[b * NT + t]))
                           : _mm512_set1_epi32(an[b * NT + t]);
      const int8_t* xb = aq + b * NT * kBlock;
      static_for<8>([&](auto J) {
        for (int i = 0; i < NR; ++i) {
          __m512i u = unpack_step<kBits, J.value>(codes[i] + b * BB);
          if constexpr (kLut) u = _mm512_shuffle_epi8(lut, u);
          for (int t = 0; t < NT; ++t)
            d[i][t] = _mm512_dpbusd_epi32(d[i][t], u, bcast32(xb + t * kBlock + 4 * J.value));
        }
      });
      for (int t = 0; t < NT; ++t) {
        const __m512 xs = _mm512_set1_ps(as[b * NT + t]);
        for (int i = 0; i < NR; ++i)
          gacc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[i][t]), xs, gacc[i][t]);
      }
    }
    for (int i = 0; i < NR; ++i) {
      const __m512 s = load_scales(w, ((tile + i) * G + g) * R);
      for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_fmadd_ps(gacc[i][t], s, acc[i][t]);
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) out[i][t] = acc[i][t];
}

inline void store_rows(float* y, int64_t rows, int64_t tile, __m512 v) {
  const int64_t r0 = tile * R;
  if (r0 + R <= rows)
    _mm512_storeu_ps(y + r0, v);
  else
    _mm512_mask_storeu_ps(y + r0, static_cast<__mmask16>((1u << (rows - r0)) - 1u), v);
}

}  // namespace
}  // namespace lowbit
