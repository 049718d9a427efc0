// A dense fp32 matrix [rows, cols], row-major. It either points into a memory-mapped file
// (F32 weights, zero copy) or owns a decoded copy (F16/BF16/Q8_0/Q4_0 weights). Move-only.
#pragma once

#include <cstdint>
#include <vector>

#include "io/tensor.h"

namespace lowbit {

struct Matrix {
  int64_t rows = 0, cols = 0;
  const float* data = nullptr;  // [rows, cols]
  std::vector<float> owned;     // backing store when not mapped

  Matrix() = default;
  Matrix(Matrix&&) = default;
  Matrix& operator=(Matrix&&) = default;
  Matrix(const Matrix&) = delete;
  Matrix& operator=(const Matrix&) = delete;

  const float* row(int64_t r) const { return data + r * cols; }
  bool mapped() const { return data != nullptr && owned.empty(); }
};

// A matrix from a 1-D (as [1, n]) or 2-D tensor view: F32 with 4-byte-aligned data is viewed in
// place; anything else is decoded with to_f32.
Matrix matrix_from(const TensorView& t);

// Y[T, n_out] = X[T, n_in] · W[n_out, n_in]ᵀ (+ bias[n_out] if non-null), multithreaded.
// T <= kRowDotMaxRows computes every output with the same AVX2 dot product (so each row's result
// does not depend on T or on the other rows: batched decode equals decoding alone); larger T
// calls OpenBLAS sgemm on blocks of 64 rows of W (bit-identical across thread counts, but
// rounded differently from the dot product).
inline constexpr int64_t kRowDotMaxRows = 16;
void matmul(const float* x, int64_t T, const Matrix& w, const float* bias, float* y);

}  // namespace lowbit
