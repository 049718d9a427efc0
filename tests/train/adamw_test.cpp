// AdamW and the learning-rate schedules (train/adamw.h) against plain double-precision
// re-derivations of torch.optim.AdamW / HF's schedules on small tensors.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "base/error.h"
#include "train/adamw.h"

namespace lowbit {
namespace {

LoraAdapter tiny_adapter() {
  LoraParam p;
  p.module = "layers.0.q_proj";
  p.proj = "q_proj";
  p.rows = 3;
  p.cols = 2;
  p.rank = 1;
  p.a = {0.5f, -0.25f};
  p.b = {0.1f, 0.0f, -0.3f};
  LoraConfig lc;
  lc.rank = 1;
  return LoraAdapter::from_params(lc, {p});
}

TEST(AdamW, SchedulesMatchTheirFormulas) {
  AdamWOptions o;
  o.lr = 1e-3;
  o.warmup_steps = 4;
  o.total_steps = 14;
  EXPECT_EQ(lr_at(o, 0), 0.0);  // HF's warmup starts at 0
  EXPECT_DOUBLE_EQ(lr_at(o, 2), 0.5e-3);
  EXPECT_DOUBLE_EQ(lr_at(o, 4), 1e-3);
  EXPECT_DOUBLE_EQ(lr_at(o, 13), 1e-3);
  o.schedule = LrSchedule::Linear;
  EXPECT_DOUBLE_EQ(lr_at(o, 9), 0.5e-3);
  EXPECT_DOUBLE_EQ(lr_at(o, 14), 0.0);
  o.schedule = LrSchedule::Cosine;
  EXPECT_NEAR(lr_at(o, 9), 0.5e-3, 1e-15);
  EXPECT_NEAR(lr_at(o, 6), 1e-3 * 0.5 * (1 + std::cos(std::numbers::pi * 0.2)), 1e-15);
  EXPECT_EQ(parse_lr_schedule("cosine"), LrSchedule::Cosine);
  EXPECT_THROW(parse_lr_schedule("cosin"), Error);
}

// Two steps with weight decay and clipping against the update written out in double.
TEST(AdamW, StepsMatchTheReferenceUpdate) {
  LoraAdapter ad = tiny_adapter();
  AdamWOptions o;
  o.lr = 0.01;
  o.weight_decay = 0.1;
  o.clip = 0.5;
  o.total_steps = 2;
  AdamW opt(ad, o);
  std::vector<double> w = {0.5, -0.25, 0.1, 0.0, -0.3}, m(5, 0), v(5, 0);
  const std::vector<std::vector<double>> grads = {{0.3, -0.4, 0.2, 0.1, 0.0}, {0.01, 0.02, -0.03, 0.0, 0.04}};
  for (int t = 1; t <= 2; ++t) {
    std::vector<double> g = grads[t - 1];
    ad.params()[0].grad_a = {static_cast<float>(g[0]), static_cast<float>(g[1])};
    ad.params()[0].grad_b = {static_cast<float>(g[2]), static_cast<float>(g[3]), static_cast<float>(g[4])};
    double norm = 0;
    for (double x : g) norm += x * x;
    norm = std::sqrt(norm);
    if (norm > o.clip)
      for (double& x : g) x *= o.clip / (norm + 1e-6);
    const StepStats st = opt.step(ad);
    EXPECT_NEAR(st.grad_norm, norm, 1e-7);
    for (size_t i = 0; i < 5; ++i) {
      w[i] -= o.lr * o.weight_decay * w[i];
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      w[i] -= o.lr * (m[i] / (1 - std::pow(0.9, t))) / (std::sqrt(v[i] / (1 - std::pow(0.999, t))) + 1e-8);
    }
    const LoraParam& p = ad.params()[0];
    const float got[5] = {p.a[0], p.a[1], p.b[0], p.b[1], p.b[2]};
    for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(got[i], w[i], 2e-7) << "step " << t << " element " << i;
  }
  EXPECT_EQ(opt.steps_done(), 2);
}

TEST(AdamW, RejectsBadOptions) {
  const LoraAdapter ad = tiny_adapter();
  auto with = [](auto f) {
    AdamWOptions o;
    f(o);
    return o;
  };
  EXPECT_THROW(AdamW(ad, with([](AdamWOptions& o) { o.lr = 0; })), Error);
  EXPECT_THROW(AdamW(ad, with([](AdamWOptions& o) { o.lr = NAN; })), Error);
  EXPECT_THROW(AdamW(ad, with([](AdamWOptions& o) { o.beta2 = 1.0; })), Error);
  EXPECT_THROW(AdamW(ad, with([](AdamWOptions& o) { o.clip = -1; })), Error);
  EXPECT_THROW(AdamW(ad, with([](AdamWOptions& o) { o.total_steps = 0; })), Error);
}

}  // namespace
}  // namespace lowbit
