// GGUF LoRA adapters for llama.cpp (export/gguf_lora.h): the keys and tensors llama.cpp's adapter
// loader reads, A and B unchanged except q/k rows of B moved to the GGUF base's interleaved-RoPE
// order, and alpha carrying rsLoRA's scale. (Applying the file in llama.cpp itself is checked
// side by side with the peer build; docs/BENCHMARKS.md.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "export/gguf_lora.h"
#include "io/gguf.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::vector<float> floats(const TensorView& t) {
  std::vector<float> v(t.nbytes / 4);
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

TEST(GgufLora, KeysTensorsAndRowOrder) {
  const LoadedModel m = load_model(test::shared_path("models/ref-s"));  // HF: rotate-half rows
  const LlamaConfig& c = m.model->config();
  LoraConfig lc;
  lc.rank = 4;
  lc.alpha = 8;
  lc.rslora = true;
  lc.targets = {"q_proj", "k_proj", "down_proj"};
  LoraAdapter ad = LoraAdapter::init(c, lc, 3);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (LoraParam& p : ad.params())
    for (float& v : p.b) v = nd(rng);
  const std::string path = test::temp_dir() + "/a.gguf";
  export_gguf_lora(ad, c, "test-adapter", path);

  const GgufFile f(path);
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  EXPECT_NEAR(f.get_float("adapter.lora.alpha"), 8.0 * 2.0, 1e-6);  // rsLoRA: alpha·√r so alpha'/r = alpha/√r
  EXPECT_EQ(f.tensors().size(), 2 * ad.params().size());
  const LoraParam& q = *ad.find("layers.1.q_proj");
  const TensorView a = f.view("blk.1.attn_q.weight.lora_a"), b = f.view("blk.1.attn_q.weight.lora_b");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{4, c.dim}));
  EXPECT_EQ(b.shape, (std::vector<int64_t>{c.n_heads * c.head_dim, 4}));
  EXPECT_EQ(floats(a), q.a);
  const std::vector<float> bq = floats(b);
  const std::vector<int64_t> order = rope_interleave_order(c.n_heads, c.head_dim);
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < 4; ++k) ASSERT_EQ(bq[r * 4 + k], q.b[order[r] * 4 + k]) << r;
  EXPECT_EQ(floats(f.view("blk.0.ffn_down.weight.lora_b")), ad.find("layers.0.down_proj")->b);  // not permuted
  EXPECT_EQ(f.find_tensor("blk.0.attn_v.weight.lora_a"), nullptr);
}

}  // namespace
}  // namespace lowbit
