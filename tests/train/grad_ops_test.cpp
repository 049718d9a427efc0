// Every backward op of train/grad_ops.h against central finite differences of its forward op
// (model/'s own rms_norm, apply_rope, causal_attention; the SwiGLU product; cross-entropy), in
// double precision: with step h = 1e-6 the truncation error is O(h²)·|f'''| ≈ 1e-12 and the
// rounding error ≈ 1e-16/h = 1e-10, so 1e-7 relative to the gradient's scale is a tight bound.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "model/attention.h"
#include "model/llama.h"
#include "train/grad_ops.h"

namespace lowbit {
namespace {

using Vec = std::vector<double>;

Vec random_vec(int64_t n, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, scale);
  Vec v(static_cast<size_t>(n));
  for (double& x : v) x = nd(rng);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks ∂f/∂x[i] == grad[i] for every i by central differences.
void expect_gradient(const std::function<double()>& f, Vec& x, const Vec& grad, const char* what) {
  constexpr double h = 1e-6;
  double scale = 1e-3;
  for (double g : grad) scale = std::max(scale, std::fabs(g));
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double fp = f();
    x[i] = keep - h;
    const double fm = f();
    x[i] = keep;
    ASSERT_NEAR((fp - fm) / (2 * h), grad[i], 1e-7 * scale) << what << " element " << i;
  }
}

LlamaConfig tiny_config(RopeStyle style) {
  LlamaConfig c;
  c.dim = 16;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 6;
  c.hidden_dim = 24;
  c.n_layers = 1;
  c.vocab_size = 11;
  c.rope_theta = 100.0f;
  c.rope_style = style;
  return c;
}

TEST(GradOps, RmsNormMatchesFiniteDifferences) {
  const int64_t n = 13;
  Vec x = random_vec(n, 1), w = random_vec(n, 2), dy = random_vec(n, 3);
  Vec dx(n), dw(n, 0.0), y(n);
  rms_norm_backward(x.data(), w.data(), n, 1e-5f, dy.data(), dx.data(), dw.data());
  auto f = [&] {
    rms_norm(x.data(), w.data(), n, 1e-5f, y.data());
    return dot(y, dy);
  };
  expect_gradient(f, x, dx, "dx");
  expect_gradient(f, w, dw, "dw");
}

TEST(GradOps, RopeBackwardIsTheTransposedRotation) {
  for (RopeStyle style : {RopeStyle::RotateHalf, RopeStyle::Interleaved}) {
    const LlamaConfig c = tiny_config(style);
    const auto inv = rope_inv_freq(c);
    const int64_t T = 5, n = T * c.n_heads * c.head_dim;
    Vec a = random_vec(n, 4), b = random_vec(n, 5);
    Vec ra = a, rb = b;
    apply_rope(c, inv, ra.data(), T, c.n_heads, 3);
    rope_backward(c, inv, rb.data(), T, c.n_heads, 3);
    EXPECT_NEAR(dot(ra, b), dot(a, rb), 1e-12 * std::sqrt(dot(a, a) * dot(b, b)));
    rope_backward(c, inv, ra.data(), T, c.n_heads, 3);  // and it undoes the rotation
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(ra[i], a[i], 1e-12);
  }
}

TEST(GradOps, CausalAttentionMatchesFiniteDifferences) {
  const LlamaConfig c = tiny_config(RopeStyle::RotateHalf);
  const int64_t T = 5, dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  Vec q = random_vec(T * dq, 6), k = random_vec(T * dkv, 7), v = random_vec(T * dkv, 8);
  const Vec dout = random_vec(T * dq, 9);
  Vec gq(q.size()), gk(k.size()), gv(v.size()), out(q.size());
  causal_attention_backward(c, q.data(), k.data(), v.data(), T, dout.data(), gq.data(), gk.data(), gv.data());
  auto f = [&] {
    causal_attention(c, static_cast<const double*>(q.data()), T, static_cast<const double*>(k.data()),
                     static_cast<const double*>(v.data()), 0, out.data());
    return dot(out, dout);
  };
  expect_gradient(f, q, gq, "dq");
  expect_gradient(f, k, gk, "dk");
  expect_gradient(f, v, gv, "dv");
}

TEST(GradOps, SwigluMatchesFiniteDifferences) {
  const int64_t n = 17;
  Vec g = random_vec(n, 10, 3.0), u = random_vec(n, 11), dh = random_vec(n, 12);
  Vec dg(n), du(n);
  swiglu_backward(g.data(), u.data(), dh.data(), n, dg.data(), du.data());
  auto f = [&] {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += dh[i] * g[i] / (1.0 + std::exp(-g[i])) * u[i];
    return s;
  };
  expect_gradient(f, g, dg, "dg");
  expect_gradient(f, u, du, "du");
}

TEST(GradOps, CrossEntropyMatchesFiniteDifferencesAndMasks) {
  const int64_t T = 4, V = 9;
  Vec z = random_vec(T * V, 13, 2.0), dz(z.size());
  const std::vector<int32_t> targets = {3, -1, 0, 8};
  const double loss = cross_entropy(z.data(), T, V, targets.data(), 0.5, dz.data());
  auto f = [&] { return 0.5 * cross_entropy(z.data(), T, V, targets.data(), 0.0, static_cast<double*>(nullptr)); };
  EXPECT_NEAR(0.5 * loss, f(), 1e-12);
  expect_gradient(f, z, dz, "dlogits");
  for (int64_t i = V; i < 2 * V; ++i) EXPECT_EQ(dz[i], 0.0);  // the masked row
  // By hand for one row: −log softmax.
  double lse = 0;
  for (int64_t i = 0; i < V; ++i) lse += std::exp(z[i]);
  EXPECT_NEAR(cross_entropy(z.data(), 1, V, targets.data(), 0.0, static_cast<double*>(nullptr)),
              std::log(lse) - z[3], 1e-12);
}

// The teacher's logits are fp32 (what the inference forward gives); the student's are double.
TEST(GradOps, KlDivergenceMatchesFiniteDifferencesAndMasks) {
  const int64_t T = 3, V = 7;
  Vec z = random_vec(T * V, 14, 2.0), dz(z.size());
  const Vec t64 = random_vec(T * V, 15, 2.0);
  std::vector<float> teacher(t64.begin(), t64.end());
  teacher[2 * V + 4] = -1e30f;  // a token the teacher rules out: 0·log 0 counts as 0
  const std::vector<int32_t> mask = {0, -1, 5};
  const double loss = kl_divergence(teacher.data(), z.data(), T, V, mask.data(), 0.25, dz.data());
  auto f = [&] { return 0.25 * kl_divergence(teacher.data(), z.data(), T, V, mask.data(), 0.0, static_cast<double*>(nullptr)); };
  EXPECT_NEAR(0.25 * loss, f(), 1e-12);
  expect_gradient(f, z, dz, "dstudent");
  for (int64_t i = V; i < 2 * V; ++i) EXPECT_EQ(dz[i], 0.0);  // the masked row
  // By hand for row 0, and zero when the student equals the teacher.
  double zp = 0, zq = 0, kl = 0;
  for (int64_t i = 0; i < V; ++i) zp += std::exp(double(teacher[i])), zq += std::exp(z[i]);
  for (int64_t i = 0; i < V; ++i) {
    const double p = std::exp(double(teacher[i])) / zp;
    kl += p * (std::log(p) - (z[i] - std::log(zq)));
  }
  EXPECT_NEAR(kl_divergence(teacher.data(), z.data(), 1, V, mask.data(), 0.0, static_cast<double*>(nullptr)), kl, 1e-12);
  const Vec same(teacher.begin(), teacher.begin() + V);
  EXPECT_NEAR(kl_divergence(teacher.data(), same.data(), 1, V, mask.data(), 0.0, static_cast<double*>(nullptr)), 0.0, 1e-12);
  EXPECT_GT(kl, 0.0);
}

}  // namespace
}  // namespace lowbit
