// Rotation (algo/rotation.h): orthogonality for every size class (powers of two, odd sizes,
// Kronecker products such as 704 = 64·11 and 172 = 4·43), the fast paths against the dense
// matrix, inverses, determinism, and the incoherence a rotation buys.
#include "kernels/rotation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "testutil.h"

namespace lowbit {
namespace {

const int64_t kSizes[] = {1, 2, 3, 7, 12, 32, 64, 172, 256, 704};

TEST(Rotation, DenseIsOrthogonal) {
  for (int64_t n : kSizes) {
    const Rotation r = Rotation::random_hadamard(n, 5);
    EXPECT_EQ(r.hadamard_order() * r.dense_order(), n);
    EXPECT_EQ(r.dense_order() % 2, 1);
    const std::vector<double> q = r.dense();
    double worst = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t k = 0; k < n; ++k) dot += q[k * n + i] * q[k * n + j];  // (QᵀQ)[i, j]
        worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
      }
    EXPECT_LT(worst, 1e-12) << "n=" << n;
  }
}

TEST(Rotation, PowerOfTwoIsSignedHadamard) {
  const Rotation r = Rotation::random_hadamard(64, 1);
  const std::vector<double> q = r.dense();
  for (double v : q) EXPECT_NEAR(std::abs(v), 1.0 / 8.0, 1e-15);
}

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (float& v : m) v = g(rng);
  return m;
}

TEST(Rotation, FastPathsMatchDenseProducts) {
  for (int64_t n : kSizes) {
    const Rotation r = Rotation::random_hadamard(n, 9);
    const std::vector<double> q = r.dense();
    const int64_t rows = 3, cols = 5;
    const std::vector<float> x = random_matrix(rows, n, 2);
    std::vector<float> right = x, right_t = x;
    r.apply_right(right.data(), rows);
    r.apply_right_transposed(right_t.data(), rows);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double xq = 0, xqt = 0;
        for (int64_t k = 0; k < n; ++k) {
          xq += x[i * n + k] * q[k * n + j];
          xqt += x[i * n + k] * q[j * n + k];
        }
        // One fp32 rounding of a double result: |err| <= 2^-24 · |value| (+ tiny slack).
        EXPECT_NEAR(right[i * n + j], xq, 1e-7 * (1 + std::abs(xq))) << "n=" << n;
        EXPECT_NEAR(right_t[i * n + j], xqt, 1e-7 * (1 + std::abs(xqt))) << "n=" << n;
      }
    std::vector<float> m = random_matrix(n, cols, 3), left = m;
    r.apply_left_transposed(left.data(), cols);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < cols; ++c) {
        double v = 0;
        for (int64_t k = 0; k < n; ++k) v += q[k * n + i] * m[k * cols + c];  // (Qᵀ M)[i, c]
        EXPECT_NEAR(left[i * cols + c], v, 1e-7 * (1 + std::abs(v))) << "n=" << n;
      }
  }
}

// The fp32 run-time path against the double one, on every size class.
TEST(Rotation, Fp32PathMatchesDoublePath) {
  for (int64_t n : kSizes) {
    const Rotation r = Rotation::random_hadamard(n, 21);
    const int64_t rows = 5;
    const std::vector<float> x = random_matrix(rows, n, 4);
    std::vector<float> a = x, b = x;
    r.apply_right(a.data(), rows);
    std::vector<float> scratch(a.size());
    r.apply_right_f32(b.data(), rows, r.dense_order() > 1 ? scratch.data() : nullptr);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 2e-6 * (1 + std::abs(a[i]))) << "n=" << n;
  }
}

TEST(Rotation, TransposedUndoesRotation) {
  const Rotation r = Rotation::random_hadamard(704, 4);
  const std::vector<float> x = random_matrix(4, 704, 8);
  std::vector<float> y = x;
  r.apply_right(y.data(), 4);
  r.apply_right_transposed(y.data(), 4);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 2e-6f);
}

TEST(Rotation, DeterministicPerSeed) {
  EXPECT_EQ(Rotation::random_hadamard(172, 3).dense(), Rotation::random_hadamard(172, 3).dense());
  EXPECT_NE(Rotation::random_hadamard(172, 3).dense(), Rotation::random_hadamard(172, 4).dense());
}

// A row with one outlier 100x the rest: after rotation its max/rms ratio (kurtosis proxy) drops
// from ~sqrt(n)-scale to that of a Gaussian vector. Band: both sides, fixed seeds.
TEST(Rotation, SpreadsOutliers) {
  const int64_t n = 256;
  std::vector<float> w = random_matrix(1, n, 11);
  w[17] = 100.0f;
  auto peak_ratio = [&](const std::vector<float>& v) {
    double mx = 0, ss = 0;
    for (float x : v) {
      mx = std::max(mx, static_cast<double>(std::abs(x)));
      ss += static_cast<double>(x) * x;
    }
    return mx / std::sqrt(ss / n);
  };
  const double before = peak_ratio(w);
  Rotation::random_hadamard(n, 1).apply_right(w.data(), 1);
  const double after = peak_ratio(w);
  EXPECT_GT(before, 14.0);
  EXPECT_GT(after, 1.1);  // measured 1.38: ±100/16 everywhere plus the Gaussian part
  EXPECT_LT(after, 2.5);
}

TEST(Rotation, RejectsEmptySize) {
  test::expect_error([] { Rotation::random_hadamard(0, 1); }, "size must be >= 1", "rotation");
}

}  // namespace
}  // namespace lowbit
