// PackedMatrix: a weight matrix in any QuantSpec, repacked once at load into the layout one ISA's
// kernels want, multiplied by fp32 activations:  Y[T, rows] = X[T, cols] · Wᵀ.
//
// Kernel families and their numerics (the contract the tests check):
//
//  * Integer family — Int 2..8 bits sym/asym, Ternary, NF4, FP4. Each stored code maps to an
//    unsigned integer value u (Int/Ternary: u = q; NF4: u = round(127·kNf4[q]) + 127;
//    FP4: u = 2·e2m1(q) + 12) and each group has an integer zero z (asym zero-point, 2^(bits-1),
//    1, 127 or 12) so that weight = scale · m · (u − z) with m = 1 (Int, Ternary), 1/2 (FP4),
//    1/127 (NF4). FP4 and Int are exact; NF4's int8 levels differ from kNf4 by ≤ 0.5/127·absmax.
//    Activations are quantized per call, per token, in k-blocks of 32 columns that restart at
//    every group boundary (a short group or short row gives a short block, padded with zeros):
//       d = amax/127,  xq = round_half_even(x · (1/d))  (0 when amax = 0),  xs = d · m.
//    With the block's integer dot D_b = Σ_i (u_i − z)·xq_i (exact in int32), each row's result
//    is, group by group in column order (acc starts at 0, each g_acc at 0):
//       g_acc = fma(float(D_b), xs_b, g_acc)   for the blocks b of group g, in order
//       acc   = fma(g_acc, fp32(scale_g), acc)
//    Every ISA computes exactly this (the scalar path is its plain-loop twin), for T == 1 and
//    T > 1 alike: results are bit-identical across ISAs.
//
//  * Float family — F32, F16, BF16 (plain storage) and FP8 E4M3 (per-group scale). Weights are
//    converted exactly to fp32; activations stay fp32. F32/F16/BF16: acc = fma(w_k, x_k, acc) over
//    k in column order. FP8: per group, g = fma chain of w'_k·x_k from 0 where w'_k = e4m3(q)/256
//    (the exact fp16 reinterpretation), then acc = fma(g, fp32(scale)·256, acc). Bit-identical
//    across ISAs too (E4M3 NaN codes read as 480; subnormal intermediates aside).
//
// Double-quantized scales are decoded to fp32 at pack time (dq_offset + dq_scale·code); bf16 and
// fp16 scales are kept as they are and widened exactly in the kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "formats/quant_spec.h"
#include "formats/quantized_matrix.h"

namespace lowbit {

enum class Isa : uint8_t { Scalar, Avx2, Avx512 };

Isa best_isa();                     // the fastest ISA this CPU runs (chosen once)
const char* isa_name(Isa isa);      // "scalar", "avx2", "avx512"
std::vector<Isa> supported_isas();  // every ISA this CPU runs, Scalar first

struct PackedImpl;  // layout + kernel pointers (kernels/packed_layout.h)

class PackedMatrix {
 public:
  // Repacks m for `isa`'s kernels (Scalar if isa is not supported here). The codes are not
  // validated beyond their documented ranges: out-of-range Int codes just give other integers.
  // Throws lowbit::Error("kernels", ...) when m's arrays do not match its shape and spec.
  static PackedMatrix pack(const QuantizedMatrix& m, Isa isa = best_isa());

  PackedMatrix();  // empty 0 x 0 matrix (as is a moved-from one): matmul does nothing
  ~PackedMatrix();
  PackedMatrix(PackedMatrix&&) noexcept;
  PackedMatrix& operator=(PackedMatrix&&) noexcept;
  PackedMatrix(const PackedMatrix&) = delete;
  PackedMatrix& operator=(const PackedMatrix&) = delete;

  // x: [T, cols] row-major fp32; y: [T, rows] row-major fp32 (overwritten). T == 1 is decode,
  // T > 1 prefill; multithreaded with parallel_for. Never throws; allocates only the calling
  // thread's activation scratch (grown once, reused across calls).
  void matmul(const float* x, int64_t T, float* y) const;

  // Rows [r0, r0 + n) decoded to fp32 out[n, cols]: the weights matmul multiplies by (for NF4
  // its int8 levels), so x·outᵀ equals matmul up to the activation quantization. For training's
  // input gradient dX = dY·W, a tile at a time (never a full fp32 copy). Requires
  // 0 <= r0 <= r0 + n <= rows(); never throws.
  void dequantize_rows(int64_t r0, int64_t n, float* out) const;

  int64_t rows() const;
  int64_t cols() const;
  const QuantSpec& spec() const;
  Isa isa() const;
  // Bytes one matvec streams: packed codes + scales + zeros, padding included.
  int64_t weight_bytes() const;
  // Writes the packed weights out of every cache level (clflush), so that the next matmul
  // streams them from memory as decode of a model larger than the caches does (benchmarks).
  void flush_cache() const;

 private:
  std::unique_ptr<PackedImpl> impl_;
};

}  // namespace lowbit
