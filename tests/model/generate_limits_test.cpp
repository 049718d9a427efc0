// Generation and the KV cache against sizes far beyond the model's context (issue 14): a huge
// -n used to overflow the cache size product and write past a tiny buffer.
#include <gtest/gtest.h>

#include <vector>

#include "base/error.h"
#include "model/generate.h"
#include "model/llama.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

const LlamaModel& stories() {
  static const ModelSource src = open_model_source(test::shared_path("models/stories260K/stories260K.bin"));
  static const LlamaModel m(src);
  return m;
}

TEST(GenerateLimits, StopsAtTheContextInsteadOfOverflowing) {
  const LlamaModel& m = stories();
  const int64_t ctx = m.config().max_seq_len;
  GenerateOptions opt;
  opt.max_new_tokens = int64_t{1} << 62;
  opt.stop_at_eos = false;
  int64_t seen = 0;
  const GenerateStats st = generate(m, {1, 20, 30}, opt, [&](int32_t) { return ++seen > 0; });
  EXPECT_EQ(st.generated, ctx - 3);
  EXPECT_EQ(seen, ctx - 3);
  EXPECT_TRUE(st.hit_context);
  opt.max_new_tokens = 5;
  EXPECT_FALSE(generate(m, {1, 20, 30}, opt, [](int32_t) { return true; }).hit_context);
}

TEST(GenerateLimits, PromptLongerThanTheContextIsRefused) {
  const LlamaModel& m = stories();
  const std::vector<int32_t> prompt(static_cast<size_t>(m.config().max_seq_len + 1), 5);
  test::expect_error([&] { generate(m, prompt, GenerateOptions{}, [](int32_t) { return true; }); },
                     "more than the model's context of", "generate");
}

TEST(GenerateLimits, AbsurdCacheSizesAreRefused) {
  const LlamaModel& m = stories();
  for (int64_t capacity : {int64_t{0}, int64_t{-4}, int64_t{1} << 62, int64_t{4611686018427387904}})
    test::expect_error([&] { m.new_cache(capacity); }, "KV cache of", "model");
  EXPECT_NO_THROW(m.new_cache(m.config().max_seq_len));
}

}  // namespace
}  // namespace lowbit
