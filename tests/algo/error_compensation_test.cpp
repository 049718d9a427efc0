// fit_error_correction (algo/error_compensation.h): the fitted B·A reaches the minimum of the
// activation-weighted error among rank-r corrections, computed here by an independent route
// (EoRA's: eigendecomposition of H, SVD of E·Q·√Λ); without H it is the plain truncated SVD; the
// randomized SVD for large matrices is within a hair of the exact one; the factors are fp16
// values of balanced scale; bad ranks throw.
#include <gtest/gtest.h>
#include <lapacke.h>

#include <cmath>
#include <random>

#include "algo/error_compensation.h"
#include "base/error.h"
#include "base/half.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::vector<float> gaussian(int64_t n, uint64_t seed, float sd = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng);
  return v;
}

// H = Σ x xᵀ of T inputs whose channels have very different scales (as real activations do).
std::vector<float> input_stats(int64_t cols, int64_t T, uint64_t seed) {
  const std::vector<float> x = gaussian(T * cols, seed);
  std::vector<double> h(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < cols; ++i) {
      const double xi = x[t * cols + i] * (1.0 + 4.0 * (i % 7 == 0)) * (0.2 + (i % 5));
      for (int64_t j = 0; j < cols; ++j)
        h[i * cols + j] += xi * x[t * cols + j] * (1.0 + 4.0 * (j % 7 == 0)) * (0.2 + (j % 5));
    }
  return std::vector<float>(h.begin(), h.end());
}

// The "quantization error": a decaying spectrum plus noise, as errors weighted by real inputs have.
std::vector<float> error_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  const int64_t k = std::min<int64_t>(12, std::min(rows, cols));
  const std::vector<float> u = gaussian(rows * k, seed), v = gaussian(k * cols, seed + 1),
                           noise = gaussian(rows * cols, seed + 2, 0.05f);
  std::vector<float> e(noise);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t c = 0; c < cols; ++c) e[r * cols + c] += u[r * k + j] * v[j * cols + c] / float(1 + j);
  return e;
}

constexpr double kDamp = 1.0;  // algo/error_compensation.h

double mean_diag(const std::vector<float>& h, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += h[i * n + i];
  return s / static_cast<double>(n);
}

// tr(R·(H + δI)·Rᵀ) for R = E − B·A (δ = H's mean diagonal, the damping the fit uses).
double weighted_residual(const std::vector<float>& e, const LowRankFactors& f, const std::vector<float>* h) {
  const int64_t R = f.rows, C = f.cols;
  std::vector<double> res(static_cast<size_t>(R * C));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) {
      double ba = 0;
      for (int64_t j = 0; j < f.rank; ++j) ba += double(f.b[r * f.rank + j]) * f.a[j * C + c];
      res[r * C + c] = e[r * C + c] - ba;
    }
  double total = 0;
  if (!h) {
    for (const double v : res) total += v * v;
    return total;
  }
  const double damp = kDamp * mean_diag(*h, C);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t i = 0; i < C; ++i) {
      double hi = 0;
      for (int64_t j = 0; j < C; ++j) hi += ((*h)[i * C + j] + (i == j ? damp : 0.0)) * res[r * C + j];
      total += res[r * C + i] * hi;
    }
  return total;
}

// The minimum over rank-r M of tr((E − M)(H + δI)(E − M)ᵀ), EoRA's way: H + δI = QΛQᵀ, then the
// tail Σ_{j>r} σ_j² of E·Q·√Λ.
double eora_minimum(const std::vector<float>& e, int64_t R, int64_t C, const std::vector<float>& h, int64_t rank) {
  std::vector<double> q(h.begin(), h.end()), lambda(static_cast<size_t>(C));
  const double damp = kDamp * mean_diag(h, C);
  for (int64_t i = 0; i < C; ++i) q[i * C + i] += damp;
  EXPECT_EQ(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', C, q.data(), C, lambda.data()), 0);
  std::vector<double> m(static_cast<size_t>(R * C), 0.0);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < C; ++k) {
      double s = 0;
      for (int64_t i = 0; i < C; ++i) s += double(e[r * C + i]) * q[i * C + k];
      m[r * C + k] = s * std::sqrt(lambda[k]);
    }
  const int64_t n = std::min(R, C);
  std::vector<double> s(static_cast<size_t>(n)), superb(static_cast<size_t>(n));
  EXPECT_EQ(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', R, C, m.data(), C, s.data(), nullptr, 1, nullptr, 1, superb.data()), 0);
  double tail = 0;
  for (int64_t j = rank; j < n; ++j) tail += s[j] * s[j];
  return tail;
}

LowRankFactors fit(const std::vector<float>& e, int64_t R, int64_t C, const std::vector<float>* h, int64_t rank) {
  const std::vector<float> zero(e.size(), 0.0f);  // W = E, Ŵ = 0: the error is E
  return fit_error_correction(e.data(), zero.data(), R, C, h ? h->data() : nullptr, rank);
}

TEST(ErrorCompensation, WeightedFitReachesTheEoraMinimum) {
  for (const auto& [R, C, rank] : {std::tuple<int64_t, int64_t, int64_t>{40, 24, 4}, {17, 33, 1}, {24, 24, 8}}) {
    const std::vector<float> e = error_matrix(R, C, 5), h = input_stats(C, 3 * C, 6);
    const LowRankFactors f = fit(e, R, C, &h, rank);
    const double got = weighted_residual(e, f, &h), best = eora_minimum(e, R, C, h, rank);
    const double none = weighted_residual(e, LowRankFactors{rank, R, C, std::vector<float>(R * rank), std::vector<float>(rank * C), {}}, &h);
    // fp16 factors cost a little above the exact minimum; far below no correction at all
    EXPECT_NEAR(got, best, 2e-3 * none) << R << "x" << C << " r" << rank;
    EXPECT_GE(got, best * (1 - 1e-9)) << R << "x" << C << " r" << rank;
    // and below the unweighted SVD's correction of the same rank, measured in the metric of H
    const LowRankFactors plain = fit(e, R, C, nullptr, rank);
    EXPECT_LT(got, weighted_residual(e, plain, &h)) << R << "x" << C << " r" << rank;
  }
}

TEST(ErrorCompensation, WithoutStatisticsItIsTheTruncatedSvd) {
  const int64_t R = 30, C = 20, rank = 5;
  const std::vector<float> e = error_matrix(R, C, 9);
  const LowRankFactors f = fit(e, R, C, nullptr, rank);
  const LowRankFactors exact = truncated_svd(e.data(), R, C, rank);
  double tail = 0;
  for (size_t j = rank; j < exact.singular_values.size(); ++j) tail += exact.singular_values[j] * exact.singular_values[j];
  EXPECT_NEAR(weighted_residual(e, f, nullptr), tail, 2e-3 * tail + 1e-6);
  ASSERT_EQ(f.singular_values.size(), static_cast<size_t>(rank));
  for (int64_t j = 0; j < rank; ++j) EXPECT_NEAR(f.singular_values[j], exact.singular_values[j], 1e-5 * exact.singular_values[0]);
}

TEST(ErrorCompensation, FullRankLeavesOnlyFp16Rounding) {
  const int64_t R = 12, C = 9;
  const std::vector<float> e = error_matrix(R, C, 11), h = input_stats(C, 40, 12);
  const LowRankFactors f = fit(e, R, C, &h, C);
  double energy = 0;
  for (const float v : e) energy += double(v) * v;
  EXPECT_LT(weighted_residual(e, f, nullptr), 1e-5 * energy);
}

TEST(ErrorCompensation, RandomizedSvdMatchesTheExactOneOnLargeMatrices) {
  const int64_t R = 300, C = 288, rank = 8;  // > 256 wide and rank < min / 4: randomized
  const std::vector<float> e = error_matrix(R, C, 13);
  const LowRankFactors f = fit(e, R, C, nullptr, rank);
  const LowRankFactors exact = truncated_svd(e.data(), R, C, rank);
  double tail = 0;
  for (size_t j = rank; j < exact.singular_values.size(); ++j) tail += exact.singular_values[j] * exact.singular_values[j];
  EXPECT_LT(weighted_residual(e, f, nullptr), tail * 1.001);
  for (int64_t j = 0; j < rank; ++j) EXPECT_NEAR(f.singular_values[j], exact.singular_values[j], 1e-4 * exact.singular_values[0]);
  // Deterministic.
  const LowRankFactors again = fit(e, R, C, nullptr, rank);
  EXPECT_EQ(again.a, f.a);
  EXPECT_EQ(again.b, f.b);
}

TEST(ErrorCompensation, FactorsAreBalancedFp16Values) {
  const int64_t R = 64, C = 48, rank = 4;
  std::vector<float> e = error_matrix(R, C, 15);
  for (float& v : e) v *= 1e-3f;  // a small error and large inputs: unbalanced without care
  std::vector<float> h = input_stats(C, 100, 16);
  for (float& v : h) v *= 1e4f;
  const LowRankFactors f = fit(e, R, C, &h, rank);
  for (const float v : f.a) EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v);
  for (const float v : f.b) EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v);
  for (int64_t j = 0; j < rank; ++j) {
    double b2 = 0, a2 = 0;
    for (int64_t r = 0; r < R; ++r) b2 += double(f.b[r * rank + j]) * f.b[r * rank + j];
    for (int64_t c = 0; c < C; ++c) a2 += double(f.a[j * C + c]) * f.a[j * C + c];
    EXPECT_NEAR(std::sqrt(b2 / R) / std::sqrt(a2 / C), 1.0, 0.01) << j;
  }
}

TEST(ErrorCompensation, BadRanksThrow) {
  const std::vector<float> e = error_matrix(6, 4, 1);
  EXPECT_THROW(fit(e, 6, 4, nullptr, 0), Error);
  EXPECT_THROW(fit(e, 6, 4, nullptr, 5), Error);
  test::expect_error([&] { fit(e, 6, 4, nullptr, 5); }, "rank must be in [1, 4]");
}

}  // namespace
}  // namespace lowbit
