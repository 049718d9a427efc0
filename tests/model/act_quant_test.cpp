// Activation quantization as an evaluation mode: parsing, the rounding itself, and its cost on a
// real model's logits (two-sided bands).
#include "model/act_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "base/error.h"
#include "model/llama.h"
#include "model/loader.h"
#include "logits_kl.h"
#include "testutil.h"

namespace lowbit {
namespace {

TEST(ActQuant, ParsesAndNames) {
  EXPECT_FALSE(parse_act_quant("").enabled());
  EXPECT_FALSE(parse_act_quant("none").enabled());
  const ActQuant a = parse_act_quant("int4:g128");
  EXPECT_EQ(a.bits, 4);
  EXPECT_EQ(a.group, 128);
  EXPECT_EQ(act_quant_name(a), "int4:g128");
  EXPECT_EQ(act_quant_name(parse_act_quant("int8")), "int8");
  for (const char* bad : {"int1", "int9", "int16", "fp8", "int4:128", "int4:g0", "int4:g", "int4:gx", "int4:g99999999"})
    test::expect_error([&] { parse_act_quant(bad); }, "activation quantization", "model");
}

// Each value within half a step of its group's scale; the largest magnitude exactly kept; groups
// (the last one short) scaled independently; zeros and non-finite groups left alone.
TEST(ActQuant, RoundsEachGroupToItsOwnGrid) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> d(0, 1);
  const int64_t T = 3, n = 70;
  std::vector<float> x(T * n);
  for (float& v : x) v = d(rng);
  x[5] = 40.0f;  // an outlier in the first group of row 0
  for (int bits : {8, 4, 2}) {
    for (int64_t group : {int64_t{0}, int64_t{32}}) {
      std::vector<float> y = x;
      fake_quantize_rows(ActQuant{bits, group}, y.data(), T, n);
      const int64_t g = group ? group : n;
      const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t g0 = 0; g0 < n; g0 += g) {
          float amax = 0;
          for (int64_t i = g0; i < std::min(n, g0 + g); ++i) amax = std::max(amax, std::fabs(x[t * n + i]));
          const float step = amax / qmax;
          for (int64_t i = g0; i < std::min(n, g0 + g); ++i) {
            ASSERT_LE(std::fabs(y[t * n + i] - x[t * n + i]), 0.5f * step * (1 + 1e-5f)) << bits << " " << group;
            ASSERT_NEAR(std::nearbyint(y[t * n + i] / step), y[t * n + i] / step, 1e-3) << "on the grid";
          }
        }
    }
  }
  std::vector<float> z = {0, 0, 0, NAN, 1, 2};
  fake_quantize_rows(ActQuant{4, 3}, z.data(), 1, 6);
  EXPECT_EQ(z[0], 0.0f);
  EXPECT_TRUE(std::isnan(z[3]));
  EXPECT_EQ(z[4], 1.0f);  // the NaN group is left as it was
}

// ref-s logits with activations rounded: mean KL vs exact over 128 tokens in bands; int8 per token
// is nearly free, int4 per token costs far more, groups of 32 recover much of it.
TEST(ActQuant, ModelLogitsCost) {
  static const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  LlamaModel m(src);
  const std::unique_ptr<Tokenizer> tok = load_tokenizer_for(src, "");
  std::vector<int32_t> ids = tok->encode(test::read_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")).substr(0, 4000), true);
  ids.resize(128);
  const int64_t V = m.config().vocab_size;
  auto logits_with = [&](const char* act) {
    m.set_activation_quant(parse_act_quant(act));
    KvCache cache = m.new_cache(128);
    std::vector<float> out;
    m.forward(ids, cache, true, out);
    return out;
  };
  const std::vector<float> ref = logits_with("none");
  auto mean_kl = [&](const std::vector<float>& got) { return test::mean_kl(ref, got, 128, V); };
  const double a8 = mean_kl(logits_with("int8")), a4 = mean_kl(logits_with("int4")), a4g = mean_kl(logits_with("int4:g32"));
  std::printf("mean KL vs exact activations: int8 %.3g, int4 %.3g, int4:g32 %.3g\n", a8, a4, a4g);
  EXPECT_GT(a8, 1e-7);
  EXPECT_LT(a8, 1e-3);
  EXPECT_GT(a4, 20 * a8);
  EXPECT_LT(a4, 1.0);
  EXPECT_LT(a4g, a4);
  EXPECT_GT(a4g, a8);
  EXPECT_EQ(logits_with("none"), ref);  // off again: exact
}

}  // namespace
}  // namespace lowbit
