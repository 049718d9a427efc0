// GGUF llama mapping: the real stories260K.gguf against the llama2.c checkpoint of the same
// model, and crafted tiny llama files for every mapping error.
#include "io/gguf_model.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/error.h"
#include "gguf_builder.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "io/model_source.h"
#include "testutil/testutil.h"

namespace lowbit {
namespace {

using test::GgufBuilder;

const std::string kStoriesGguf = "models/stories260K-gguf/stories260K.gguf";
const std::string kStoriesBin = "models/stories260K/stories260K.bin";

TEST(GgufStories, FileParses) {
  const GgufFile g(test::shared_path(kStoriesGguf));
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.kv_count(), 19u);
  ASSERT_EQ(g.tensors().size(), 48u);
  for (const GgufTensorInfo& t : g.tensors()) {
    EXPECT_EQ(t.ggml_type, 0u) << t.name;
    EXPECT_EQ(t.dtype, DType::F32) << t.name;
  }
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("llama.context_length"), 2048);
  EXPECT_EQ(g.get_int("llama.rope.dimension_count"), 8);
  EXPECT_EQ(g.get_int("llama.embedding_length"), 64);
  EXPECT_EQ(g.get_int("llama.feed_forward_length"), 172);
  EXPECT_EQ(g.get_int("llama.block_count"), 5);
  EXPECT_EQ(g.get_int("llama.attention.head_count"), 8);
  EXPECT_EQ(g.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(static_cast<float>(g.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(g.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(g.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  const auto& tokens = g.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(g.get_float_array("tokenizer.ggml.scores").size(), 512u);
  EXPECT_EQ(g.get_int_array("tokenizer.ggml.token_type").size(), 512u);
  EXPECT_EQ(g.find_tensor("token_embd.weight")->shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(g.find_tensor("blk.0.ffn_down.weight")->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(g.list_metadata().size(), 19u);
}

TEST(GgufStories, ModelConfig) {
  const ModelSource m = load_gguf_model(test::shared_path(kStoriesGguf));
  const LlamaConfig& c = m.config;
  EXPECT_EQ(m.format, "gguf");
  ASSERT_NE(m.gguf, nullptr);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 2048);
  EXPECT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.rope_style, RopeStyle::Interleaved);
  EXPECT_FALSE(c.tie_embeddings);  // the file stores output.weight (a copy of token_embd)
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_id, 2);
  EXPECT_EQ(m.tensors.size(), 48u);
}

// What we found: every tensor of stories260K.gguf, attn_q and attn_k included, is bit-identical
// to the llama2.c checkpoint; there is NO q/k row permutation between the two files. The GGUF
// was made from the llama2.c model (llama.cpp's convert-llama2c-to-ggml), whose weights are
// already in Meta's interleaved-RoPE order; llama.cpp's permutation is applied only when
// converting HF (rotate-half) checkpoints. Both files therefore use RopeStyle::Interleaved.
// output.weight is stored separately but equals token_embd (the .bin shares the classifier).
TEST(GgufStories, TensorsEqualLlama2cBitForBit) {
  const ModelSource g = load_gguf_model(test::shared_path(kStoriesGguf));
  const ModelSource b = load_llama2c_model(test::shared_path(kStoriesBin));
  ASSERT_EQ(b.tensors.size(), 47u);
  for (const auto& [name, bv] : b.tensors) {
    ASSERT_TRUE(g.has(name)) << name;
    const TensorView& gv = g.tensor(name);
    EXPECT_EQ(gv.shape, bv.shape) << name;
    ASSERT_EQ(gv.nbytes, bv.nbytes) << name;
    EXPECT_EQ(std::memcmp(gv.data, bv.data, bv.nbytes), 0) << name << " differs";
  }
  const TensorView& head = g.tensor("lm_head");
  const TensorView& emb = b.tensor("embed_tokens");
  ASSERT_EQ(head.nbytes, emb.nbytes);
  EXPECT_EQ(std::memcmp(head.data, emb.data, emb.nbytes), 0);
}

// --- crafted tiny llama: dim 32, 2 heads (head size 16), 1 kv head, hidden 64, 1 layer, vocab 4
std::string zeros(size_t n) {
  return std::string(n, '\0');
}

test::GgufTensorSpec f32_tensor(const std::string& name, std::vector<uint64_t> ne) {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return test::tensor_spec(name, std::move(ne), 0, zeros(4 * n));
}

GgufBuilder tiny_llama(bool with_output = true) {
  GgufBuilder b;
  b.kvs = {test::kv_string("general.architecture", "llama"),
           test::kv_u32("llama.embedding_length", 32),
           test::kv_u32("llama.feed_forward_length", 64),
           test::kv_u32("llama.block_count", 1),
           test::kv_u32("llama.attention.head_count", 2),
           test::kv_u32("llama.attention.head_count_kv", 1),
           test::kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f),
           test::kv_f32("llama.rope.freq_base", 500000.0f),
           test::kv_strings("tokenizer.ggml.tokens", {"a", "b", "c", "d"}),
           test::kv_u32("tokenizer.ggml.bos_token_id", 3)};
  // GGUF ne is innermost first: a [n_out, n_in] weight is stored as ne = {n_in, n_out}.
  b.tensors = {
      f32_tensor("token_embd.weight", {32, 4}),    f32_tensor("blk.0.attn_norm.weight", {32}),
      f32_tensor("blk.0.attn_q.weight", {32, 32}), f32_tensor("blk.0.attn_k.weight", {32, 16}),
      f32_tensor("blk.0.attn_v.weight", {32, 16}), f32_tensor("blk.0.attn_output.weight", {32, 32}),
      f32_tensor("blk.0.ffn_norm.weight", {32}),   f32_tensor("blk.0.ffn_gate.weight", {32, 64}),
      f32_tensor("blk.0.ffn_up.weight", {32, 64}), f32_tensor("blk.0.ffn_down.weight", {64, 32}),
      f32_tensor("output_norm.weight", {32})};
  if (with_output) b.tensors.push_back(f32_tensor("output.weight", {32, 4}));
  return b;
}

std::string write(const GgufBuilder& b) {
  static int n = 0;
  const std::string path = test::temp_dir() + "/t" + std::to_string(n++) + ".gguf";
  test::write_file(path, b.build());
  return path;
}

void expect_error(const GgufBuilder& b, const std::string& needle) {
  const std::string path = write(b);
  try {
    load_gguf_model(path);
    ADD_FAILURE() << "loaded without error; wanted: " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path + ": "), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "wanted '" << needle << "' in: " << msg;
  }
}

size_t index_of(const GgufBuilder& b, const std::string& name) {
  for (size_t k = 0; k < b.tensors.size(); ++k)
    if (b.tensors[k].name == name) return k;
  ADD_FAILURE() << name;
  return 0;
}

TEST(GgufModel, TinyLlamaLoads) {
  const ModelSource m = load_gguf_model(write(tiny_llama()));
  EXPECT_EQ(m.config.head_dim, 16);
  EXPECT_EQ(m.config.vocab_size, 4);
  EXPECT_EQ(m.config.max_seq_len, 2048);  // no context_length: default
  EXPECT_EQ(m.config.norm_eps, 1e-6f);
  EXPECT_EQ(m.config.rope_theta, 500000.0f);
  EXPECT_EQ(m.config.bos_id, 3);
  EXPECT_EQ(m.config.eos_id, 2);  // absent: default
  EXPECT_FALSE(m.config.tie_embeddings);
  EXPECT_EQ(m.tensor("layers.0.k_proj").shape, (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(m.tensor("layers.0.down_proj").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(m.tensor("lm_head").name, "lm_head");
  EXPECT_EQ(m.owners.size(), 1u);

  const ModelSource tied = load_gguf_model(write(tiny_llama(false)));
  EXPECT_TRUE(tied.config.tie_embeddings);
  EXPECT_FALSE(tied.has("lm_head"));
}

TEST(GgufModel, QuantizedWeightsLoad) {
  GgufBuilder b = tiny_llama();
  auto& q = b.tensors[index_of(b, "blk.0.attn_q.weight")];
  q.type = 8;  // Q8_0: 32 rows of one 34-byte block
  q.data = zeros(32 * 34);
  auto& gate = b.tensors[index_of(b, "blk.0.ffn_gate.weight")];
  gate.type = 2;  // Q4_0: 64 rows of one 18-byte block
  gate.data = zeros(64 * 18);
  const ModelSource m = load_gguf_model(write(b));
  EXPECT_EQ(m.tensor("layers.0.q_proj").dtype, DType::Q8_0);
  EXPECT_EQ(m.tensor("layers.0.gate_proj").dtype, DType::Q4_0);
  EXPECT_EQ(to_f32(m.tensor("layers.0.gate_proj")).size(), 64u * 32);
}

TEST(GgufModel, ArchitectureErrors) {
  GgufBuilder b = tiny_llama();
  b.kvs[0] = test::kv_string("general.architecture", "gpt2");
  expect_error(b, "architecture 'gpt2' is not supported");
  b.kvs[0] = test::kv_string("general.architecture", "qwen2");
  expect_error(b, "rotate-half");
  b.kvs.erase(b.kvs.begin());
  expect_error(b, "missing metadata key 'general.architecture'");
}

TEST(GgufModel, ConfigErrors) {
  GgufBuilder b = tiny_llama();
  b.kvs.erase(b.kvs.begin() + 1);
  expect_error(b, "missing metadata key 'llama.embedding_length'");
  b = tiny_llama();
  b.kvs[4] = test::kv_u32("llama.attention.head_count", 3);
  expect_error(b, "embedding_length 32 is not divisible by head_count 3");
  b = tiny_llama();
  b.kvs[4] = test::kv_u32("llama.attention.head_count", 0);
  expect_error(b, "head_count 0");
  b = tiny_llama();
  b.kvs[5] = test::kv_u32("llama.attention.head_count_kv", 0);
  expect_error(b, "kv head count");
  b = tiny_llama();
  b.kvs.push_back(test::kv_u32("llama.rope.dimension_count", 8));  // taken as the head size
  expect_error(b, "(layers.0.q_proj) has shape [32, 32], expected [16, 32]");
  b.kvs.push_back(test::kv_u32("llama.attention.key_length", 16));
  expect_error(b, "rope.dimension_count 8 differs from head size 16");
  b = tiny_llama();
  b.kvs.push_back(test::kv_string("llama.rope.scaling.type", "linear"));
  expect_error(b, "rope scaling 'linear' is not supported");
  b = tiny_llama();
  b.kvs.push_back(test::kv_u32("llama.context_length", 0));
  expect_error(b, "context_length 0 is not positive");
  b = tiny_llama();
  b.kvs[3] = test::kv_string("llama.block_count", "1");
  expect_error(b, "'llama.block_count' has type string, expected an integer");
}

TEST(GgufModel, TensorErrors) {
  GgufBuilder b = tiny_llama();
  b.tensors.erase(b.tensors.begin() + index_of(b, "blk.0.ffn_up.weight"));
  expect_error(b,
               "missing tensor 'blk.0.ffn_up.weight' (layers.0.up_proj), expected shape [64, 32]");
  b = tiny_llama();
  b.tensors[index_of(b, "blk.0.attn_k.weight")] = f32_tensor("blk.0.attn_k.weight", {32, 32});
  expect_error(
      b, "tensor 'blk.0.attn_k.weight' (layers.0.k_proj) has shape [32, 32], expected [16, 32]");
  b = tiny_llama();
  b.tensors.push_back(f32_tensor("blk.1.attn_norm.weight", {32}));
  expect_error(b, "unexpected tensor 'blk.1.attn_norm.weight' (model has 1 layers)");
  b = tiny_llama();
  b.tensors.push_back(f32_tensor("foo.weight", {32}));
  expect_error(b, "unexpected tensor 'foo.weight' (not part of a llama model)");
  b = tiny_llama();
  b.tensors.push_back(f32_tensor("blk.00.attn_norm.weight", {32}));
  expect_error(b, "unexpected tensor 'blk.00.attn_norm.weight'");
  b = tiny_llama();
  b.tensors.push_back(f32_tensor("rope_freqs.weight", {8}));
  expect_error(b, "rope_freqs");
  b = tiny_llama();
  auto& gate = b.tensors[index_of(b, "blk.0.ffn_gate.weight")];
  gate.type = 3;  // Q4_1: 64 rows of one 20-byte block
  gate.data = zeros(64 * 20);
  expect_error(b, "tensor 'blk.0.ffn_gate.weight' has type Q4_1 (id 3), not supported yet");
  b = tiny_llama();  // vocabulary of 5 tokens but a 4-row embedding
  b.kvs[8] = test::kv_strings("tokenizer.ggml.tokens", {"a", "b", "c", "d", "e"});
  expect_error(b, "(embed_tokens) has shape [4, 32], expected [5, 32]");
}

}  // namespace
}  // namespace lowbit
