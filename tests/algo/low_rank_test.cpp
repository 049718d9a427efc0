// truncated_svd (algo/low_rank.h): a matrix of exact rank r is recovered to rounding; for any
// matrix the error of the rank-r factors is the Eckart–Young bound √Σ_{j>r} σ_j²; bad ranks throw.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "algo/low_rank.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (float& v : m) v = nd(rng);
  return m;
}

// ‖M − B·A‖_F in double.
double residual_norm(const std::vector<float>& m, const LowRankFactors& f) {
  double s = 0;
  for (int64_t r = 0; r < f.rows; ++r)
    for (int64_t c = 0; c < f.cols; ++c) {
      double ba = 0;
      for (int64_t j = 0; j < f.rank; ++j) ba += double(f.b[r * f.rank + j]) * f.a[j * f.cols + c];
      const double d = m[r * f.cols + c] - ba;
      s += d * d;
    }
  return std::sqrt(s);
}

TEST(LowRank, RecoversAnExactLowRankMatrix) {
  const int64_t R = 37, C = 23, k = 3;
  const std::vector<float> u = random_matrix(R, k, 1), v = random_matrix(k, C, 2);
  std::vector<float> m(R * C, 0.0f);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < k; ++j) m[r * C + c] += u[r * k + j] * v[j * C + c];
  const LowRankFactors f = truncated_svd(m.data(), R, C, k);
  double norm = 0;
  for (const float x : m) norm += double(x) * x;
  EXPECT_LT(residual_norm(m, f), 1e-5 * std::sqrt(norm));  // fp32 rounding of the factors only
  EXPECT_LT(f.singular_values[k], 1e-6 * f.singular_values[0]);  // m itself is rounded to fp32
}

TEST(LowRank, ErrorIsTheEckartYoungBound) {
  for (const auto& [R, C, k] : {std::tuple<int64_t, int64_t, int64_t>{31, 64, 5}, {64, 17, 1}, {20, 20, 20}}) {
    const std::vector<float> m = random_matrix(R, C, 3);
    const LowRankFactors f = truncated_svd(m.data(), R, C, k);
    ASSERT_EQ(static_cast<int64_t>(f.singular_values.size()), std::min(R, C));
    double tail = 0;
    for (size_t j = static_cast<size_t>(k); j < f.singular_values.size(); ++j) tail += f.singular_values[j] * f.singular_values[j];
    EXPECT_NEAR(residual_norm(m, f), std::sqrt(tail), 1e-4 * f.singular_values[0]) << R << "x" << C << " rank " << k;
    for (size_t j = 1; j < f.singular_values.size(); ++j) EXPECT_LE(f.singular_values[j], f.singular_values[j - 1]);
  }
}

TEST(LowRank, RejectsBadRanks) {
  const std::vector<float> m = random_matrix(4, 6, 4);
  test::expect_error([&] { truncated_svd(m.data(), 4, 6, 0); }, "rank 0", "algo");
  test::expect_error([&] { truncated_svd(m.data(), 4, 6, 5); }, "rank 5", "algo");
}

}  // namespace
}  // namespace lowbit
