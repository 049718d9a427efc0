// Synthetic linear layers with calibration inputs, for the calibrated quantizers' tests (GPTQ
// here and in the calibrated GGUF export): weights, inputs X and H = XᵀX.
#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "formats/test_data.h"

namespace lowbit::test {

// A linear layer y = W x with calibration inputs X [tokens, cols] and H = XᵀX.
struct Layer {
  int64_t rows = 0, cols = 0, tokens = 0;
  std::vector<float> w;   // [rows, cols]
  std::vector<double> x;  // [tokens, cols]
  std::vector<float> h;   // [cols, cols]
};

inline void fill_hessian(Layer& l) {
  l.h.assign(static_cast<size_t>(l.cols * l.cols), 0.0f);
  std::vector<double> acc(l.h.size(), 0.0);
  for (int64_t t = 0; t < l.tokens; ++t) {
    const double* xt = &l.x[t * l.cols];
    for (int64_t i = 0; i < l.cols; ++i)
      for (int64_t j = 0; j < l.cols; ++j) acc[i * l.cols + j] += xt[i] * xt[j];
  }
  for (size_t i = 0; i < acc.size(); ++i) l.h[i] = static_cast<float>(acc[i]);
}

// Correlated inputs, as in LLM layers: X = Z·M with Z iid N(0, 1) and M = 0.3·I + G/sqrt(cols)
// (G iid N(0, 1): every channel mixes all the others), then lognormal per-channel scales and
// 4 outlier channels at 8x. Weights ~ N(0, 0.02²).
inline Layer correlated_layer(int64_t rows, int64_t cols, int64_t tokens, uint64_t seed) {
  Layer l{rows, cols, tokens, test::gaussian_data(rows * cols, seed), {}, {}};
  test::Rng rng(seed + 1000);
  std::vector<double> mix(static_cast<size_t>(cols * cols)), z(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols * cols; ++i)
    mix[i] = rng.normal() / std::sqrt(double(cols)) + (i / cols == i % cols ? 0.3 : 0.0);
  std::vector<double> chan(static_cast<size_t>(cols));
  for (double& c : chan) c = std::exp(0.5 * rng.normal());
  for (int64_t k = 0; k < 4; ++k) chan[(k * 37 + 11) % cols] *= 8.0;
  l.x.assign(static_cast<size_t>(tokens * cols), 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    for (double& v : z) v = rng.normal();
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < cols; ++j) l.x[t * cols + j] += z[i] * mix[i * cols + j];
    for (int64_t j = 0; j < cols; ++j) l.x[t * cols + j] *= chan[j];
  }
  fill_hessian(l);
  return l;
}

// Uncorrelated inputs: X iid N(0, 1), so H ≈ tokens · I.
inline Layer uncorrelated_layer(int64_t rows, int64_t cols, int64_t tokens, uint64_t seed) {
  Layer l{rows, cols, tokens, test::gaussian_data(rows * cols, seed), {}, {}};
  test::Rng rng(seed + 1000);
  l.x.resize(static_cast<size_t>(tokens * cols));
  for (double& v : l.x) v = rng.normal();
  fill_hessian(l);
  return l;
}

// Σ_t ‖(W - Ŵ) x_t‖², in double, straight from X (independent of H and of the report).
inline double output_error(const Layer& l, const std::vector<float>& w_hat) {
  double e = 0.0;
  std::vector<double> d(static_cast<size_t>(l.cols));
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t c = 0; c < l.cols; ++c) d[c] = double(l.w[r * l.cols + c]) - w_hat[r * l.cols + c];
    for (int64_t t = 0; t < l.tokens; ++t) {
      const double y = std::inner_product(d.begin(), d.end(), &l.x[t * l.cols], 0.0);
      e += y * y;
    }
  }
  return e;
}

}  // namespace lowbit::test
