// The ggml tensor encodings the GGUF exporter writes, row by row (docs/FORMAT.md "GGUF export").
// All values little-endian; a row of n elements is n / block blocks laid end to end. F32 and F16
// are IEEE binary32 / binary16 (round to nearest even); the block layouts (Q4_0, Q5_0, Q5_1,
// Q8_0, IQ4_NL, Q3_K, Q4_K, Q5_K, Q6_K) are described once, in io/ggml_quants.h, which packs
// and decodes them; this file chooses the values.
//
// K-quant and IQ4_NL encoding (ours, not llama.cpp's code): per sub-block a small search over
// candidate scales (and for Q4_K / Q5_K offsets), each refitted by weighted least squares for
// its codes, picks the sub-block scale (and min) with the least weighted squared error
// (weights: optional per-column importance, 1 otherwise). Then the super-block scale(s) are
//   Q6_K: d = max|s| / 127, int8 scales;   Q3_K: d = m / -32 (m the sub-scale of largest
//   magnitude), 6-bit scales sc - 32;      Q4_K / Q5_K: d = max a / 63, dmin = max b / 63,
// rounded to fp16, the sub-block scales rounded against the fp16 d, and every code chosen as
// the grid point nearest to x on the decoded grid (ggml_nearest_code). A plain max-abs fit
// (Q6_K / Q3_K: s = m / lo with m the value of largest magnitude and lo the grid's most negative
// code; Q4_K / Q5_K: a = (max - min) / qmax, min clamped to <= 0) goes through the same steps
// and is kept instead when its final error is lower, so the result is never worse than max
// scaling on any super-block. IQ4_NL: d = m / t for t within 8 of either end of the code book
// (-127, 113), each refitted by weighted least squares; the least error wins. Q5_1 (Q5_K's
// row fallback, also a --type of its own; no search): d = (max - min) / 31, m = min, nearest codes.
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
#include <vector>

#include "formats/quantized_matrix.h"
#include "io/tensor.h"

namespace lowbit {

// ggml tensor type ids (persisted by GGUF; never renumber).
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  IQ4_NL = 20,
};
// Every type the export writes, most bits first (the order of listings and messages).
inline constexpr GgmlType kGgmlTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::Q8_0,
                                          GgmlType::Q6_K, GgmlType::Q5_K, GgmlType::Q5_1,
                                          GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q4_0,
                                          GgmlType::IQ4_NL, GgmlType::Q3_K};

inline constexpr int64_t kGgmlBlock = 32;  // elements per Q4_0 / Q5_x / Q8_0 / IQ4_NL block
inline constexpr int64_t kQ4_0BlockBytes = 18;
inline constexpr int64_t kQ8_0BlockBytes = 34;
inline constexpr int64_t kQ5_0BlockBytes = 22;
inline constexpr int64_t kQ5_1BlockBytes = 24;
inline constexpr int64_t kIq4NlBlockBytes = 18;
inline constexpr int64_t kQK = 256;  // elements per K-quant super-block
inline constexpr int64_t kQ3_KBlockBytes = 110;
inline constexpr int64_t kQ4_KBlockBytes = 144;
inline constexpr int64_t kQ5_KBlockBytes = 176;
inline constexpr int64_t kQ6_KBlockBytes = 210;
static_assert(kQ3_KBlockBytes == kQK / 8 + kQK / 4 + 12 + 2, "Q3_K: hmask, qs, scales[12], d");
static_assert(kQ4_KBlockBytes == 2 + 2 + 12 + kQK / 2, "Q4_K: d, dmin, scales[12], qs[128]");
static_assert(kQ5_KBlockBytes == 2 + 2 + 12 + kQK / 8 + kQK / 2, "Q5_K: d, dmin, scales, qh, qs");
static_assert(kQ6_KBlockBytes == kQK / 2 + kQK / 4 + kQK / 16 + 2, "Q6_K: ql, qh, scales, d");
static_assert(kQ4_0BlockBytes == 2 + kGgmlBlock / 2, "Q4_0 block: fp16 d + 32 nibbles");
static_assert(kQ8_0BlockBytes == 2 + kGgmlBlock, "Q8_0 block: fp16 d + 32 int8");

// "F32", "F16", "Q4_0", "Q5_0", "Q5_1", "Q8_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL".
const char* ggml_type_label(GgmlType t);

// The labels of kGgmlTypes followed by `extra`, joined as "A, B, ... or Z" (messages, --help).
std::string ggml_type_list(const std::vector<std::string>& extra = {});

// True for the quantized block types (every type but F32 and F16).
bool is_block_type(GgmlType t);

// The io DType with the same storage (io/ggml_quants.h describes the block types' layouts),
// and back (nullopt for BF16, which the export does not write).
DType ggml_dtype(GgmlType t);
std::optional<GgmlType> ggml_type_of(DType d);

// Parses a --type value (case-insensitive, one of the labels above). Throws
// lowbit::Error("export", "unknown --type '...' (expected ...)").
GgmlType parse_ggml_type(std::string_view s);

// Elements per block (1 for F32/F16, 32 for Q4_0/Q5_x/Q8_0/IQ4_NL, 256 for the K-quants).
int64_t ggml_block_elems(GgmlType t);

// Bytes of one row of `cols` elements. cols must be a multiple of ggml_block_elems(t) (asserted).
int64_t ggml_row_bytes(GgmlType t, int64_t cols);

// general.file_type for a file whose weights are mostly `t` (llama.cpp's llama_ftype numbers):
// ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7, MOSTLY_Q5_0 8, MOSTLY_Q5_1 9,
// MOSTLY_Q3_K_S 11 (Q3_K everywhere), MOSTLY_Q4_K_S 14, MOSTLY_Q5_K_S 16, MOSTLY_Q6_K 18,
// MOSTLY_IQ4_NL 25. (The _M mixes' numbers are in gguf_export.h.)
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
void quantize_q5_1_block(const float* x, uint8_t* out);  // out[kQ5_1BlockBytes]
void quantize_q8_0_block(const float* x, uint8_t* out);  // out[kQ8_0BlockBytes]
void quantize_iq4_nl_block(const float* x, const float* w, uint8_t* out);  // w: nullptr or 32

// One K-quant super-block of 256 values (see the header comment). w: nullptr or 256 weights.
// plain_only: skip the search (the max-abs fit alone; the baseline the tests compare with).
void quantize_q3_k_block(const float* x, const float* w, uint8_t* out, bool plain_only = false);
void quantize_q4_k_block(const float* x, const float* w, uint8_t* out, bool plain_only = false);
void quantize_q5_k_block(const float* x, const float* w, uint8_t* out, bool plain_only = false);
void quantize_q6_k_block(const float* x, const float* w, uint8_t* out, bool plain_only = false);

// One block of any block type t (the encoders above). With weights w, Q4_0 / Q5_0 / Q8_0 also
// search their scale (candidates m / t around the grid's ends, refitted by weighted least
// squares, kept when the weighted error beats plain rounding's); without, they are the plain
// rounding above. w is ignored by Q5_1.
void quantize_ggml_block(GgmlType t, const float* x, const float* w, uint8_t* out);

// Decodes one block of type t to y[ggml_block_elems(t)] (io/ggml_quants.h, as the reader does).
void dequantize_ggml_block(GgmlType t, const uint8_t* in, float* y);

// The block type a QuantSpec maps onto exactly for a row of `cols` elements (Q4_0 for
// int4:g32, Q5_0 for int5:g32, Q8_0 for int8:g32, all symmetric with fp16 scales, no double quantization, cols a
// multiple of 32), or nullopt.
std::optional<GgmlType> exact_block_type(const QuantSpec& spec, int64_t cols);

// Copies row `row` of m into blocks of its exact_block_type (which must exist: asserted):
// codes and fp16 scale bits unchanged. out[ggml_row_bytes(type, m.cols)].
void encode_ggml_row_exact(const QuantizedMatrix& m, int64_t row, uint8_t* out);

}  // namespace lowbit
