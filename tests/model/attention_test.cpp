// causal_attention_gemm (per-head GEMMs, training's forward) against causal_attention's
// per-query loop, the oracle, on awkward sizes: short and long T, a KV-cache offset pos0 > 0,
// grouped-query heads.
// Both sum q·k in fp32 in different orders (BLAS blocking vs a plain loop) and normalise in
// double, so outputs agree to a few fp32 ulps of the largest |v|: a 1e-5 relative bound is
// 100× that and fails any wrong mask, offset, head mapping or scale.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <random>

#include "model/attention.h"

namespace lowbit {
namespace {

TEST(Attention, GemmVersionMatchesPerQueryLoop) {
  LlamaConfig c;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.dim = 48;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (const int64_t T : {1, 3, 16, 17, 33, 70}) {
    for (const int64_t pos0 : {0, 5}) {
      const int64_t n_keys = pos0 + T, dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
      std::vector<float> q(T * dq), k(n_keys * dkv), v(n_keys * dkv), got(T * dq), want(T * dq);
      for (float& x : q) x = 2.0f * nd(rng);
      for (float& x : k) x = nd(rng);
      for (float& x : v) x = nd(rng);
      causal_attention_gemm(c, q.data(), T, k.data(), v.data(), pos0, got.data());
      causal_attention(c, q.data(), T, k.data(), v.data(), pos0, want.data());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5f * 4.0f) << "T " << T << " pos0 " << pos0 << " at " << i;
    }
  }
}

// The first query sees only key 0 (and, with pos0, the cached ones): the mask is causal.
TEST(Attention, FirstQueryAttendsOnlyToEarlierKeys) {
  LlamaConfig c;
  c.n_heads = 1;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  const int64_t T = 20;
  std::vector<float> q(T * 4, 0.5f), k(T * 4, 0.1f), v(T * 4), out(T * 4);
  for (int64_t j = 0; j < T; ++j)
    for (int d = 0; d < 4; ++d) v[j * 4 + d] = static_cast<float>(j);
  causal_attention_gemm(c, q.data(), T, k.data(), v.data(), 0, out.data());
  EXPECT_EQ(out[0], 0.0f);                     // only key 0
  EXPECT_NEAR(out[4 * 5], 2.5f, 1e-5f);        // uniform over keys 0..5 (equal scores)
  EXPECT_NEAR(out[4 * (T - 1)], 9.5f, 1e-5f);  // uniform over all T keys
}

// The fp32 softmax's exp against std::exp in double over its whole domain (x <= 0).
TEST(Attention, SoftmaxExpIsWithinItsBound) {
  double worst = 0;
  for (float x = 0.0f; x > -87.0f; x -= 0.000731f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(exp_nonpositive_f32(x) - want) / want);
  }
  EXPECT_LT(worst, 2.5e-7);
  EXPECT_GT(worst, 1e-9);  // an approximation, not a libm call
  EXPECT_EQ(exp_nonpositive_f32(0.0f), 1.0f);
  EXPECT_LT(exp_nonpositive_f32(-1000.0f), 1e-37f);
}

}  // namespace
}  // namespace lowbit
