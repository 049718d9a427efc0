#include <gtest/gtest.h>

#include "base/error.h"
#include "pipeline/recipe.h"
#include "testutil.h"

namespace lowbit {
namespace {

TEST(Recipe, ParsesAndPrints) {
  for (const char* s : {"rtn:int4:g128", "rtn:int4:g128:clip", "rtn:nf4:g64:dq", "rtn:int3:g64:asym", "f16", "bf16", "f32",
                        "imatrix:int4:g128", "gptq:int3:g128", "gptq:int3:g128:noact", "gptq:int4:g64:asym:clip",
                        "gptq:nf4:g64:clip:noact", "awq:int4:g128", "awq:nf4:g64:dq"})
    EXPECT_EQ(parse_recipe(s).to_string(), s);
  const Recipe r = parse_recipe("rtn:int4:g128:clip");
  EXPECT_EQ(r.algorithm, "rtn");
  EXPECT_TRUE(r.clip);
  EXPECT_FALSE(r.calibrated());
  const Recipe g = parse_recipe("gptq:int3:g128:noact");
  EXPECT_TRUE(g.calibrated());
  EXPECT_FALSE(g.act_order);
  EXPECT_TRUE(parse_recipe("gptq:int3:g128").act_order);
  EXPECT_EQ(r.spec.bits, 4);
  EXPECT_EQ(r.spec.group, 128);
}

TEST(Recipe, LowRankCorrectionOption) {
  for (const char* s : {"gptq:int2:g64:asym:lr16", "rtn:int3:g128:clip:lr1", "gptq:e8p:g64:noact:lr4096", "imatrix:int4:g128:lr8",
                        "awq:int4:g128:lr32", "gptq:nf4:g64:dq:clip:noact:lr2"})
    EXPECT_EQ(parse_recipe(s).to_string(), s);
  EXPECT_EQ(parse_recipe("gptq:int2:g64:lr16").low_rank, 16);
  EXPECT_EQ(parse_recipe("gptq:int2:g64").low_rank, 0);
  test::expect_error([] { parse_recipe("gptq:int2:g64:lr0"); }, "rank must be in [1, 4096]");
  test::expect_error([] { parse_recipe("gptq:int2:g64:lr5000"); }, "rank must be in [1, 4096]");
  for (const char* s : {"gptq:int2:g64:lr", "gptq:int2:g64:lrx", "gptq:int2:g64:lr8:clip", "gptq:int2:g64:lr8:lr8", "f16:lr8",
                        "gptq:int2:lr8:g64", "gptq:int2:g64:lr-1"})
    EXPECT_THROW(parse_recipe(s), Error) << s;
  const RecipePlan plan("gptq:int2:g64:lr8:rot", {"layers\\.0\\..*=gptq:int4:g128"});
  EXPECT_TRUE(plan.rotate());
  EXPECT_EQ(plan.for_tensor("layers.1.q_proj", true).low_rank, 8);
  EXPECT_EQ(plan.for_tensor("layers.0.q_proj", true).low_rank, 0);
  EXPECT_EQ(plan.for_tensor("lm_head", true).low_rank, 0);  // the edges keep the default plan
  EXPECT_EQ(plan.to_string(), "gptq:int2:g64:lr8:rot");
}

TEST(Recipe, RejectsBadRecipes) {
  for (const char* s : {"", "gptq", "foo:int4:g128", "rtn", "rtn:int9:g128", "rtn:int4:g7", "rtn:f16", "rtn:int4:g128:clip:clip",
                        "awq:int4:g128:clip", "imatrix:int4:g128:noact", "rtn:int4:g128:noact", "gptq:f16",
                        "gptq:int4:g128:noact:clip"})
    EXPECT_THROW(parse_recipe(s), Error) << s;
}

// A vector code book on a row it cannot hold (stories260K's down_proj reads 172 columns) falls
// back to int3 at the same group size, with the same algorithm; shapes that fit keep it.
TEST(RecipePlan, VectorFormatFallsBackOnRowsItCannotHold) {
  RecipePlan plan("gptq:e8p:g32", {"lm_head=rtn:e8p:g64"});
  plan.set_matrix_cols({{"layers.0.down_proj", 172}, {"layers.0.up_proj", 64}, {"lm_head", 60}});
  EXPECT_EQ(plan.for_tensor("layers.0.down_proj", true).to_string(), "gptq:int3:g32");
  EXPECT_EQ(plan.for_tensor("layers.0.up_proj", true).to_string(), "gptq:e8p:g32");
  EXPECT_EQ(plan.for_tensor("lm_head", true).to_string(), "rtn:int3:g64");
  EXPECT_EQ(plan.for_tensor("layers.1.q_proj", true).to_string(), "gptq:e8p:g32");  // no shape
  plan.assign("layers.0.down_proj", parse_recipe("awq:e8p:g128"));
  EXPECT_EQ(plan.for_tensor("layers.0.down_proj", true).to_string(), "awq:int3:g128");
  EXPECT_EQ(shape_fallback(parse_recipe("rtn:int4:g128"), 172).to_string(), "rtn:int4:g128");
  EXPECT_EQ(shape_fallback(parse_recipe("gptq:e8p:gc:bf16s"), 12).to_string(), "gptq:int3:gc:bf16s");
}

TEST(RecipePlan, HostileOverrideRegexIsRefused) {
  test::expect_error([] { RecipePlan("rtn:int4:g128", {std::string(40, '(') + std::string(40, ')') + "=f16"}); },
                     "more than 32 groups", "recipe");
  test::expect_error([] { RecipePlan("rtn:int4:g128", {"lm_head[=f16"}); }, "bad regex", "recipe");
}

TEST(RecipePlan, DefaultsAndOverrides) {
  RecipePlan plan("rtn:int4:g128", {"layers\\.[0-9]+\\.down_proj=rtn:int6:g128", "lm_head=f16"});
  EXPECT_EQ(plan.for_tensor("layers.3.q_proj", true).to_string(), "rtn:int4:g128");
  EXPECT_EQ(plan.for_tensor("layers.3.down_proj", true).to_string(), "rtn:int6:g128");
  EXPECT_EQ(plan.for_tensor("lm_head", true).to_string(), "f16");
  EXPECT_EQ(plan.for_tensor("embed_tokens", true).to_string(), "rtn:int6:g64:clip");
  EXPECT_EQ(plan.for_tensor("layers.0.attn_norm", false).to_string(), "f32");
  // The edges: two bits above the blocks, within [4, 8]; lm_head with the model's algorithm.
  RecipePlan plain("rtn:int3:g64", {});
  EXPECT_EQ(plain.for_tensor("lm_head", true).to_string(), "rtn:int5:g128:clip");
  EXPECT_EQ(plain.for_tensor("embed_tokens", true).to_string(), "rtn:int5:g64:clip");
  RecipePlan two("gptq:int2:g64:asym", {});
  EXPECT_EQ(two.for_tensor("lm_head", true).to_string(), "gptq:int4:g128");
  EXPECT_EQ(two.for_tensor("embed_tokens", true).to_string(), "rtn:int4:g64:clip");
  RecipePlan nf4("awq:nf4:g64", {});
  EXPECT_EQ(nf4.for_tensor("lm_head", true).to_string(), "awq:int6:g128");
  RecipePlan eight("rtn:int8:g32", {});
  EXPECT_EQ(eight.for_tensor("lm_head", true).to_string(), "rtn:int8:g32");
  EXPECT_EQ(eight.for_tensor("embed_tokens", true).to_string(), "rtn:int8:g128:clip");
  RecipePlan seven("gptq:int7:g128", {});
  EXPECT_EQ(seven.for_tensor("lm_head", true).to_string(), "gptq:int8:g128");
  RecipePlan half("f16", {});
  EXPECT_EQ(half.for_tensor("lm_head", true).to_string(), "f16");
  EXPECT_EQ(half.for_tensor("embed_tokens", true).to_string(), "f16");
  EXPECT_EQ(RecipePlan("f32", {}).for_tensor("embed_tokens", true).to_string(), "f32");
  EXPECT_THROW(RecipePlan("rtn:int4:g128", {"noequals"}), Error);
  EXPECT_FALSE(plan.needs_calibration({"embed_tokens", "layers.0.q_proj", "lm_head"}));
  RecipePlan mixed("rtn:int4:g128", {"layers\\.0\\.down_proj=gptq:int4:g128"});
  EXPECT_TRUE(mixed.needs_calibration({"layers.0.down_proj"}));
  EXPECT_FALSE(mixed.needs_calibration({"layers.1.down_proj"}));
  EXPECT_THROW(RecipePlan("rtn:int4:g128", {"([=f16"}), Error);
}

}  // namespace
}  // namespace lowbit
