// Internal: per-call activation preparation for the kernels (see packed_matrix.h for the
// numerics). Both functions fill the calling thread's scratch and return views into it.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/packed_layout.h"

namespace lowbit {

struct IntActBuffer {
  std::vector<int8_t> q;
  std::vector<float> scale;
  std::vector<int32_t> negsum;
};

// Quantizes X [T, w.cols] into w's k-blocks, in token tiles of nt (tokens past T are zero).
// simd = false uses the plain-loop twin; both give identical bytes.
IntActs quantize_acts(const IntPacked& w, const float* x, int64_t T, int nt, bool simd,
                      IntActBuffer& buf);

// One k-block: n ≤ 32 values -> q[32] (zero padded); returns d = amax/127 and Σq.
void quantize_block_ref(const float* x, int n, int8_t* q, float* d, int32_t* sum);
void quantize_block_avx2(const float* x, int n, int8_t* q, float* d, int32_t* sum);

// X [T, cols] as FloatActs in token tiles of nt (nt == 1: X itself, no copy).
FloatActs tile_float_acts(const float* x, int64_t T, int64_t cols, int nt, std::vector<float>& buf);

}  // namespace lowbit
