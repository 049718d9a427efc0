// lowbit's fp32 LoRA training (forward, backward, clipping, AdamW, cosine warmup schedule)
// against a trajectory PyTorch computed in float64 with autograd and torch.optim.AdamW on the
// same model, batch and adapter initialisation (golden/make_lora_golden.py wrote
// golden/lora_ref_s.json; the test never runs PyTorch).
//
// Tolerance 1e-4 relative on every step's loss and gradient norm: fp32 sums over ≤ 352 terms
// carry ~1e-6 relative error per op and Adam's normalised updates keep the trajectories within
// ~1e-5, while a wrong gradient term, clip factor, bias correction or schedule step moves some
// step's loss by > 1e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/loader.h"
#include "testutil.h"
#include "train/adamw.h"
#include "train/lora_model.h"

namespace lowbit {
namespace {

LoraAdapter formula_adapter(const LlamaConfig& c) {
  LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8;
  LoraAdapter ad = LoraAdapter::init(c, lc, 0);
  int64_t k = 0;
  for (LoraParam& p : ad.params()) {
    for (size_t i = 0; i < p.a.size(); ++i) p.a[i] = static_cast<float>(0.05 * std::sin(0.7 * double(i) + 1.3 * double(k) + 0.1));
    for (size_t i = 0; i < p.b.size(); ++i) p.b[i] = static_cast<float>(0.02 * std::cos(0.3 * double(i) + 0.9 * double(k)));
    ++k;
  }
  return ad;
}

TEST(GoldenTraining, MatchesPyTorchFloat64Trajectory) {
  const auto g = nlohmann::json::parse(test::read_file(test::test_source_path("train/golden/lora_ref_s.json")));
  LoadedModel m = load_model(test::shared_path("models/ref-s"));
  LoraAdapter ad = formula_adapter(m.model->config());
  TrainBatch b;
  b.n_seq = g["n_seq"].get<int64_t>();
  b.len = g["len"].get<int64_t>();
  b.tokens = g["tokens"].get<std::vector<int32_t>>();
  b.targets = g["targets"].get<std::vector<int32_t>>();
  AdamWOptions o;
  o.lr = g["lr"].get<double>();
  o.weight_decay = g["weight_decay"].get<double>();
  o.clip = g["clip"].get<double>();
  o.warmup_steps = g["warmup"].get<int64_t>();
  o.schedule = parse_lr_schedule(g["schedule"].get<std::string>());
  o.total_steps = g["steps"].get<int64_t>();
  AdamW opt(ad, o);
  LoraModel lm(*m.model, ad);
  const double n = static_cast<double>(b.n_targets());
  for (int64_t s = 0; s < o.total_steps; ++s) {
    ad.zero_grads();
    const double loss = lm.forward_backward(b, 1.0 / n, 0).loss / n;
    const StepStats st = opt.step(ad);
    const auto& want = g["log"][static_cast<size_t>(s)];
    EXPECT_NEAR(loss, want["loss"].get<double>(), 1e-4 * want["loss"].get<double>()) << "step " << s;
    EXPECT_NEAR(st.grad_norm, want["grad_norm"].get<double>(), 1e-4 * want["grad_norm"].get<double>()) << "step " << s;
  }
  const double final_loss = lm.loss(b).loss / n;
  EXPECT_NEAR(final_loss, g["final_loss"].get<double>(), 1e-4 * g["final_loss"].get<double>());
}

}  // namespace
}  // namespace lowbit
