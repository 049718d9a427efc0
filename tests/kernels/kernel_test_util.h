// Helpers for the kernel tests: random matrices in any spec (random codes and scales, built
// through the formats API) and the oracle bound of packed_matrix.h's numerics.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "base/half.h"
#include "formats/codec.h"
#include "formats/quantized_matrix.h"

namespace lowbit::test {

// random_matrix: a [rows, cols] matrix in `spec` with uniformly random valid codes (no ternary 3,
// no FP8 NaN), random scales (|s| in [0.002, 0.1], either sign for Int, positive otherwise),
// random zeros; plain f32/f16/bf16 matrices hold N(0, 1) values.
// random_acts: N(0, 1) activations [T, cols] with some exact zeros (and a zero first block).
// oracle: y_ref[t, r] = Σ_c dequantize_row(m, r)[c] · x[t, c] in double, and the bound on
// |kernel − y_ref| that packed_matrix.h's numerics imply.
struct OracleResult {
  std::vector<double> y, bound;  // [T, rows]
};

inline QuantizedMatrix random_matrix(const QuantSpec& spec, int64_t rows, int64_t cols,
                                     uint64_t seed) {
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> mag(0.002f, 0.1f);
  if (!spec.quantized()) {
    for (int64_t i = 0; i < rows * cols; ++i) {
      const float v = normal(rng);
      if (spec.kind == FormatKind::F32) {
        std::memcpy(&m.codes[4 * i], &v, 4);
      } else {
        const uint16_t h = spec.kind == FormatKind::F16 ? f32_to_f16(v) : f32_to_bf16(v);
        m.codes[2 * i] = static_cast<uint8_t>(h);
        m.codes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
      }
    }
    return m;
  }
  std::vector<uint8_t> codes(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      uint32_t q = static_cast<uint32_t>(rng());
      switch (spec.kind) {
        case FormatKind::Ternary:
          q %= 3;
          break;
        case FormatKind::FP8:
          q &= 0xff;
          if ((q & 0x7f) == 0x7f) q ^= 1;
          break;
        default:
          q &= (1u << spec.bits) - 1u;
      }
      codes[c] = static_cast<uint8_t>(q);
    }
    set_row_codes(m, r, codes.data());
  }
  const int64_t G = m.groups_per_row();
  std::vector<float> scales(rows * G);
  for (float& s : scales) {
    s = mag(rng);
    if (spec.kind == FormatKind::Int && (rng() & 1)) s = -s;
  }
  if (spec.double_quant) {
    set_double_quant_scales(m, scales.data());
    return m;
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < G; ++g) {
      const int zero = spec.asym ? static_cast<int>(rng() % (1u << spec.bits)) : 0;
      set_group_params(m, r, g,
                       make_group_params(spec, round_scale(spec, scales[r * G + g]), zero));
    }
  return m;
}

inline std::vector<float> random_acts(int64_t T, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(T * cols);
  for (float& v : x) v = (rng() % 17 == 0) ? 0.0f : normal(rng);
  for (int64_t c = 0; c < std::min<int64_t>(cols, 32); ++c) x[c] = cols > 40 ? 0.0f : x[c];
  return x;
}

// Bound, per output, for the integer family (packed_matrix.h): the kernel computes
// Σ_j w̃_j·x̃_j with x̃_j = d_b·q_j, |x̃_j − x_j| ≤ d_b/2·(1 + 1e-4) (d_b = amax_b/127, the extra
// from 1/d's rounding), and w̃_j = w_j exactly except NF4's int8 levels, |w̃_j − w_j| ≤ e_j =
// |scale|·0.5/127. So |Σw̃x̃ − Σwx| ≤ Σ_j |w_j|·d_b/2 + e_j·(|x_j| + d_b/2), plus fp32 rounding:
// the block products and the fma chain over n_blocks terms (≤ (n_blocks + 4)·2⁻²³·Σ|w̃||x̃|)
// and the oracle's own fp32 weights (2⁻²³·Σ|w||x|).
// Float family: exact weights and activations, one fma chain over cols (+ groups) terms:
// ≤ (cols + n_groups + 4)·2⁻²³·Σ|w||x|.
inline OracleResult oracle(const QuantizedMatrix& m, const float* x, int64_t T) {
  const int64_t rows = m.rows, cols = m.cols, glen = m.group_len();
  const bool int_family = m.spec.kind == FormatKind::Int || m.spec.kind == FormatKind::Ternary ||
                          m.spec.kind == FormatKind::NF4 || m.spec.kind == FormatKind::FP4 ||
                          m.spec.kind == FormatKind::E8P;
  // Per-column half-step d_b/2 of each token's activation block (blocks restart at groups).
  std::vector<double> half_step(T * cols, 0.0);
  int64_t n_blocks = 0;
  for (int64_t g0 = 0; g0 < cols; g0 += glen) {
    const int64_t g1 = std::min(cols, g0 + glen);
    for (int64_t b0 = g0; b0 < g1; b0 += 32, ++n_blocks) {
      const int64_t b1 = std::min(g1, b0 + 32);
      for (int64_t t = 0; t < T; ++t) {
        double amax = 0.0;
        for (int64_t c = b0; c < b1; ++c) amax = std::max(amax, std::fabs(double(x[t * cols + c])));
        for (int64_t c = b0; c < b1; ++c)
          half_step[t * cols + c] = amax / 127.0 / 2.0 * (1.0 + 1e-4);
      }
    }
  }
  OracleResult o;
  o.y.assign(T * rows, 0.0);
  o.bound.assign(T * rows, 0.0);
  std::vector<float> w(cols);
  const double u = std::ldexp(1.0, -23);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(m, r, w.data());
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * cols;
      double y = 0.0, act = 0.0, lut = 0.0, mass = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const double wa = std::fabs(double(w[c])), xa = std::fabs(double(xt[c]));
        const double hs = int_family ? half_step[t * cols + c] : 0.0;
        const double e = m.spec.kind == FormatKind::NF4
                             ? std::fabs(double(group_params(m, r, c / glen).scale)) * 0.5 / 127.0
                             : 0.0;
        y += double(w[c]) * xt[c];
        act += wa * hs;
        lut += e * (xa + hs);
        mass += (wa + e) * (xa + hs);
      }
      const double terms = int_family ? n_blocks + 4 : cols + m.groups_per_row() + 4;
      o.y[t * rows + r] = y;
      o.bound[t * rows + r] = act + lut + (terms + 1) * u * mass + 1e-30;
    }
  }
  return o;
}

}  // namespace lowbit::test
