#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "eval/perplexity.h"

namespace lowbit {
namespace {

TEST(PlanWindows, NonOverlappingDropsTheTail) {
  const auto w = plan_windows(10, 4, 4);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].begin, 0);
  EXPECT_EQ(w[0].score_from, 1);
  EXPECT_EQ(w[1].begin, 4);
  EXPECT_EQ(w[1].end, 8);
  EXPECT_EQ(w[1].score_from, 5);  // a fresh window never scores its first token
}

TEST(PlanWindows, StridedWindowsScoreOnlyNewTargets) {
  const auto w = plan_windows(10, 4, 2);
  ASSERT_EQ(w.size(), 4u);  // begins 0, 2, 4, 6
  int64_t scored = 0;
  for (const auto& x : w) scored += x.end - x.score_from;
  EXPECT_EQ(w[1].score_from, 4);
  EXPECT_EQ(scored, 9);  // every target 1..9 exactly once
}

TEST(PlanWindows, RejectsBadArguments) {
  EXPECT_THROW(plan_windows(10, 1, 1), Error);
  EXPECT_THROW(plan_windows(10, 4, 5), Error);
  EXPECT_THROW(plan_windows(10, 4, 0), Error);
  EXPECT_THROW(plan_windows(3, 4, 4), Error);
}

TEST(TokenNll, MatchesClosedForm) {
  const std::vector<float> l = {1.0f, 2.0f, 3.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(token_nll(l, 0), lse - 1.0, 1e-12);
  EXPECT_NEAR(token_nll(l, 2), lse - 3.0, 1e-12);
  const std::vector<float> big = {1000.0f, 0.0f};  // no overflow
  EXPECT_NEAR(token_nll(big, 0), 0.0, 1e-12);
}

TEST(NllStats, PplAndStderr) {
  NllStats s;
  for (double x : {1.0, 2.0, 3.0}) s.add(x);
  EXPECT_NEAR(s.ppl(), std::exp(2.0), 1e-12);
  EXPECT_NEAR(s.ppl_stderr(), std::exp(2.0) * 1.0 / std::sqrt(3.0), 1e-12);
}

}  // namespace
}  // namespace lowbit
