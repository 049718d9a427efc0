// Integer-family kernels, AVX-512 + VNNI (compiled with -mavx512*; only called when
// cpu_features() reports AVX-512F/BW/VL/DQ/VNNI). Lane r of every zmm is row r of a 16-row tile;
// vpdpbusd multiplies 4 codes of each row (u8) by the same 4 activations (s8, broadcast).
#include <immintrin.h>

#include <algorithm>

#include "kernels/simd_util.h"

namespace lowbit {

namespace {

// Local, so that no shared inline function is emitted from an ISA-specific source.
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
template <int kBits, bool kLut, int NR, int NT>
inline __attribute__((always_inline)) void int_tile(const IntPacked& w, const IntActs& a,
                                                    int64_t tile, int64_t ttile,
                                                    __m512 (&out)[NR][NT]) {
  const int64_t nb = w.n_blocks, G = w.n_groups, bpg = w.blocks_per_group;
  constexpr int64_t BB = V * kBits;
  const uint8_t* codes[NR];
  for (int i = 0; i < NR; ++i) codes[i] = w.codes.data() + (tile + i) * nb * BB;
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

template <int kBits, bool kLut>
void int_run(const IntPacked& w, const IntActs& a, int64_t tile0, int64_t tile1, int64_t T,
             float* y) {
  if (a.nt == 1) {  // decode: 4 row tiles at a time for independent dependency chains
    for (int64_t tile = tile0; tile < tile1;) {
      if (tile + 4 <= tile1) {
        __m512 out[4][1];
        int_tile<kBits, kLut, 4, 1>(w, a, tile, 0, out);
        for (int i = 0; i < 4; ++i) store_rows(y, w.rows, tile + i, out[i][0]);
        tile += 4;
      } else {
        __m512 out[1][1];
        int_tile<kBits, kLut, 1, 1>(w, a, tile, 0, out);
        store_rows(y, w.rows, tile, out[0][0]);
        tile += 1;
      }
    }
    return;
  }
  constexpr int NT = 8;
  constexpr int64_t chunk = kPrefillChunkTokens / NT;
  for (int64_t tt0 = 0; tt0 < a.tok_tiles; tt0 += chunk) {
    const int64_t tt1 = min64(a.tok_tiles, tt0 + chunk);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
      for (int64_t tt = tt0; tt < tt1; ++tt) {
        __m512 out[1][NT];
        int_tile<kBits, kLut, 1, NT>(w, a, tile, tt, out);
        for (int t = 0; t < NT && tt * NT + t < T; ++t)
          store_rows(y + (tt * NT + t) * w.rows, w.rows, tile, out[0][t]);
      }
    }
  }
}

}  // namespace

IntKernel int_kernel_avx512(const IntPacked& w) {
  if (w.lut4) return int_run<4, true>;
  switch (w.bits) {
    case 2:
      return int_run<2, false>;
    case 3:
      return int_run<3, false>;
    case 4:
      return int_run<4, false>;
    case 5:
      return int_run<5, false>;
    case 6:
      return int_run<6, false>;
    case 7:
      return int_run<7, false>;
    default:
      return int_run<8, false>;
  }
}

}  // namespace lowbit
