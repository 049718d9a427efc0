// The block layouts of ggml's quantized tensor types, as one description per type: how a block
// splits into sub-blocks, where each element's code lives, and which affine (or code book)
// grid the block's header defines for every sub-block. The GGUF reader decodes with it
// (io/tensor.cpp), the GGUF exporter packs its chosen codes with it (export/ggml_blocks.h),
// and calibrated export runs GPTQ against the grids it reports. Written from the published
// format descriptions (docs/FORMAT.md "Tensor encodings"); all values little-endian.
//
// Every element has an unsigned code q in [0, qmax] and a value
//     value = step * (q - zero) - min          (affine types)
//     value = step * codebook[q]               (IQ4_NL, IQ4_XS: non-uniform code book)
// where step and min are per sub-block (decoded from the block header) and zero is per type:
//
//   type    elems bytes sub qmax zero  header                        step, min
//   Q4_0    32    18    32  15   8     fp16 d                        d, 0
//   Q5_0    32    22    32  31   16    fp16 d, u32 qh                d, 0
//   Q5_1    32    24    32  31   0     fp16 d, fp16 m, u32 qh        d, -m
//   Q8_0    32    34    32  255  128   fp16 d (codes are int8 + 128) d, 0
//   IQ4_NL  32    18    32  15   -     fp16 d                        d (code book kIq4NlValues)
//   Q3_K    256   110   16  7    4     hmask[32] qs[64] sc[12] fp16 d   d * (sc_j - 32), 0
//   Q4_K    256   144   32  15   0     fp16 d, dmin, sc[12], qs[128]    d * sc_j, dmin * m_j
//   Q5_K    256   176   32  31   0     fp16 d, dmin, sc[12], qh[32], qs[128]   as Q4_K
//   Q6_K    256   210   16  63   32    ql[128] qh[64] int8 sc[16] fp16 d       d * sc_j, 0
//   Q2_K    256   84    16  3    0     sc[16] qs[64] fp16 d, dmin    d * (sc_j & 15),
//                                                                     dmin * (sc_j >> 4)
//   IQ4_XS  256   136   32  15   -     fp16 d, u16 sh, sl[4], qs[128]   d * (ls_j - 32) (book)
//   TQ1_0   256   54    256 2    1     qs[48] qh[4] fp16 d           d, 0 (base-3 digits)
//   TQ2_0   256   66    256 3    1     qs[64] fp16 d                 d, 0 (code 3 gives 2d)
//
// Code positions (e = element index within the block):
//   Q4_0 / IQ4_NL / Q5_0 / Q5_1: low 4 bits in nibbles of qs[16]: e < 16 low nibble of qs[e],
//     e >= 16 high nibble of qs[e - 16]; Q5_*: bit 4 is bit e of the little-endian u32 qh.
//   Q8_0: int8 at byte 2 + e.
//   Q4_K: e = 64c + 32h + l: nibble h (0 low, 1 high) of qs[32c + l].
//   Q5_K: low 4 bits as Q4_K; bit 4 is bit (e / 32) of qh[e % 32].
//   Q3_K: e = 128h + 32k + l: low 2 bits are bits 2k..2k+1 of qs[32h + l]; bit 2 is bit (e / 32)
//     of hmask[e % 32].
//   Q6_K: e = 128h + 32k + l: low 4 bits in nibble (k >= 2) of ql[64h + 32 (k & 1) + l]; bits
//     4..5 are bits 2k..2k+1 of qh[32h + l].
//   Q2_K / TQ2_0: e = 128h + 32k + l: bits 2k..2k+1 of qs[32h + l] (as Q3_K's low bits).
//   IQ4_XS: sub-block j (elements 32j..32j+31) is laid out as an IQ4_NL block's nibbles in
//     qs[16j .. 16j + 15].
//   TQ1_0: qs[48] and qh[4] hold base-3 digits: byte = ceil(256 v / 243) for
//     v = t0·81 + t1·27 + t2·9 + t3·3 + t4, and digit n is
//     floor(3 ((byte · 3^n) mod 256) / 256) (always 0..2). e < 160: digit e / 32 of
//     qs[e % 32]; e < 240: digit (e - 160) / 16 of qs[32 + (e - 160) % 16]; else digit
//     (e - 240) / 4 of qh[(e - 240) % 4] (4 digits, t4 = 0).
// Sub-block scales: Q4_K / Q5_K pack 8 six-bit scales sc_j and mins m_j in 12 bytes: j < 4:
//   sc = s[j] & 63, m = s[j + 4] & 63; j >= 4: sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4,
//   m = (s[j + 4] >> 4) | (s[j] >> 6) << 4. Q3_K packs 16 six-bit scales in 12 bytes: the low
//   4 bits of scale j are the low (j < 8) or high (j >= 8) nibble of s[j % 8], its top 2 bits are
//   bits 2 (j / 4)..+1 of s[8 + j % 4]. Q6_K: int8 sc[16], one per 16 elements. Q2_K: one byte
//   per sub-block of 16, scale in the low nibble, min in the high one. IQ4_XS: 8 six-bit
//   scales ls_j: low 4 bits in nibble j % 2 of sl[j / 2], top 2 bits at bits 2j..2j+1 of the
//   little-endian u16 sh.
// All of these fit the grid description, so the reader, pack/unpack and nearest-code rule need
// no per-type decode path beyond the header and code positions. (The IQ1_*/IQ2_*/IQ3_* types
// do not: their codes index lattice tables of 8-dimensional points.)
#pragma once

#include <cstdint>

#include "io/tensor.h"

namespace lowbit {

// The IQ4_NL code book (ascending); IQ4_XS uses it too.
inline constexpr int8_t kIq4NlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

struct GgmlBlockLayout {
  int64_t elems = 0;  // elements per block
  int64_t bytes = 0;  // bytes per block
  int64_t sub = 0;    // elements per sub-block (one step/min each)
  int qmax = 0;       // codes are 0 .. qmax
  int zero = 0;       // affine types: the code of value -min
  const int8_t* codebook = nullptr;  // IQ4_NL, IQ4_XS: kIq4NlValues
};

// The grid of one sub-block (see above).
struct GgmlSubGrid {
  float step = 0, min = 0;
};

// True for the ggml block types described here (Q8_0, Q4_0, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K, IQ4_XS, TQ1_0, TQ2_0); false for F32 / F16 / BF16.
bool is_ggml_block_type(DType t);

// The layout of a block type (asserted).
const GgmlBlockLayout& ggml_block_layout(DType t);

// The grids of the sub-blocks of one block, from its header: grids[elems / sub].
void ggml_block_grids(DType t, const uint8_t* block, GgmlSubGrid* grids);

// The value of code q on grid g of type t (the formula above, evaluated as llama.cpp's
// dequantization does: step * (q - zero) - min, or step * codebook[q]).
inline float ggml_code_value(const GgmlBlockLayout& l, const GgmlSubGrid& g, int q) {
  if (l.codebook) return g.step * static_cast<float>(l.codebook[q]);
  return g.step * static_cast<float>(q - l.zero) - g.min;
}

// The code of the grid point nearest to x. Affine: clamp(nearbyint((x + min) / step) + zero,
// 0, qmax) (ties to even), `zero` when step is 0 or the quotient is NaN. IQ4_NL: the code book entry nearest to
// x / step (the lower one on ties), the code of 1 (value ~0) when step is 0.
uint8_t ggml_nearest_code(const GgmlBlockLayout& l, const GgmlSubGrid& g, float x);

// The codes of one block, codes[elems], each in [0, qmax].
void ggml_unpack_codes(DType t, const uint8_t* block, uint8_t* codes);

// Writes codes[elems] (each in [0, qmax]) into a block whose header is already set; every
// code bit is overwritten, the header bytes are kept.
void ggml_pack_codes(DType t, uint8_t* block, const uint8_t* codes);

// Decodes one block to y[elems].
void ggml_dequantize_block(DType t, const uint8_t* block, float* y);

}  // namespace lowbit
