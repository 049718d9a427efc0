// Bit-exact agreement with llama.cpp's own dequantization on real llama-quantize output, for
// the block types lowbit reads but does not write (Q2_K, IQ4_XS, TQ1_0, TQ2_0), so that CI
// (which has no llama.cpp) still checks it. Each tests/io/data/llamacpp/<type>.gguf holds a few
// rows of ref-m tensors quantized by llama.cpp v0.5.0's llama-quantize, each followed by
// "<name>.want": the same rows decoded by ggml's own to_float (F32). How they were made:
// tests/io/data/llamacpp/README.md.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "io/gguf.h"
#include "io/tensor.h"
#include "testutil/testutil.h"

namespace lowbit {
namespace {

struct Golden {
  const char* file;
  DType type;
  int tensors;  // block tensors of `type` in the file
};

void check_golden(const Golden& g) {
  const GgufFile f(test::test_source_path(std::string("io/data/llamacpp/") + g.file));
  int checked = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.name.ends_with(".want")) continue;
    const TensorView v = f.view(t);
    EXPECT_EQ(v.dtype, g.type) << t.name;
    const TensorView w = f.view(t.name + ".want");
    ASSERT_EQ(w.dtype, DType::F32) << t.name;
    ASSERT_EQ(w.shape, v.shape) << t.name;
    const std::vector<float> got = to_f32(v), want = to_f32(w);
    ASSERT_EQ(got.size(), want.size());
    size_t differ = 0, positive = 0, negative = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      uint32_t a = 0, b = 0;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want[i], 4);
      if (a != b && differ++ < 5)
        ADD_FAILURE() << t.name << "[" << i << "]: " << got[i] << " != llama.cpp " << want[i];
      positive += want[i] > 0.0f;
      negative += want[i] < 0.0f;
    }
    EXPECT_EQ(differ, 0u) << t.name << ": " << differ << " of " << got.size() << " differ";
    // Real weights, not empty blocks (ternary rows here are ~85 % zeros).
    EXPECT_GT(positive, got.size() / 50) << t.name;
    EXPECT_GT(negative, got.size() / 50) << t.name;
    ++checked;
  }
  EXPECT_EQ(checked, g.tensors) << g.file;
}

TEST(GgmlGolden, Q2KMatchesLlamaCpp) {
  check_golden({"q2_k.gguf", DType::Q2_K, 3});
}
TEST(GgmlGolden, Iq4XsMatchesLlamaCpp) {
  check_golden({"iq4_xs.gguf", DType::IQ4_XS, 3});
}
TEST(GgmlGolden, Tq1MatchesLlamaCpp) {
  check_golden({"tq1_0.gguf", DType::TQ1_0, 3});
}
TEST(GgmlGolden, Tq2MatchesLlamaCpp) {
  check_golden({"tq2_0.gguf", DType::TQ2_0, 3});
}

}  // namespace
}  // namespace lowbit
