// SmoothQuant's scales: the documented formula, alpha = 0.5 equalising each channel's activation
// and weight maxima after the fold, alpha = 1 moving all of the activation range into the
// weights, dead channels keeping 1, the column maxima taken over every linear of the group,
// input errors; and InputStats' per-channel max |x|.
#include "algo/smooth_quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "algo/input_stats.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = n(g);
  return w;
}

float column_max(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t c) {
  float m = 0;
  for (int64_t r = 0; r < rows; ++r) m = std::max(m, std::fabs(w[r * cols + c]));
  return m;
}

TEST(SmoothQuant, ScalesFollowTheFormulaOverEveryLinearOfTheGroup) {
  const int64_t cols = 37;
  const std::vector<float> a = random_matrix(5, cols, 1), b = random_matrix(11, cols, 2);
  std::vector<float> x_max(cols);
  for (int64_t c = 0; c < cols; ++c) x_max[c] = 0.1f + 0.37f * static_cast<float>(c % 7) + (c == 3 ? 40.0f : 0.0f);
  const SmoothLinearRef refs[] = {{a.data(), 5}, {b.data(), 11}};
  for (double alpha : {0.5, 0.8, 0.25}) {
    const std::vector<float> s = smooth_scales(refs, cols, x_max.data(), alpha);
    ASSERT_EQ(s.size(), static_cast<size_t>(cols));
    for (int64_t c = 0; c < cols; ++c) {
      const double w = std::max(column_max(a, 5, cols, c), column_max(b, 11, cols, c));
      const double expect = std::pow(x_max[c], alpha) / std::pow(w, 1.0 - alpha);
      EXPECT_NEAR(s[c], expect, 1e-6 * expect) << "alpha " << alpha << " c " << c;
    }
  }
}

TEST(SmoothQuant, HalfEqualisesActivationAndWeightMaxima) {
  const int64_t rows = 9, cols = 64;
  std::vector<float> w = random_matrix(rows, cols, 3);
  std::vector<float> x_max(cols);
  for (int64_t c = 0; c < cols; ++c) x_max[c] = c % 16 == 0 ? 50.0f : 0.5f + 0.01f * static_cast<float>(c);
  const SmoothLinearRef ref{w.data(), rows};
  const std::vector<float> s = smooth_scales({&ref, 1}, cols, x_max.data(), 0.5);
  for (int64_t c = 0; c < cols; ++c) {
    const double act_after = x_max[c] / s[c], w_after = column_max(w, rows, cols, c) * s[c];
    EXPECT_NEAR(act_after, w_after, 1e-5 * w_after) << c;
  }
  // alpha = 1: every channel's activation maximum becomes 1 (the whole range moved into W)
  const std::vector<float> s1 = smooth_scales({&ref, 1}, cols, x_max.data(), 1.0);
  for (int64_t c = 0; c < cols; ++c) EXPECT_NEAR(x_max[c] / s1[c], 1.0, 1e-6) << c;
}

TEST(SmoothQuant, DeadChannelsKeepScaleOne) {
  const int64_t rows = 4, cols = 6;
  std::vector<float> w = random_matrix(rows, cols, 4);
  for (int64_t r = 0; r < rows; ++r) w[r * cols + 2] = 0.0f;  // column 2 has no weights
  const std::vector<float> x_max = {1.0f, 0.0f, 3.0f, 2.0f, 1e-9f, 5.0f};  // channel 1 never seen
  const SmoothLinearRef ref{w.data(), rows};
  const std::vector<float> s = smooth_scales({&ref, 1}, cols, x_max.data(), 0.5);
  EXPECT_EQ(s[1], 1.0f);
  EXPECT_EQ(s[2], 1.0f);
  for (float v : s) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GT(v, 0.0f);
  }
  // tiny maxima are floored at 1e-5 (as the reference implementation clamps) before the power
  const double w4 = column_max(w, rows, cols, 4);
  EXPECT_NEAR(s[4], std::sqrt(1e-5) / std::sqrt(w4), 1e-6);
}

TEST(SmoothQuant, InputErrors) {
  const std::vector<float> w = random_matrix(2, 3, 5), x = {1, 2, 3};
  const SmoothLinearRef ref{w.data(), 2};
  test::expect_error([&] { smooth_scales({}, 3, x.data(), 0.5); }, "no linears", "algo");
  test::expect_error([&] { smooth_scales({&ref, 1}, 3, x.data(), 0.0); }, "alpha", "algo");
  test::expect_error([&] { smooth_scales({&ref, 1}, 3, x.data(), 1.5); }, "alpha", "algo");
  test::expect_error([&] { smooth_scales({&ref, 1}, 3, x.data(), std::nan("")); }, "alpha", "algo");
  test::expect_error([&] { smooth_scales({&ref, 1}, 3, nullptr, 0.5); }, "empty", "algo");
  const SmoothLinearRef empty{nullptr, 2};
  test::expect_error([&] { smooth_scales({&empty, 1}, 3, x.data(), 0.5); }, "empty linear", "algo");
  const std::vector<float> bad = {1, -2, 3}, nan = {1, std::nanf(""), 3};
  test::expect_error([&] { smooth_scales({&ref, 1}, 3, bad.data(), 0.5); }, "finite", "algo");
  test::expect_error([&] { smooth_scales({&ref, 1}, 3, nan.data(), 0.5); }, "finite", "algo");
}

TEST(InputStats, MaxAbsPerChannel) {
  InputStats st(3);
  EXPECT_EQ(st.max_abs(), (std::vector<float>{0, 0, 0}));
  const float x1[] = {1, -4, 0.5f, -2, 3, 0.25f};
  st.add(x1, 2);
  EXPECT_EQ(st.max_abs(), (std::vector<float>{2, 4, 0.5f}));
  const float x2[] = {std::nanf(""), 1, -7};
  st.add(x2, 1);
  const float x3[] = {9, 1, 1};
  st.add(x3, 1);
  const std::vector<float> m = st.max_abs();
  EXPECT_TRUE(std::isnan(m[0]));  // a NaN input stays visible
  EXPECT_EQ(m[1], 4.0f);
  EXPECT_EQ(m[2], 7.0f);
}

}  // namespace
}  // namespace lowbit
