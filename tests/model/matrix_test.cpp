// matmul (row-parallel AVX2 dot for T == 1, sgemm for T > 1) against a double-precision loop
// over awkward sizes. Bound: |err| <= 1e-5 · Σ|x_i w_i| + tiny (fp32 accumulation of n terms
// with ~n·2^-24 relative error each; n <= 300 here gives < 2e-5 of the absolute sum).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "model/llama.h"
#include "model/matrix.h"

namespace lowbit {
namespace {

Matrix random_matrix(int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.owned.resize(static_cast<size_t>(rows * cols));
  for (auto& v : m.owned) v = nd(rng);
  m.data = m.owned.data();
  return m;
}

TEST(Matmul, MatchesDoubleReferenceOnAwkwardSizes) {
  std::mt19937 rng(42);
  std::normal_distribution<float> nd;
  for (int64_t n_in : {1, 3, 7, 31, 33, 127, 129, 300}) {
    for (int64_t n_out : {1, 5, 33}) {
      for (int64_t T : {1, 2, 7}) {
        Matrix w = random_matrix(n_out, n_in, rng);
        std::vector<float> x(T * n_in), bias(n_out), y(T * n_out);
        for (auto& v : x) v = nd(rng);
        for (auto& v : bias) v = nd(rng);
        matmul(x.data(), T, w, bias.data(), y.data());
        for (int64_t t = 0; t < T; ++t)
          for (int64_t r = 0; r < n_out; ++r) {
            double ref = bias[r], abs_sum = std::abs(bias[r]);
            for (int64_t i = 0; i < n_in; ++i) {
              ref += static_cast<double>(x[t * n_in + i]) * w.owned[r * n_in + i];
              abs_sum += std::abs(static_cast<double>(x[t * n_in + i]) * w.owned[r * n_in + i]);
            }
            EXPECT_NEAR(y[t * n_out + r], ref, 1e-5 * abs_sum + 1e-6)
                << "n_in " << n_in << " n_out " << n_out << " T " << T;
          }
      }
    }
  }
}

TEST(RmsNorm, MatchesDefinition) {
  const std::vector<float> x = {1.0f, -2.0f, 3.0f}, w = {1.0f, 0.5f, 2.0f};
  std::vector<float> out(3);
  rms_norm(x.data(), w.data(), 3, 1e-5f, out.data());
  const double s = 1.0 / std::sqrt((1.0 + 4.0 + 9.0) / 3.0 + 1e-5);
  EXPECT_NEAR(out[0], 1.0 * s, 1e-6);
  EXPECT_NEAR(out[1], -2.0 * s * 0.5, 1e-6);
  EXPECT_NEAR(out[2], 3.0 * s * 2.0, 1e-6);
}

}  // namespace
}  // namespace lowbit
