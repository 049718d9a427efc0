// The ggml tensor encodings the GGUF exporter writes, row by row (docs/FORMAT.md "GGUF export").
// All values little-endian; a row of n elements is n / block blocks laid end to end.
//
//   F32   4 bytes per element (IEEE binary32)
//   F16   2 bytes per element (IEEE binary16, round to nearest even)
//   Q8_0  block of 32 = 34 bytes: fp16 d, then int8 q[32];            x[j] = d * q[j]
//   Q4_0  block of 32 = 18 bytes: fp16 d, then uint8 qs[16];          x[j] = d * (nibble_j - 8)
//         element j < 16 is the LOW nibble of qs[j], element j + 16 the HIGH nibble of qs[j].
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
enum class GgmlType : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8 };

inline constexpr int64_t kGgmlBlock = 32;  // elements per Q4_0 / Q8_0 block
inline constexpr int64_t kQ4_0BlockBytes = 18;
inline constexpr int64_t kQ8_0BlockBytes = 34;
static_assert(kQ4_0BlockBytes == 2 + kGgmlBlock / 2, "Q4_0 block: fp16 d + 32 nibbles");
static_assert(kQ8_0BlockBytes == 2 + kGgmlBlock, "Q8_0 block: fp16 d + 32 int8");

// "F32", "F16", "Q4_0", "Q8_0".
const char* ggml_type_label(GgmlType t);

// Parses a --type value (case-insensitive "F32", "F16", "Q8_0", "Q4_0"). Throws
// lowbit::Error("export", "unknown --type '...' (expected F32, F16, Q8_0 or Q4_0)").
GgmlType parse_ggml_type(std::string_view s);

// Elements per block (1 for F32/F16, 32 for Q4_0/Q8_0).
int64_t ggml_block_elems(GgmlType t);

// Bytes of one row of `cols` elements. cols must be a multiple of ggml_block_elems(t) (asserted).
int64_t ggml_row_bytes(GgmlType t, int64_t cols);

// general.file_type for a file whose weights are mostly `t` (llama.cpp's llama_ftype numbers):
// ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7.
uint32_t ggml_file_type(GgmlType t);

// Encodes x[0..n) as type t into out[0..ggml_row_bytes(t, n)). n must be a multiple of the
// block length (asserted). For the block types x should be finite (callers check: a NaN
// becomes the lowest code).
void encode_ggml_row(GgmlType t, const float* x, int64_t n, uint8_t* out);

// One block of 32 values from fp32 (see the header comment for the rule).
void quantize_q4_0_block(const float* x, uint8_t* out);  // out[kQ4_0BlockBytes]
void quantize_q8_0_block(const float* x, uint8_t* out);  // out[kQ8_0BlockBytes]

// The block type a QuantSpec maps onto exactly for a row of `cols` elements (Q4_0 for
// int4:g32, Q8_0 for int8:g32, both symmetric with fp16 scales, no double quantization, cols a
// multiple of 32), or nullopt.
std::optional<GgmlType> exact_block_type(const QuantSpec& spec, int64_t cols);

// Copies row `row` of m into blocks of its exact_block_type (which must exist: asserted):
// codes and fp16 scale bits unchanged. out[ggml_row_bytes(type, m.cols)].
void encode_ggml_row_exact(const QuantizedMatrix& m, int64_t row, uint8_t* out);

}  // namespace lowbit
