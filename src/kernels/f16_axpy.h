// Sums of scaled fp16 rows into fp32: the second product of a low-rank correction, y += xa·Bᵀ,
// with Bᵀ kept as IEEE binary16 bits (half the bytes of fp32, converted exactly by F16C).
#pragma once

#include <cstdint>

namespace lowbit {

// y[i] += Σ_{j<r} s[j] · b[j·stride + i] for i in [i0, i1); b holds fp16 bit patterns.
// Numerics: per element the r terms are added in order j = 0, 1, ..., r−1, each as a separate
// fp32 multiply and add (no fused multiply-add), and fp16 → fp32 is exact; so the vector path
// gives the scalar twin's result bit for bit. Never throws, never allocates.
void add_scaled_f16_rows(const float* s, const uint16_t* b, int64_t r, int64_t stride, int64_t i0, int64_t i1,
                         float* y);
// The scalar twin (the oracle of the tests).
void add_scaled_f16_rows_ref(const float* s, const uint16_t* b, int64_t r, int64_t stride, int64_t i0,
                             int64_t i1, float* y);

}  // namespace lowbit
