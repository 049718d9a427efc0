// The training forward/backward of a base model plus LoRA adapters (train/lora_model.h), on the
// real stories260K model in fp32 and quantized to NF4 (double-quantized scales, the QLoRA base):
//  - with B = 0 the training loss equals the inference forward's cross-entropy;
//  - adapters attached to the inference model give the training forward's loss;
//  - the gradient of the whole model agrees with central differences of the fp32 loss along
//    random directions (see DirectionalDerivative for the bound);
//  - Linear::backward_input on packed weights equals dY · (decoded W).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/loader.h"
#include "pipeline/quantize.h"
#include "testutil.h"
#include "train/grad_ops.h"
#include "train/lora_model.h"

namespace lowbit {
namespace {

std::string stories_path() { return test::shared_path("models/stories260K/stories260K.bin"); }

// stories260K quantized once per process with `recipe`.
const std::string& quantized_stories(const std::string& recipe) {
  static std::map<std::string, std::string> paths;
  auto it = paths.find(recipe);
  if (it != paths.end()) return it->second;
  LoadedModel m = load_model(stories_path());
  QuantizeOptions opt;
  opt.recipe = recipe;
  const std::string out = test::temp_dir() + "/q.lowbit";
  quantize_model(m.source, *m.tokenizer, opt, out);
  return paths[recipe] = out;
}

TrainBatch test_batch(int64_t vocab) {
  TrainBatch b;
  b.n_seq = 2;
  b.len = 12;
  std::mt19937_64 rng(42);
  for (int64_t i = 0; i < b.n_seq * b.len; ++i) {
    b.tokens.push_back(static_cast<int32_t>(rng() % vocab));
    b.targets.push_back(i % 5 == 2 ? -1 : static_cast<int32_t>(rng() % vocab));
  }
  return b;
}

// Inference-side loss: each sequence through LlamaModel::forward with all logits.
double inference_loss(const LlamaModel& m, const TrainBatch& b) {
  double loss = 0;
  for (int64_t s = 0; s < b.n_seq; ++s) {
    KvCache cache = m.new_cache(b.len);
    std::vector<float> logits;
    m.forward(std::span(b.tokens.data() + s * b.len, b.len), cache, true, logits);
    loss += cross_entropy(logits.data(), b.len, m.config().vocab_size, b.targets.data() + s * b.len, 0.0,
                          static_cast<float*>(nullptr));
  }
  return loss;
}

void randomize_b(LoraAdapter& ad, uint64_t seed, double scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, scale);
  for (LoraParam& p : ad.params())
    for (float& v : p.b) v = static_cast<float>(nd(rng));
}

// fp32 base: the same arithmetic as inference up to summation order. Packed base: training
// multiplies by the decoded weights in fp32 while inference rounds activations to int8 blocks,
// which moves this loss by ~0.1%; a band of 0.5% still catches a wrong decode (a broken scale
// or zero moves it by tens of percent).
TEST(LoraModel, ZeroAdapterLossEqualsInferenceForward) {
  const std::pair<std::string, double> cases[] = {{stories_path(), 1e-5},
                                                  {quantized_stories("rtn:nf4:g64:dq"), 5e-3},
                                                  {quantized_stories("rtn:int3:g32:asym"), 5e-3}};
  for (const auto& [path, rel] : cases) {
    LoadedModel m = load_model(path);
    LoraAdapter ad = LoraAdapter::init(m.model->config(), LoraConfig{}, 1);
    LoraModel lm(*m.model, ad);
    const TrainBatch b = test_batch(m.model->config().vocab_size);
    const LossSum s = lm.loss(b);
    EXPECT_EQ(s.n_targets, b.n_targets());
    EXPECT_NEAR(s.loss, inference_loss(*m.model, b), rel * s.loss) << path;
  }
}

TEST(LoraModel, AttachedAdaptersGiveTheTrainingLoss) {
  LoadedModel m = load_model(stories_path());
  LoraConfig lc;
  lc.rank = 4;
  lc.targets = {"q_proj", "v_proj", "down_proj"};
  LoraAdapter ad = LoraAdapter::init(m.model->config(), lc, 2);
  randomize_b(ad, 3, 0.05);
  const TrainBatch b = test_batch(m.model->config().vocab_size);
  const double train_loss = LoraModel(*m.model, ad).loss(b).loss;
  const double base_loss = inference_loss(*m.model, b);
  ad.attach_to(*m.model);
  const double attached = inference_loss(*m.model, b);
  EXPECT_GT(std::fabs(train_loss - base_loss), 1e-3 * base_loss);  // the adapter matters
  EXPECT_NEAR(attached, train_loss, 1e-5 * train_loss);
}

// d/dε L(θ + ε·u) at 0 against (L(θ+h·u) − L(θ−h·u)) / 2h for random unit directions u. In fp32
// the loss (~70 here) carries rounding noise of ~1e-5 absolute; with h = 1e-2 that is ~1e-3 in
// the quotient, and the truncation error h²/6·L''' is of the same order, against directional
// derivatives of 0.1-10: a 2% band separates a right gradient from a wrong one (a dropped term
// or sign error moves it by far more). Dropout 0.1 is on, with its fixed seed on both sides.
TEST(LoraModel, GradientMatchesDirectionalFiniteDifferences) {
  for (const std::string& path : {stories_path(), quantized_stories("rtn:nf4:g64:dq")}) {
    LoadedModel m = load_model(path);
    LoraConfig lc;
    lc.rank = 3;
    lc.alpha = 6;
    lc.dropout = 0.1;
    LoraAdapter ad = LoraAdapter::init(m.model->config(), lc, 4);
    randomize_b(ad, 5, 0.05);
    LoraModel lm(*m.model, ad);
    const TrainBatch b = test_batch(m.model->config().vocab_size);
    lm.forward_backward(b, 1.0, 77);
    std::mt19937_64 rng(6);
    std::normal_distribution<double> nd;
    for (int dir = 0; dir < 3; ++dir) {
      std::vector<std::vector<float>> ua, ub;
      double norm2 = 0, analytic = 0;
      for (LoraParam& p : ad.params()) {
        ua.emplace_back(p.a.size());
        ub.emplace_back(p.b.size());
        for (float& v : ua.back()) {
          v = static_cast<float>(nd(rng));
          norm2 += double(v) * v;
        }
        for (float& v : ub.back()) {
          v = static_cast<float>(nd(rng));
          norm2 += double(v) * v;
        }
      }
      const double inv = 1.0 / std::sqrt(norm2);
      for (size_t i = 0; i < ad.params().size(); ++i) {
        const LoraParam& p = ad.params()[i];
        for (size_t j = 0; j < p.a.size(); ++j) analytic += p.grad_a[j] * ua[i][j] * inv;
        for (size_t j = 0; j < p.b.size(); ++j) analytic += p.grad_b[j] * ub[i][j] * inv;
      }
      auto shifted_loss = [&](double eps) {
        LoraAdapter copy = ad;
        for (size_t i = 0; i < copy.params().size(); ++i) {
          LoraParam& p = copy.params()[i];
          for (size_t j = 0; j < p.a.size(); ++j) p.a[j] += static_cast<float>(eps * ua[i][j] * inv);
          for (size_t j = 0; j < p.b.size(); ++j) p.b[j] += static_cast<float>(eps * ub[i][j] * inv);
        }
        return LoraModel(*m.model, copy).forward_backward(b, 0.0, 77).loss;
      };
      const double h = 1e-2;
      const double numeric = (shifted_loss(h) - shifted_loss(-h)) / (2 * h);
      EXPECT_NEAR(analytic, numeric, 0.02 * std::fabs(numeric) + 1e-3) << path << " direction " << dir;
    }
  }
}

TEST(LoraModel, PackedBackwardInputEqualsDecodedProduct) {
  LoadedModel m = load_model(quantized_stories("rtn:int3:g32:asym"));
  const Linear& w = m.model->weights().layers[1].down_proj;
  ASSERT_TRUE(w.is_packed());
  const int64_t T = 5, R = w.rows(), C = w.cols();
  std::vector<float> dy(T * R), dx(T * C), wd(R * C);
  std::mt19937_64 rng(8);
  std::normal_distribution<float> nd;
  for (float& v : dy) v = nd(rng);
  w.backward_input(dy.data(), T, dx.data());
  // The decoded weights, from the forward kernel itself: W[:, c] = matmul(e_c) (one-hot rows
  // quantize exactly: amax 1, code 127).
  for (int64_t c = 0; c < C; ++c) {
    std::vector<float> e(C, 0.0f), col(R);
    e[c] = 1.0f;
    w.matmul(e.data(), 1, nullptr, col.data());
    for (int64_t r = 0; r < R; ++r) wd[r * C + c] = col[r];
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, mag = 0;
      for (int64_t r = 0; r < R; ++r) {
        s += static_cast<double>(dy[t * R + r]) * wd[r * C + c];
        mag += std::fabs(static_cast<double>(dy[t * R + r]) * wd[r * C + c]);
      }
      ASSERT_NEAR(dx[t * C + c], s, 1e-5 * mag) << t << "," << c;
    }
}

TEST(LoraModel, RejectsMismatchedAdaptersAndBadTokens) {
  LoadedModel m = load_model(stories_path());
  LlamaConfig other = m.model->config();
  other.dim *= 2;
  LoraAdapter wrong = LoraAdapter::init(other, LoraConfig{}, 1);
  test::expect_error([&] { LoraModel(*m.model, wrong); }, "does not match", "train");
  LoraAdapter ad = LoraAdapter::init(m.model->config(), LoraConfig{}, 1);
  LoraModel lm(*m.model, ad);
  TrainBatch b = test_batch(m.model->config().vocab_size);
  b.tokens[3] = 1 << 20;
  test::expect_error([&] { lm.loss(b); }, "outside vocab", "train");
  LoraConfig bad;
  bad.targets = {"q_proj", "lm_head"};
  test::expect_error([&] { LoraAdapter::init(m.model->config(), bad, 1); }, "unknown target", "lora");
}

}  // namespace
}  // namespace lowbit
