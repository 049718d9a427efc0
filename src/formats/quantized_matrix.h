// QuantizedMatrix: a weight matrix [rows, cols] in one QuantSpec, in the documented storage
// layout that the .lowbit file keeps byte for byte (docs/FORMAT.md). Kernels may repack it at
// load into whatever layout they prefer; this is the interchange form.
//
// Layout (all little-endian, row-major):
//   codes  [rows, row_code_bytes()]  each row's codes bit-packed LSB-first (code j of the row
//                                    occupies bits [j*bits, (j+1)*bits) of the row's bytes);
//                                    every row starts on a byte boundary.
//   scales [rows, groups_per_row()]  fp16 or bf16 bit patterns (absent when double_quant)
//   zeros  [rows, groups_per_row()]  uint8 integer zero-points (Int with asym only)
//   double quant (double_quant): the rows*groups scales s_i, in row-major order, are cut into
//   blocks of 256; block b stores fp32 dq_scale[b] and dq_offset[b] and uint8 scale_codes[i],
//   with s_i = dq_offset[b] + dq_scale[b] * scale_codes[i] (computed as one fmaf: see
//   dq_decode_scale in double_quant.h).
//
// Value of weight (r, c), group g = c / group_len, code q:
//   Int sym:   scale * (q - 2^(bits-1))               q in [0, 2^bits - 1]; scale may be < 0
//   Int asym:  scale * (q - zero)                     q, zero in [0, 2^bits - 1]
//   NF4:       scale * kNf4[q]                        (scale = group absmax)
//   FP4:       scale * e2m1(q)                        (e2m1 in {0, .5, 1, 1.5, 2, 3, 4, 6} · ±1)
//   FP8:       scale * e4m3(q)                        (finite E4M3, max 448, no inf)
//   Ternary:   scale * (q - 1)                        q in {0, 1, 2}
// F32/F16/BF16 matrices store their elements in `codes` as plain little-endian values.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/codec.h"
#include "formats/quant_spec.h"

namespace lowbit {

struct QuantizedMatrix {
  QuantSpec spec;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;        // [rows, row_code_bytes()]
  std::vector<uint16_t> scales;      // [rows, groups_per_row()]  fp16/bf16 bits
  std::vector<uint8_t> zeros;        // [rows, groups_per_row()]  asym Int only
  std::vector<uint8_t> scale_codes;  // [rows * groups_per_row()] double quant only
  std::vector<float> dq_scale, dq_offset;  // [ceil(rows * groups / 256)] double quant only

  int64_t group_len() const { return spec.group_len(cols); }
  int64_t groups_per_row() const { return (cols + group_len() - 1) / group_len(); }
  int64_t row_code_bytes() const { return (cols * spec.bits + 7) / 8; }
  // Exact storage size in bytes (codes + scales + zeros + double-quant parts).
  int64_t storage_bytes() const;
  // storage_bytes() * 8 / (rows * cols)
  double bits_per_weight() const;
};

// storage_bytes() of a [rows, cols] matrix in `spec`, without building one (for planning).
int64_t storage_bytes(const QuantSpec& spec, int64_t rows, int64_t cols);

// ---- Building (quantizers) ----------------------------------------------------------------
// A [rows, cols] matrix in `spec` with every vector allocated to its documented size and zeroed.
// spec must be valid (check_quant_spec), rows and cols >= 1.
QuantizedMatrix make_quantized_matrix(const QuantSpec& spec, int64_t rows, int64_t cols);

// Stores group g of `row`'s parameters (the scale's fp16/bf16 bits, the zero-point when asym).
// Not for double-quantized specs. Safe to call concurrently for different (row, g).
void set_group_params(QuantizedMatrix& m, int64_t row, int64_t g, const GroupParams& p);

// Double-quantized specs: stores all group scales at once, scales [rows * groups_per_row()]
// row-major fp32 (double_quant.h).
void set_double_quant_scales(QuantizedMatrix& m, const float* scales);

// Packs the unpacked codes [cols] of `row`. Safe to call concurrently for different rows.
void set_row_codes(QuantizedMatrix& m, int64_t row, const uint8_t* codes);

// ---- Reading (the scalar reference; kernels are tested against it) -------------------------
// The parameters of group g of `row` exactly as stored (decoded fp16/bf16 or double-quant scale).
GroupParams group_params(const QuantizedMatrix& m, int64_t row, int64_t g);

// Code of weight (row, col).
uint8_t code_at(const QuantizedMatrix& m, int64_t row, int64_t col);

// out[cols] = the values of `row`. Does not allocate.
void dequantize_row(const QuantizedMatrix& m, int64_t row, float* out);

// All values [rows, cols].
std::vector<float> dequantize(const QuantizedMatrix& m);

// Throws lowbit::Error("format", ...) unless m is well formed: a valid spec, shape within
// limits (rows, cols >= 1, rows * cols <= 2^40), every vector exactly its documented size, no
// invalid code (ternary 3, FP8 NaN 0x7f/0xff), zero-points < 2^bits, finite scales and
// double-quant parameters, and zero padding bits at the end of each packed row. Meant for
// matrices read from untrusted files; everything else in this header assumes a valid matrix.
void validate(const QuantizedMatrix& m);

}  // namespace lowbit
