// The ggml tensor encodings the GGUF exporter writes, row by row (docs/FORMAT.md "GGUF export").
// All values little-endian; a row of n elements is n / block blocks laid end to end.
//
//   F32   4 bytes per element (IEEE binary32)
//   F16   2 bytes per element (IEEE binary16, round to nearest even)
//   Q8_0  block of 32 = 34 bytes: fp16 d, then int8 q[32];            x[j] = d * q[j]
//   Q4_0  block of 32 = 18 bytes: fp16 d, then uint8 qs[16];          x[j] = d * (nibble_j - 8)
//         element j < 16 is the LOW nibble of qs[j], element j + 16 the HIGH nibble of qs[j].
//   Q5_0  block of 32 = 22 bytes: fp16 d, uint8 qh[4], uint8 qs[16];  x[j] = d * (q_j - 16)
//         q_j's low 4 bits as in Q4_0, its 5th bit is bit j of the little-endian u32 qh.
//   Q4_K  super-block of 256 = 144 bytes: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128].
//         8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m packed in scales[12]:
//         sub-block j < 4: sc = scales[j] & 63, m = scales[j+4] & 63; j >= 4:
//         sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4, m = (scales[j+4] >> 4) |
//         (scales[j] >> 6) << 4. Elements 64c + l (l < 32) are the low nibbles and 64c + 32 + l
//         the high nibbles of qs[32c + l] (c < 4); x = d * sc * q - dmin * m.
//   Q6_K  super-block of 256 = 210 bytes: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d.
//         Each half h (128 elements, e = 128h + 32k + l, k < 4, l < 32) uses ql[64h..], qh[32h..]
//         and scales[8h..]: the low 4 bits of q are the low (k = 0, 1) or high (k = 2, 3) nibble
//         of ql[64h + l + 32 (k & 1)], the top 2 bits are bits 2k, 2k+1 of qh[32h + l];
//         x = d * scales[8h + 2k + l / 16] * (q - 32) (one int8 scale per 16 elements).
//
// K-quant encoding (ours, not llama.cpp's code): per sub-block a small search over candidate
// scales (and for Q4_K offsets), each refitted by weighted least squares for its codes, picks
// the sub-block scale (and min) with the least weighted squared error (weights: optional
// per-column importance, 1 otherwise); then the super-block scale(s) are d = max / 127 (Q6_K) or
// max / 63 (Q4_K), rounded to fp16, the sub-block scales rounded against the fp16 d, and the
// codes chosen against the decoded scales. A plain max-abs fit (Q6_K: s = m / -32 with m the
// value of largest magnitude; Q4_K: s = (max - min) / 15, min clamped to <= 0) goes through the
// same super-block steps and is kept instead when its final error is lower, so the result is
// never worse than max scaling on any super-block.
//
// From fp32 ("plain rounding"), each block of 32 gets exactly what lowbit's RTN gives a group of
// 32 in int8:g32 / int4:g32 (formats/int.h, no clipping): d = m / -2^(b-1) rounded to fp16,
// where m is the block's value of largest magnitude, and code = round_half_even(x / d)
// clamped to the grid. So fp32 -> Q4_0 here equals `rtn:int4:g32` followed by the exact path.
//
// From a QuantizedMatrix (exact path): symmetric int4:g32 with fp16 scales is Q4_0 and symmetric
// int8:g32 with fp16 scales is Q8_0 bit for bit: our value scale * (q - 2^(b-1)) equals
// d * (q - 8) for Q4_0 and d * (q - 128) = d * q_signed for Q8_0, so the codes and the fp16
// scale bits are copied, never re-rounded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "formats/quantized_matrix.h"

namespace lowbit {

// ggml tensor type ids (persisted by GGUF; never renumber).
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q5_0 = 6, Q8_0 = 8, Q4_K = 12, Q6_K = 14 };

inline constexpr int64_t kGgmlBlock = 32;  // elements per Q4_0 / Q8_0 block
inline constexpr int64_t kQ4_0BlockBytes = 18;
inline constexpr int64_t kQ8_0BlockBytes = 34;
inline constexpr int64_t kQ5_0BlockBytes = 22;
inline constexpr int64_t kQK = 256;  // elements per K-quant super-block
inline constexpr int64_t kQ4_KBlockBytes = 144;
inline constexpr int64_t kQ6_KBlockBytes = 210;
static_assert(kQ4_KBlockBytes == 2 + 2 + 12 + kQK / 2, "Q4_K: d, dmin, scales[12], qs[128]");
static_assert(kQ6_KBlockBytes == kQK / 2 + kQK / 4 + kQK / 16 + 2, "Q6_K: ql, qh, scales, d");
static_assert(kQ4_0BlockBytes == 2 + kGgmlBlock / 2, "Q4_0 block: fp16 d + 32 nibbles");
static_assert(kQ8_0BlockBytes == 2 + kGgmlBlock, "Q8_0 block: fp16 d + 32 int8");

// "F32", "F16", "Q4_0", "Q5_0", "Q8_0", "Q4_K", "Q6_K".
const char* ggml_type_label(GgmlType t);

// Parses a --type value (case-insensitive "F32", "F16", "Q8_0", "Q5_0", "Q4_0", "Q6_K",
// "Q4_K"). Throws lowbit::Error("export", "unknown --type '...' (expected ...)").
GgmlType parse_ggml_type(std::string_view s);

// Elements per block (1 for F32/F16, 32 for Q4_0/Q5_0/Q8_0, 256 for Q4_K/Q6_K).
int64_t ggml_block_elems(GgmlType t);

// Bytes of one row of `cols` elements. cols must be a multiple of ggml_block_elems(t) (asserted).
int64_t ggml_row_bytes(GgmlType t, int64_t cols);

// general.file_type for a file whose weights are mostly `t` (llama.cpp's llama_ftype numbers):
// ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q5_0 8, MOSTLY_Q4_K_S 14 (for
// Q4_K everywhere), MOSTLY_Q6_K 18. (MOSTLY_Q4_K_M 15 is the export's mix, gguf_export.h.)
uint32_t ggml_file_type(GgmlType t);

// Encodes x[0..n) as type t into out[0..ggml_row_bytes(t, n)). n must be a multiple of the
// block length (asserted). For the block types x should be finite (callers check: a NaN
// becomes the lowest code). importance: optional per-element weights (n of them, >= 0; e.g.
// calibration mean x^2 of the input channel) for the K-quant scale search; nullptr = all 1.
void encode_ggml_row(GgmlType t, const float* x, int64_t n, uint8_t* out,
                     const float* importance = nullptr);

// One block of 32 values from fp32 (see the header comment for the rule).
void quantize_q4_0_block(const float* x, uint8_t* out);  // out[kQ4_0BlockBytes]
void quantize_q5_0_block(const float* x, uint8_t* out);  // out[kQ5_0BlockBytes]
void quantize_q8_0_block(const float* x, uint8_t* out);  // out[kQ8_0BlockBytes]

// One K-quant super-block of 256 values (see the header comment). w: nullptr or 256 weights.
// plain_only: skip the search (the max-abs fit alone; the baseline the tests compare with).
void quantize_q4_k_block(const float* x, const float* w, uint8_t* out, bool plain_only = false);
void quantize_q6_k_block(const float* x, const float* w, uint8_t* out, bool plain_only = false);

// Decodes one super-block (the reader's formula; io/tensor.cpp has the same one for loading).
void dequantize_q4_k_block(const uint8_t* in, float* y);  // y[256]
void dequantize_q6_k_block(const uint8_t* in, float* y);  // y[256]

// The block type a QuantSpec maps onto exactly for a row of `cols` elements (Q4_0 for
// int4:g32, Q5_0 for int5:g32, Q8_0 for int8:g32, all symmetric with fp16 scales, no double quantization, cols a
// multiple of 32), or nullopt.
std::optional<GgmlType> exact_block_type(const QuantSpec& spec, int64_t cols);

// Copies row `row` of m into blocks of its exact_block_type (which must exist: asserted):
// codes and fp16 scale bits unchanged. out[ggml_row_bytes(type, m.cols)].
void encode_ggml_row_exact(const QuantizedMatrix& m, int64_t row, uint8_t* out);

}  // namespace lowbit
