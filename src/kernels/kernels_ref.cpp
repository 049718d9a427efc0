// Scalar twins of the SIMD kernels: plain loops over the scalar layouts (R = 1), computing the
// exact same operation sequence per (row, token) as documented in packed_matrix.h.
#include <algorithm>
#include <cmath>

#include "kernels/packed_layout.h"

namespace lowbit {

namespace {

void int_ref(const IntPacked& w, const IntActs& a, int64_t row0, int64_t row1, int64_t T,
             float* y) {
  const int64_t nb = w.n_blocks, G = w.n_groups, bpg = w.blocks_per_group;
  const float* scales = w.scales.as<float>();
  for (int64_t r = row0; r < row1; ++r) {
    const uint8_t* codes = w.codes.data() + r * nb * kBlock;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t tile = t / a.nt, lane = t % a.nt;
      float acc = 0.0f;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t b_end = std::min(nb, (g + 1) * bpg);
        float gacc = 0.0f;
        for (int64_t b = g * bpg; b < b_end; ++b) {
          const int64_t slot = (tile * nb + b) * a.nt + lane;
          const uint8_t* u = codes + b * kBlock;
          const int8_t* q = a.q + slot * kBlock;
          int32_t dot = 0;
          for (int i = 0; i < kBlock; ++i) dot += static_cast<int32_t>(u[i]) * q[i];
          if (w.asym)
            dot += w.zeros.data()[r * G + g] * static_cast<int16_t>(a.negsum[slot] & 0xffff);
          else
            dot += a.negsum[slot];  // − z·Σq
          gacc = std::fma(static_cast<float>(dot), a.scale[slot], gacc);
        }
        acc = std::fma(gacc, scales[r * G + g], acc);
      }
      y[t * w.rows + r] = acc;
    }
  }
}

void float_ref(const FloatPacked& w, const FloatActs& a, int64_t row0, int64_t row1, int64_t T,
               float* y) {
  const int64_t cols = w.cols, G = w.n_groups, glen = w.group_len;
  const bool grouped = w.elem == FloatPacked::Elem::FP8;
  for (int64_t r = row0; r < row1; ++r) {
    const float* e = w.elems.as<float>() + r * cols;
    for (int64_t t = 0; t < T; ++t) {
      const float* x = a.x + (t / a.nt) * cols * a.nt + t % a.nt;  // x[k] at x[k * nt]
      float acc = 0.0f;
      if (!grouped) {
        for (int64_t k = 0; k < cols; ++k) acc = std::fma(e[k], x[k * a.nt], acc);
      } else {
        for (int64_t g = 0; g < G; ++g) {
          const float s = w.scales.as<float>()[r * G + g] * 256.0f;
          const int64_t k_end = std::min(cols, (g + 1) * glen);
          float gacc = 0.0f;
          for (int64_t k = g * glen; k < k_end; ++k) gacc = std::fma(e[k], x[k * a.nt], gacc);
          acc = std::fma(gacc, s, acc);
        }
      }
      y[t * w.rows + r] = acc;
    }
  }
}

}  // namespace

IntKernel int_kernel_scalar(const IntPacked&) {
  return int_ref;
}
FloatKernel float_kernel_scalar(const FloatPacked&) {
  return float_ref;
}

}  // namespace lowbit
