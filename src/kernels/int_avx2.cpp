// Integer-family kernels, AVX2 (the project's baseline ISA). Lane r of every ymm is row r of an
// 8-row tile. maddubs multiplies u8 codes by s8 activations into int16 pairs; "wide" layouts
// (u up to 255) store u − 128 and use the sign trick so no pair can saturate; narrow layouts add
// up to kS steps of int16 pairs before widening, with kS chosen so no int16 sum can overflow.
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
constexpr int V = 4 * R;

template <int kBits, int J>
inline __attribute__((always_inline)) __m256i unpack_step(const uint8_t* blk) {
  __m256i u = _mm256_setzero_si256();
  static_for<planes_for(kBits).n>([&](auto PI) {
    constexpr Plane pl = planes_for(kBits).planes[PI.value];
    constexpr int m = J % pl.p, K = J / pl.p, sh = pl.p * K - pl.off;
    constexpr int base = plane_base(kBits, PI.value);
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + V * (base + m)));
    if constexpr (sh > 0) v = _mm256_srli_epi16(v, sh);
    if constexpr (sh < 0) v = _mm256_slli_epi16(v, -sh);
    if constexpr (pl.p != 8)
      v = _mm256_and_si256(v, _mm256_set1_epi8(static_cast<char>(((1 << pl.p) - 1) << pl.off)));
    if constexpr (PI.value == 0)
      u = v;
    else
      u = _mm256_or_si256(u, v);
  });
  return u;
}

inline __m256 load_scales(const IntPacked& w, int64_t slot) {
  switch (w.scale_store) {
    case ScaleStore::F16:
      return _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales.as<uint16_t>() + slot)));
    case ScaleStore::BF16:
      return _mm256_castsi256_ps(_mm256_slli_epi32(
          _mm256_cvtepu16_epi32(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales.as<uint16_t>() + slot))),
          16));
    default:
      return _mm256_loadu_ps(w.scales.as<float>() + slot);
  }
}

inline __m256i bcast32(const void* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

template <int kBits, bool kLut, bool kWide, int kS, int NR, int NT>
inline __attribute__((always_inline)) void int_tile(const IntPacked& w, const IntActs& a,
                                                    int64_t tile, int64_t ttile,
                                                    __m256 (&out)[NR][NT]) {
  const int64_t nb = w.n_blocks, G = w.n_groups, bpg = w.blocks_per_group;
  constexpr int64_t BB = V * kBits;
  const uint8_t* codes[NR];
  for (int i = 0; i < NR; ++i) codes[i] = w.codes.data() + (tile + i) * nb * BB;
  const int8_t* aq = a.q + ttile * nb * NT * kBlock;
  const float* as = a.scale + ttile * nb * NT;
  const int32_t* an = a.negsum + ttile * nb * NT;
  __m256i lut = _mm256_setzero_si256();
  if constexpr (kLut)
    lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.lut)));
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NR][NT];
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) acc[i][t] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m256i z[NR];
    if (w.asym) {
      for (int i = 0; i < NR; ++i) {
        const __m128i zb = _mm_loadl_epi64(
            reinterpret_cast<const __m128i*>(w.zeros.data() + ((tile + i) * G + g) * R));
        z[i] = kWide ? _mm256_cvtepi8_epi32(zb) : _mm256_cvtepu8_epi32(zb);
      }
    }
    __m256 gacc[NR][NT];
    for (int i = 0; i < NR; ++i)
      for (int t = 0; t < NT; ++t) gacc[i][t] = _mm256_setzero_ps();
    const int64_t b_end = min64(nb, (g + 1) * bpg);
    for (int64_t b = g * bpg; b < b_end; ++b) {
      __m256i d[NR][NT], p16[NR][NT];
      for (int i = 0; i < NR; ++i)
        for (int t = 0; t < NT; ++t)
          d[i][t] = w.asym ? _mm256_madd_epi16(z[i], _mm256_set1_epi32(an[b * NT + t]))
                           : _mm256_set1_epi32(an[b * NT + t]);
      const int8_t* xb = aq + b * NT * kBlock;
      static_for<8>([&](auto J) {
        for (int i = 0; i < NR; ++i) {
          __m256i u = unpack_step<kBits, J.value>(codes[i] + b * BB);
          if constexpr (kLut) u = _mm256_shuffle_epi8(lut, u);
          const __m256i ua = kWide ? _mm256_abs_epi8(u) : u;
          for (int t = 0; t < NT; ++t) {
            __m256i x = bcast32(xb + t * kBlock + 4 * J.value);
            if constexpr (kWide) x = _mm256_sign_epi8(x, u);
            const __m256i m = _mm256_maddubs_epi16(ua, x);
            if constexpr (J.value % kS == 0)
              p16[i][t] = m;
            else
              p16[i][t] = _mm256_add_epi16(p16[i][t], m);
            if constexpr (J.value % kS == kS - 1 || J.value == 7)
              d[i][t] = _mm256_add_epi32(d[i][t], _mm256_madd_epi16(p16[i][t], ones));
          }
        }
      });
      for (int t = 0; t < NT; ++t) {
        const __m256 xs = _mm256_set1_ps(as[b * NT + t]);
        for (int i = 0; i < NR; ++i)
          gacc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d[i][t]), xs, gacc[i][t]);
      }
    }
    for (int i = 0; i < NR; ++i) {
      const __m256 s = load_scales(w, ((tile + i) * G + g) * R);
      for (int t = 0; t < NT; ++t) acc[i][t] = _mm256_fmadd_ps(gacc[i][t], s, acc[i][t]);
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int t = 0; t < NT; ++t) out[i][t] = acc[i][t];
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

template <int kBits, bool kLut, bool kWide, int kS>
void int_run(const IntPacked& w, const IntActs& a, int64_t tile0, int64_t tile1, int64_t T,
             float* y) {
  if (a.nt == 1) {
    for (int64_t tile = tile0; tile < tile1;) {
      if (tile + 4 <= tile1) {
        __m256 out[4][1];
        int_tile<kBits, kLut, kWide, kS, 4, 1>(w, a, tile, 0, out);
        for (int i = 0; i < 4; ++i) store_rows(y, w.rows, tile + i, out[i][0]);
        tile += 4;
      } else {
        __m256 out[1][1];
        int_tile<kBits, kLut, kWide, kS, 1, 1>(w, a, tile, 0, out);
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
        int_tile<kBits, kLut, kWide, kS, 1, NT>(w, a, tile, tt, out);
        for (int t = 0; t < NT && tt * NT + t < T; ++t)
          store_rows(y + (tt * NT + t) * w.rows, w.rows, tile, out[0][t]);
      }
    }
  }
}

// Steps whose int16 pair sums can be added without overflow: each pair is ≤ 2·max_u·127.
constexpr int steps_for(int max_u) {
  return std::clamp(32767 / (2 * max_u * 127), 1, 8);
}

}  // namespace

IntKernel int_kernel_avx2(const IntPacked& w) {
  if (w.lut4) {
    if (w.wide) return int_run<4, true, true, 1>;
    const int mx = *std::max_element(w.lut, w.lut + 16);
    if (mx <= 24) return int_run<4, true, false, steps_for(24)>;
    return int_run<4, true, false, 1>;
  }
  switch (w.bits) {
    case 2:
      return int_run<2, false, false, steps_for(3)>;
    case 3:
      return int_run<3, false, false, steps_for(7)>;
    case 4:
      return int_run<4, false, false, steps_for(15)>;
    case 5:
      return int_run<5, false, false, steps_for(31)>;
    case 6:
      return int_run<6, false, false, steps_for(63)>;
    case 7:
      return int_run<7, false, false, steps_for(127)>;
    default:
      return w.wide ? int_run<8, false, true, 1> : int_run<8, false, false, 1>;
  }
}

}  // namespace lowbit
