// E8P kernel on the direct layout (packed_layout.h): AVX-512 + VNNI for the dot products, and
// VBMI, GFNI and BITALG to decode 16-bit codes in registers (only packed, hence only called,
// when e8p_direct_enabled()). Memory holds 2 bits per weight; the u values, zeros, activation
// blocks and float steps are exactly those of the integer family's E8P path, so results are
// bit-identical to the scalar twin.
//
// Decoding 32 codes (one zmm of words):
//   1. pattern -> magnitude bit planes: four 64-entry vpermt2w lookups, picked by bits 6 and 7;
//   2. the eighth sign from the parity rule (vpopcntw), the shift t spread over a byte;
//   3. vpunpck{l,h}wd pairs two codes per qword lane: bytes (signs, t, |y|=3/2, |y|=5/2) of
//      row L, then of row L + 8;
//   4. vgf2p8affineqb with the data as the 8×8 bit matrix and the constant byte 1 << j as the
//      vector transposes each qword's bits: output byte j gathers bit j of every byte, i.e.
//      coordinate j's 4 bits of row L + 8 in its low nibble and of row L in its high nibble;
//   5. vpermb maps each nibble to u.
// The products then run per qword lane (8 columns of one row: dword lanes 2L and 2L + 1) with
// activations broadcast 8 bytes at a time; pairs of dword lanes are summed at the end of each
// k-block into the 16-row order of the integer kernels.
#include <immintrin.h>

#include "kernels/int_avx512_tile.h"

namespace lowbit {

namespace {

constexpr int64_t kBlockBytes = 128;  // 64 codes: 16 rows × 4 chunks of 8 columns

struct Decoder {
  __m512i planes[8];  // E8pKernelTables::planes, 32 words per register
  __m512i nibble_u;
  __m512i select_bit;           // byte j of every qword: 1 << j
  __m512i pair_even, pair_odd;  // dword lanes 2r and 2r + 1 of (rows 0-7 | rows 8-15)
};

inline Decoder make_decoder() {
  const E8pKernelTables& t = e8p_kernel_tables();
  Decoder d;
  for (int i = 0; i < 8; ++i) d.planes[i] = _mm512_load_si512(t.planes + 32 * i);
  d.nibble_u = _mm512_load_si512(t.nibble_u);
  d.select_bit = _mm512_set1_epi64(static_cast<long long>(0x8040201008040201ULL));
  d.pair_even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  d.pair_odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return d;
}

// 32 codes (one half k-block) -> u of its first chunk for rows 0-7 (u[0]) and 8-15 (u[1]) and of
// its second chunk (u[2], u[3]); qword lane L is row L (L + 8), byte j column j of the chunk.
inline __attribute__((always_inline)) void decode_half(const Decoder& d, __m512i c,
                                                       __m512i (&u)[4]) {
  const __m512i r0 = _mm512_permutex2var_epi16(d.planes[0], c, d.planes[1]);
  const __m512i r1 = _mm512_permutex2var_epi16(d.planes[2], c, d.planes[3]);
  const __m512i r2 = _mm512_permutex2var_epi16(d.planes[4], c, d.planes[5]);
  const __m512i r3 = _mm512_permutex2var_epi16(d.planes[6], c, d.planes[7]);
  const __mmask32 bit6 = _mm512_test_epi16_mask(c, _mm512_set1_epi16(0x40));
  const __mmask32 bit7 = _mm512_test_epi16_mask(c, _mm512_set1_epi16(0x80));
  const __m512i planes = _mm512_mask_mov_epi16(_mm512_mask_mov_epi16(r0, bit6, r1), bit7,
                                               _mm512_mask_mov_epi16(r2, bit6, r3));
  // Signs of y_0..y_6 (code bits 8..14); y_7's makes #{j : negative XOR |y_j| = 3/2} even.
  const __m512i s7 = _mm512_and_si512(_mm512_srli_epi16(c, 8), _mm512_set1_epi16(0x7F));
  const __m512i odd =
      _mm512_ternarylogic_epi32(s7, planes, _mm512_set1_epi16(0xFF), 0x28);  // (a^b)&c
  const __m512i parity = _mm512_slli_epi16(_mm512_popcnt_epi16(odd), 7);
  const __m512i t_all = _mm512_srai_epi16(c, 15);  // the shift bit in all 16 bits
  __m512i signs = _mm512_ternarylogic_epi32(s7, parity, _mm512_set1_epi16(0x80), 0xF8);  // a|(b&c)
  signs =
      _mm512_ternarylogic_epi32(signs, t_all, _mm512_set1_epi16(static_cast<short>(0xFF00)), 0xF8);
  const __m512i pairs[2] = {_mm512_unpacklo_epi16(signs, planes),
                            _mm512_unpackhi_epi16(signs, planes)};
  for (int k = 0; k < 2; ++k) {
    const __m512i bits = _mm512_gf2p8affine_epi64_epi8(d.select_bit, pairs[k], 0);
    u[2 * k] = _mm512_permutexvar_epi8(_mm512_srli_epi16(bits, 4), d.nibble_u);
    u[2 * k + 1] = _mm512_permutexvar_epi8(bits, d.nibble_u);
  }
}

inline __m512i bcast64(const void* p) {
  long long v;
  __builtin_memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

// Decode (one token): NR row tiles from `tile`, decoded as they are multiplied; out[i] lane r =
// y[row r of tile + i].
template <int NR>
inline __attribute__((always_inline)) void e8p_matvec_tiles(const IntPacked& w, const IntActs& a,
                                                            const Decoder& dec, int64_t tile,
                                                            __m512 (&out)[NR]) {
  const int64_t nb = w.n_blocks, G = w.n_groups, bpg = w.blocks_per_group;
  const uint8_t* codes[NR];
  for (int i = 0; i < NR; ++i) codes[i] = w.codes.data() + (tile + i) * nb * kBlockBytes;
  __m512 acc[NR];
  for (int i = 0; i < NR; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m512 gacc[NR];
    for (int i = 0; i < NR; ++i) gacc[i] = _mm512_setzero_ps();
    const int64_t b_end = min64(nb, (g + 1) * bpg);
    for (int64_t b = g * bpg; b < b_end; ++b) {
      __m512i dlo[NR], dhi[NR];  // rows 0-7 and 8-15, two dword lanes (4 columns each) per row
      for (int i = 0; i < NR; ++i) dlo[i] = dhi[i] = _mm512_setzero_si512();
      const int8_t* xb = a.q + b * kBlock;
      static_for<2>([&](auto H) {
        const __m512i x0 = bcast64(xb + 16 * H.value), x1 = bcast64(xb + 16 * H.value + 8);
        for (int i = 0; i < NR; ++i) {
          __m512i u[4];
          decode_half(dec, _mm512_loadu_si512(codes[i] + b * kBlockBytes + 64 * H.value), u);
          dlo[i] = _mm512_dpbusd_epi32(dlo[i], u[0], x0);
          dhi[i] = _mm512_dpbusd_epi32(dhi[i], u[1], x0);
          dlo[i] = _mm512_dpbusd_epi32(dlo[i], u[2], x1);
          dhi[i] = _mm512_dpbusd_epi32(dhi[i], u[3], x1);
        }
      });
      const __m512 xs = _mm512_set1_ps(a.scale[b]);
      const __m512i neg = _mm512_set1_epi32(a.negsum[b]);  // −z·Σq
      for (int i = 0; i < NR; ++i) {
        const __m512i d = _mm512_add_epi32(
            _mm512_add_epi32(_mm512_permutex2var_epi32(dlo[i], dec.pair_even, dhi[i]),
                             _mm512_permutex2var_epi32(dlo[i], dec.pair_odd, dhi[i])),
            neg);
        gacc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), xs, gacc[i]);
      }
    }
    for (int i = 0; i < NR; ++i)
      acc[i] = _mm512_fmadd_ps(gacc[i], load_scales(w, ((tile + i) * G + g) * R), acc[i]);
  }
  for (int i = 0; i < NR; ++i) out[i] = acc[i];
}

// One k-block of a row tile's codes -> int_tile's 4-bit look-up layout (E8P's LUT layout: code
// q = u/2, w.lut maps q back to u): 4 vectors, byte 4r + i of vector m = q(row r, column 4m + i)
// | q(row r, column 4(m + 4) + i) << 4.
inline __attribute__((always_inline)) void decode_block_lut4(const Decoder& d, const uint8_t* blk,
                                                             uint8_t* out) {
  __m512i step[8];  // u of steps 0..7 (columns 4J..4J+3), lane r = row r
  static_for<2>([&](auto H) {
    __m512i u[4];
    decode_half(d, _mm512_loadu_si512(blk + 64 * H.value), u);
    for (int k = 0; k < 2; ++k) {  // chunk 2H + k: steps 4H + 2k and 4H + 2k + 1
      step[4 * H.value + 2 * k] = _mm512_permutex2var_epi32(u[2 * k], d.pair_even, u[2 * k + 1]);
      step[4 * H.value + 2 * k + 1] = _mm512_permutex2var_epi32(u[2 * k], d.pair_odd, u[2 * k + 1]);
    }
  });
  const __m512i low_nibble = _mm512_set1_epi8(0x0F);
  for (int m = 0; m < 4; ++m) {  // (A & C) | (B & ~C): imm 0xE4
    const __m512i v = _mm512_ternarylogic_epi32(
        _mm512_srli_epi16(step[m], 1), _mm512_slli_epi16(step[m + 4], 3), low_nibble, 0xE4);
    _mm512_storeu_si512(out + V * m, v);
  }
}

// Prefill: each row tile is decoded once per call into the calling thread's scratch (16 rows ×
// cols/2 bytes, L2-resident) and multiplied by every token tile with the integer kernels' 4-bit
// look-up row-tile kernel, so the decode costs ~1/T of the products.
void e8p_prefill(const IntPacked& w, const Decoder& dec, const IntActs& a, int64_t tile0,
                 int64_t tile1, int64_t T, float* y) {
  constexpr int kNt = 8;  // isa_traits(Avx512).prefill_nt
  const int64_t nb = w.n_blocks;
  uint8_t* lut4 = e8p_prefill_scratch(nb * 4 * V);
  for (int64_t tile = tile0; tile < tile1; ++tile) {
    for (int64_t b = 0; b < nb; ++b)
      decode_block_lut4(dec, w.codes.data() + (tile * nb + b) * kBlockBytes, lut4 + b * 4 * V);
    for (int64_t tt = 0; tt < a.tok_tiles; ++tt) {
      __m512 out[1][kNt];
      int_tile<4, true, 1, kNt>(w, lut4, a, tile, tt, out);
      for (int t = 0; t < kNt && tt * kNt + t < T; ++t)
        store_rows(y + (tt * kNt + t) * w.rows, w.rows, tile, out[0][t]);
    }
  }
}

void e8p_run(const IntPacked& w, const IntActs& a, int64_t tile0, int64_t tile1, int64_t T,
             float* y) {
  const Decoder dec = make_decoder();
  if (a.nt == 1) {  // decode: two row tiles at a time for independent dependency chains
    constexpr int NR = 2;
    for (int64_t tile = tile0; tile < tile1;) {
      if (tile + NR <= tile1) {
        __m512 out[NR];
        e8p_matvec_tiles<NR>(w, a, dec, tile, out);
        for (int i = 0; i < NR; ++i) store_rows(y, w.rows, tile + i, out[i]);
        tile += NR;
      } else {
        __m512 out[1];
        e8p_matvec_tiles<1>(w, a, dec, tile, out);
        store_rows(y, w.rows, tile, out[0]);
        tile += 1;
      }
    }
    return;
  }
  e8p_prefill(w, dec, a, tile0, tile1, T, y);
}

}  // namespace

IntKernel e8p_kernel_avx512(const IntPacked&) {
  return e8p_run;
}

}  // namespace lowbit
