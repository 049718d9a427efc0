// Plain (unquantized) storage: F32, F16 (IEEE binary16) and BF16 matrices keep their elements in
// QuantizedMatrix::codes as little-endian 4- or 2-byte values, row-major, no scales.
//   Bits per weight: 32, 16, 16. fp32 -> f16/bf16 rounds to nearest even (base/half.h); values
//   beyond the f16 range become ±inf, as an f16 tensor would hold them.
#pragma once

#include <cstdint>

#include "formats/quantized_matrix.h"

namespace lowbit {

// Bytes per element of a plain kind (4 or 2).
int plain_element_bytes(FormatKind kind);

// One row of n values <-> its stored bytes (n * plain_element_bytes bytes).
void plain_store_row(FormatKind kind, const float* w, int64_t n, uint8_t* out);
void plain_load_row(FormatKind kind, const uint8_t* in, int64_t n, float* out);

// A plain-storage QuantizedMatrix of w [rows, cols]; spec must be f32, f16 or bf16.
QuantizedMatrix store_plain(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec);

}  // namespace lowbit
