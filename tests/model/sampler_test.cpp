#include <gtest/gtest.h>

#include <map>

#include "base/error.h"
#include "model/sampler.h"

namespace lowbit {
namespace {

SamplerParams params(float temp, int top_k, float top_p, float min_p) {
  SamplerParams p;
  p.temperature = temp;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.seed = 7;
  return p;
}

TEST(Sampler, TemperatureZeroIsArgmax) {
  Sampler s(params(0.0f, 0, 1.0f, 0.0f));
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, TopKOneIsArgmaxAtAnyTemperature) {
  Sampler s(params(5.0f, 1, 1.0f, 0.0f));
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  // p = softmax([0, ln 3]) = [0.25, 0.75]; 20000 draws: sd of the count is ~61.
  Sampler s(params(1.0f, 0, 1.0f, 0.0f));
  const std::vector<float> l = {0.0f, std::log(3.0f)};
  int ones = 0;
  for (int i = 0; i < 20000; ++i) ones += s.sample(l, {}) == 1;
  EXPECT_NEAR(ones, 15000, 300);
}

TEST(Sampler, TopPAndMinPCutTheTail) {
  // probs ~ [0.5, 0.3, 0.15, 0.05]
  const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  Sampler top_p(params(1.0f, 0, 0.75f, 0.0f));  // keeps {0, 1}: mass 0.8 >= 0.75
  Sampler min_p(params(1.0f, 0, 1.0f, 0.4f));   // keeps p >= 0.2: {0, 1}
  std::map<int, int> a, b;
  for (int i = 0; i < 3000; ++i) {
    ++a[top_p.sample(l, {})];
    ++b[min_p.sample(l, {})];
  }
  EXPECT_EQ(a.count(2) + a.count(3), 0u);
  EXPECT_EQ(b.count(2) + b.count(3), 0u);
  EXPECT_GT(a[1], 0);
  EXPECT_GT(b[1], 0);
}

TEST(Sampler, RepeatPenaltyDemotesRecentTokens) {
  Sampler s(params(0.0f, 0, 1.0f, 0.0f));
  SamplerParams p = params(0.0f, 0, 1.0f, 0.0f);
  p.repeat_penalty = 2.0f;
  Sampler pen(p);
  const std::vector<float> l = {1.5f, 2.0f};
  const std::vector<int32_t> hist = {1};
  EXPECT_EQ(s.sample(l, hist), 1);
  EXPECT_EQ(pen.sample(l, hist), 0);  // 2.0 / 2 = 1.0 < 1.5
}

TEST(Sampler, SameSeedSameStream) {
  const std::vector<float> l = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f};
  Sampler a(params(1.0f, 0, 1.0f, 0.0f)), b(params(1.0f, 0, 1.0f, 0.0f));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(l, {}), b.sample(l, {}));
}

TEST(Sampler, RejectsImpossibleParameters) {
  EXPECT_THROW(Sampler(params(-1.0f, 0, 1.0f, 0.0f)), Error);
  EXPECT_THROW(Sampler(params(1.0f, 0, 0.0f, 0.0f)), Error);
  EXPECT_THROW(Sampler(params(1.0f, 0, 1.5f, 0.0f)), Error);
  EXPECT_THROW(Sampler(params(1.0f, 0, 1.0f, 2.0f)), Error);
}

}  // namespace
}  // namespace lowbit
