// llama2.c checkpoint loader: the real stories260K.bin, crafted legacy and version-1 files
// whose floats count up (float k holds the value k) so each view's position can be checked,
// and every header / size error.
#include "io/llama2c.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/error.h"
#include "io/model_source.h"
#include "testutil/testutil.h"

namespace lowbit {
namespace {

// Tiny config: dim 8, hidden 16, 2 layers, 2 heads (head size 4), 1 kv head, vocab 10, seq 4.
struct Dims {
  int32_t dim = 8, hidden = 16, layers = 2, heads = 2, kv_heads = 1, vocab = 10, seq = 4;
};

std::string ints(std::initializer_list<int32_t> v) {
  std::string s;
  for (int32_t x : v) s.append(reinterpret_cast<const char*>(&x), 4);
  return s;
}

// n floats holding 0, 1, 2, ...
std::string counting_floats(size_t n) {
  std::string s(n * 4, '\0');
  for (size_t k = 0; k < n; ++k) {
    const float f = static_cast<float>(k);
    std::memcpy(s.data() + 4 * k, &f, 4);
  }
  return s;
}

// Legacy float count for Dims{} (see llama2c.h for the order): emb 80, rms_att 16, wq 128,
// wk 64, wv 64, wo 128, rms_ffn 16, w1/w2/w3 256 each, rms_final 8, freq_cis 2 x 4*2 = 16.
constexpr size_t kLegacyFloats = 1288, kClassifierFloats = 80;

std::string legacy_file(const Dims& d, bool shared, size_t floats) {
  return ints(
             {d.dim, d.hidden, d.layers, d.heads, d.kv_heads, shared ? d.vocab : -d.vocab, d.seq}) +
         counting_floats(floats);
}

std::string write(const std::string& bytes) {
  static int n = 0;
  const std::string path = test::temp_dir() + "/m" + std::to_string(n++) + ".bin";
  test::write_file(path, bytes);
  return path;
}

float first(const ModelSource& m, const std::string& name) {
  float f;
  std::memcpy(&f, m.tensor(name).data, 4);
  return f;
}

// Expects loading to throw lowbit::Error naming the path and containing `needle`.
void expect_error(const std::string& bytes, const std::string& needle) {
  const std::string path = write(bytes);
  try {
    load_llama2c_model(path);
    ADD_FAILURE() << "loaded without error; wanted: " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "wanted '" << needle << "' in: " << msg;
  }
}

TEST(Llama2c, LoadsStories260K) {
  const std::string path = test::shared_path("models/stories260K/stories260K.bin");
  const ModelSource m = load_llama2c_model(path);
  const LlamaConfig& c = m.config;
  EXPECT_EQ(m.format, "llama2c");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::Interleaved);
  EXPECT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 10000.0f);
  EXPECT_EQ(c.bos_id, 1);
  EXPECT_EQ(c.eos_id, 2);
  const auto expected = canonical_tensor_shapes(c);
  EXPECT_EQ(m.tensors.size(), expected.size());  // 1 + 5 * 9 + 1 = 47, no lm_head
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(m.has(name)) << name;
    EXPECT_EQ(m.tensor(name).shape, shape) << name;
    EXPECT_EQ(m.tensor(name).dtype, DType::F32);
  }
  // The embedding starts right after the 28-byte header.
  const std::string raw = test::read_file(path);
  EXPECT_EQ(std::memcmp(m.tensor("embed_tokens").data, raw.data() + 28, 4), 0);
}

TEST(Llama2c, LegacyLayoutPositions) {
  const ModelSource m = load_llama2c_model(write(legacy_file(Dims{}, true, kLegacyFloats)));
  EXPECT_TRUE(m.config.tie_embeddings);
  EXPECT_FALSE(m.has("lm_head"));
  EXPECT_EQ(m.tensors.size(), 2u + 2 * 9);
  EXPECT_EQ(first(m, "embed_tokens"), 0.0f);
  EXPECT_EQ(first(m, "layers.0.attn_norm"), 80.0f);
  EXPECT_EQ(first(m, "layers.1.attn_norm"), 88.0f);
  EXPECT_EQ(first(m, "layers.1.q_proj"), 160.0f);  // 96 + one 8x8 wq
  EXPECT_EQ(first(m, "layers.0.k_proj"), 224.0f);  // 96 + 128
  EXPECT_EQ(first(m, "layers.1.v_proj"), 320.0f);  // 224 + 64 + 32
  EXPECT_EQ(first(m, "layers.0.o_proj"), 352.0f);
  EXPECT_EQ(first(m, "layers.0.ffn_norm"), 480.0f);
  EXPECT_EQ(first(m, "layers.0.gate_proj"), 496.0f);  // w1
  EXPECT_EQ(first(m, "layers.1.down_proj"), 880.0f);  // w2: 752 + 128
  EXPECT_EQ(first(m, "layers.0.up_proj"), 1008.0f);   // w3
  EXPECT_EQ(first(m, "norm"), 1264.0f);
  EXPECT_EQ(m.tensor("layers.1.down_proj").shape, (std::vector<int64_t>{8, 16}));
}

TEST(Llama2c, UnsharedClassifierIsLast) {
  const ModelSource m =
      load_llama2c_model(write(legacy_file(Dims{}, false, kLegacyFloats + kClassifierFloats)));
  EXPECT_FALSE(m.config.tie_embeddings);
  EXPECT_EQ(m.config.vocab_size, 10);
  ASSERT_TRUE(m.has("lm_head"));
  EXPECT_EQ(first(m, "lm_head"), 1288.0f);  // after rms_final (8) and freq_cis (16)
  EXPECT_EQ(m.tensor("lm_head").shape, (std::vector<int64_t>{10, 8}));
}

// Version 1: "ak42", version, 7 ints, shared flag, zero padding to 256 bytes, then fp32
// rms_att, rms_ffn, rms_final, embedding, wq, wk, wv, wo, w1, w2, w3 (and wcls if unshared).
std::string v1_file(const Dims& d, int32_t version, uint8_t shared, size_t floats) {
  std::string h =
      ints({0x616b3432, version, d.dim, d.hidden, d.layers, d.heads, d.kv_heads, d.vocab, d.seq});
  h += static_cast<char>(shared);
  h.resize(256, '\0');
  return h + counting_floats(floats);
}

TEST(Llama2c, Version1Layout) {
  constexpr size_t kV1Floats = 1272;  // legacy minus freq_cis
  const ModelSource m = load_llama2c_model(write(v1_file(Dims{}, 1, 1, kV1Floats)));
  EXPECT_TRUE(m.config.tie_embeddings);
  EXPECT_EQ(first(m, "layers.1.attn_norm"), 8.0f);
  EXPECT_EQ(first(m, "layers.0.ffn_norm"), 16.0f);
  EXPECT_EQ(first(m, "norm"), 32.0f);
  EXPECT_EQ(first(m, "embed_tokens"), 40.0f);
  EXPECT_EQ(first(m, "layers.0.q_proj"), 120.0f);
  EXPECT_EQ(first(m, "layers.0.up_proj"), 1016.0f);
  const ModelSource u = load_llama2c_model(write(v1_file(Dims{}, 1, 0, kV1Floats + 80)));
  EXPECT_EQ(first(u, "lm_head"), 1272.0f);
  expect_error(v1_file(Dims{}, 1, 1, kV1Floats - 1), "truncated");
  expect_error(v1_file(Dims{}, 1, 7, kV1Floats), "shared-classifier flag 7");
  expect_error(v1_file(Dims{}, 2, 1, kV1Floats), "export version 2 is not supported");
  expect_error(v1_file(Dims{}, 1, 1, 0).substr(0, 100), "truncated: expected at least 256");
}

TEST(Llama2c, SizeMustMatchExactly) {
  const std::string ok = legacy_file(Dims{}, true, kLegacyFloats);
  const std::string n = std::to_string(ok.size());
  expect_error(ok.substr(0, ok.size() - 1),
               "truncated: expected " + n + " bytes, file has " + std::to_string(ok.size() - 1));
  expect_error(ok.substr(0, 28), "truncated: expected " + n + " bytes, file has 28");
  expect_error(ok + "xxxx",
               "file has " + std::to_string(ok.size() + 4) + " bytes, header implies exactly " + n);
  expect_error(ok.substr(0, 10), "truncated: expected at least 28 header bytes, file has 10");
  expect_error("", "truncated");
  // An unshared header on a shared-size file is one classifier short.
  expect_error(legacy_file(Dims{}, false, kLegacyFloats), "truncated");
}

TEST(Llama2c, HeaderErrors) {
  Dims d;
  d.dim = -8;
  expect_error(legacy_file(d, true, kLegacyFloats), "header field dim = -8 must be positive");
  d = Dims{};
  d.hidden = -1;
  expect_error(legacy_file(d, true, kLegacyFloats), "header field hidden_dim = -1");
  d = Dims{};
  d.heads = 0;
  expect_error(legacy_file(d, true, kLegacyFloats), "header field n_heads = 0");
  d = Dims{};
  d.kv_heads = 0;
  expect_error(legacy_file(d, true, kLegacyFloats), "header field n_kv_heads = 0");
  d = Dims{};
  d.vocab = 0;
  expect_error(legacy_file(d, true, kLegacyFloats), "header field vocab_size = 0");
  d = Dims{};
  d.seq = 0;
  expect_error(legacy_file(d, true, kLegacyFloats), "header field seq_len = 0");
  d = Dims{};
  d.vocab = INT32_MIN;  // |INT32_MIN| does not fit an int32
  expect_error(legacy_file(d, true, kLegacyFloats), "vocab_size");
  d = Dims{};
  d.heads = 3;
  expect_error(legacy_file(d, true, kLegacyFloats), "dim 8 is not divisible by n_heads 3");
  d = Dims{};
  d.heads = 4, d.kv_heads = 3;                                             // head size 2
  expect_error(legacy_file(d, true, kLegacyFloats), "is not a multiple");  // [config] text
  d = Dims{};
  d.dim = 1 << 30, d.heads = 1 << 10;  // absurd width: rejected before any size arithmetic
  expect_error(legacy_file(d, true, kLegacyFloats), "1073741824");
  d = Dims{};
  d.layers = 1 << 30;
  expect_error(legacy_file(d, true, kLegacyFloats), "1073741824");
}

}  // namespace
}  // namespace lowbit
