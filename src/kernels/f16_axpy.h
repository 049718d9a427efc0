// Sums of scaled fp16 rows into fp32: the second product of a low-rank correction, y += xa·Bᵀ,
// with Bᵀ [r, n] kept as IEEE binary16 bits (half the bytes of fp32, converted exactly by F16C)
// in a blocked layout, so that a range of outputs is one contiguous stream of memory instead of
// r strided ones (measured: the row-major form cost 2.7× the int4 kernel's time per byte).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

// Outputs per block of the layout: one AVX-512 register of fp32, two AVX2 ones.
inline constexpr int64_t kF16Block = 16;

// Bᵀ [r, n] (row-major fp16 bits) in blocks of kF16Block outputs: block k holds r rows of
// kF16Block values (row j: Bᵀ[j, 16k .. 16k + 15]), blocks one after another; the last block is
// padded with zeros. Size r · kF16Block · ceil(n / kF16Block).
std::vector<uint16_t> block_f16_rows(const uint16_t* bt, int64_t r, int64_t n);

// y[i] += Σ_{j<r} s[j] · Bᵀ[j, i] for i in [i0, i1), Bᵀ in the blocked layout above (`blocks`),
// any 0 <= i0 <= i1 <= n. Numerics: per element the r terms are added in order j = 0, 1, ...,
// r−1, each as one fp32 fused multiply-add (std::fma in the twin, vfmadd in the AVX2 and AVX-512
// paths), and fp16 → fp32 is exact; so every path gives the scalar twin's result bit for bit.
// Never throws, never allocates.
void add_scaled_f16_blocks(const float* s, const uint16_t* blocks, int64_t r, int64_t i0,
                           int64_t i1, float* y);
// The scalar twin (the oracle of the tests).
void add_scaled_f16_blocks_ref(const float* s, const uint16_t* blocks, int64_t r, int64_t i0,
                               int64_t i1, float* y);

namespace detail {
// The vector paths over the whole blocks [k0, k1) (outputs 16·k0 .. 16·k1), for the tests: AVX2
// (every build's baseline) and AVX-512 (f16_axpy_avx512.cpp; only on CPUs with AVX-512F/VL).
void add_scaled_f16_blocks_avx2(const float* s, const uint16_t* blocks, int64_t r, int64_t k0,
                                int64_t k1, float* y);
bool runs_f16_blocks_avx512();
void add_scaled_f16_blocks_avx512(const float* s, const uint16_t* blocks, int64_t r, int64_t k0,
                                  int64_t k1, float* y);
}  // namespace detail

}  // namespace lowbit
