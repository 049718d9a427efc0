// safetensors reader: valid files (F32/F16/BF16, shards) and every malformed-header case.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/half.h"
#include "io/hf_model.h"
#include "io/safetensors.h"
#include "testutil.h"

namespace lowbit {
namespace {

// A safetensors file: u64 header length, header JSON, data bytes.
std::string make_st(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

std::string write_tmp(const std::string& bytes, const std::string& name = "m.safetensors") {
  const std::string p = test::temp_dir() + "/" + name;
  test::write_file(p, bytes);
  return p;
}

// Expects a lowbit::Error whose message contains `needle`.
void expect_error(const std::string& bytes, const std::string& needle) {
  const std::string p = write_tmp(bytes);
  try {
    SafetensorsFile f(p);
    ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "message should name the file";
  }
}

TEST(Safetensors, ReadsF32F16Bf16) {
  const std::string h16 = std::string{"\x00\x3c\x00\xc0", 4};  // fp16 1.0, -2.0
  const std::string hb = std::string{"\x80\x3f\x40\x40", 4};   // bf16 1.0, 3.0
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]},)"
      R"("c":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]},"__metadata__":{"format":"pt"}})";
  SafetensorsFile f(write_tmp(make_st(header, floats({0.5f, -1.5f}) + h16 + hb)));
  EXPECT_EQ(to_f32(f.tensor("a")), (std::vector<float>{0.5f, -1.5f}));
  EXPECT_EQ(to_f32(f.tensor("b")), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(f.tensor("b").shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(to_f32(f.tensor("c")), (std::vector<float>{1.0f, 3.0f}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(Safetensors, RealModelHeaderParses) {
  SafetensorsFile f(test::shared_path("models/ref-m/model.safetensors"));
  EXPECT_EQ(f.tensor("model.embed_tokens.weight").shape, (std::vector<int64_t>{4096, 256}));
  EXPECT_EQ(f.entries().size(), 3u + 6u * 9u);
}

TEST(Safetensors, UnsupportedDtypeIsListedButNotReadable) {
  const std::string header = R"({"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
  const std::string p = write_tmp(make_st(header, std::string(8, '\0')));
  SafetensorsFile f(p);
  EXPECT_FALSE(f.entries().at("i").supported);
  EXPECT_THROW(f.tensor("i"), Error);
}

TEST(Safetensors, MalformedFilesGiveClearErrors) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_error("abc", "truncated");
  std::string huge(8, '\xff');
  expect_error(huge, "exceeds the file size");
  expect_error(make_st(ok, floats({1.f})), "outside the data section");        // offsets past EOF
  expect_error(make_st("{not json", ""), "not a valid JSON");
  expect_error(make_st("[1,2]", ""), "not a valid JSON object");
  expect_error(make_st(R"({"a":{"dtype":"F32","shape":[2]}})", floats({1.f, 2.f})), "data_offsets");
  expect_error(make_st(R"({"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}})", floats({1.f, 2.f})),
               "unknown dtype");
  expect_error(make_st(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1.f, 2.f})),
               "8 bytes for 3 elements");
  expect_error(make_st(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", floats({1.f, 2.f})),
               "non-negative");
  expect_error(make_st(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                       floats({1.f, 2.f})),
               "absurd dimension");
  expect_error(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", floats({1.f, 2.f})),
               "outside the data section");
  expect_error(make_st(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                       floats({1.f, 2.f, 3.f})),
               "overlap");
  // Deep nesting (a non-string __metadata__ value): refused before anything walks it.
  expect_error(make_st(R"({"__metadata__":{"a":)" + std::string(50000, '[') + std::string(50000, ']') + "}}", ""),
               "nested deeper than 64");
}

TEST(Safetensors, EveryTruncationOfARealHeaderFailsCleanly) {
  const std::string full = test::read_file(test::shared_path("models/ref-s/model.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, full.data(), 8);
  for (size_t len : {size_t{0}, size_t{7}, size_t{8}, size_t{9}, size_t(8 + n / 2), size_t(8 + n),
                     size_t(8 + n + 100), full.size() - 1}) {
    const std::string p = write_tmp(full.substr(0, len));
    EXPECT_THROW(SafetensorsFile f(p), Error) << "prefix length " << len;
  }
}

TEST(Safetensors, ShardedIndexIsFollowed) {
  namespace fs = std::filesystem;
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/s1.safetensors",
                   make_st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({1.f})));
  test::write_file(dir + "/s2.safetensors",
                   make_st(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", floats({2.f})));
  test::write_file(dir + "/model.safetensors.index.json",
                   R"({"metadata":{},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  SafetensorsSet set = open_safetensors_dir(dir);
  ASSERT_EQ(set.entries.size(), 2u);
  EXPECT_EQ(to_f32(set.entries.at("b")->view)[0], 2.f);
  test::write_file(dir + "/model.safetensors.index.json", R"({"weight_map":{"a":"../x"}})");
  EXPECT_THROW(open_safetensors_dir(dir), Error);
  test::write_file(dir + "/model.safetensors.index.json", R"({"weight_map":{"a":"missing.safetensors"}})");
  EXPECT_THROW(open_safetensors_dir(dir), Error);
}

TEST(HfConfig, ParsesLlamaMistralQwen2) {
  const std::string base =
      R"("hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,)"
      R"("num_key_value_heads":2,"vocab_size":100,"rms_norm_eps":1e-6,"rope_theta":500000.0)";
  LlamaConfig c = parse_hf_config(R"({"architectures":["LlamaForCausalLM"],)" + base + "}", "x");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.rope_style, RopeStyle::RotateHalf);
  c = parse_hf_config(R"({"architectures":["Qwen2ForCausalLM"],"tie_word_embeddings":true,)" + base + "}", "x");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_TRUE(c.tie_embeddings);
  EXPECT_EQ(parse_hf_config(R"({"architectures":["MistralForCausalLM"],)" + base + "}", "x").architecture,
            "mistral");
}

TEST(HfConfig, RejectsBadConfigs) {
  const std::string base =
      R"("hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"vocab_size":100)";
  EXPECT_THROW(parse_hf_config("{", "x"), Error);
  EXPECT_THROW(parse_hf_config(R"({"architectures":["GPT2LMHeadModel"]})", "x"), Error);
  EXPECT_THROW(parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"num_attention_heads":0,)" + base + "}", "x"),
               Error);
  EXPECT_THROW(parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"num_attention_heads":4,)"
                               R"("num_key_value_heads":3,)" + base + "}", "x"),
               Error);
  EXPECT_THROW(parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"num_attention_heads":"4",)" + base + "}", "x"),
               Error);
  EXPECT_THROW(parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"num_attention_heads":4,)"
                               R"("rope_scaling":{"type":"yarn"},)" + base + "}", "x"),
               Error);
  // Issue 14: a deeply nested rope_scaling (its dump() recursed per level) and non-boolean flags.
  test::expect_error(
      [&] {
        parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"num_attention_heads":4,"rope_scaling":)" +
                            std::string(100000, '[') + std::string(100000, ']') + "," + base + "}",
                        "cfg.json");
      },
      "cfg.json: JSON nested deeper than 64 levels");
  for (const char* flag : {"attention_bias", "tie_word_embeddings", "mlp_bias"})
    test::expect_error(
        [&] {
          parse_hf_config(R"({"architectures":["LlamaForCausalLM"],"num_attention_heads":4,")" +
                              std::string(flag) + R"(":"yes",)" + base + "}",
                          "cfg.json");
        },
        std::string("'") + flag + "' is not true or false");
}

TEST(HfModel, MissingTensorAndWrongShapeAreReported) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/config.json",
                   R"({"architectures":["LlamaForCausalLM"],"hidden_size":2,"intermediate_size":2,)"
                   R"("num_hidden_layers":1,"num_attention_heads":1,"vocab_size":2,"tie_word_embeddings":true})");
  test::write_file(dir + "/model.safetensors",
                   make_st(R"({"model.embed_tokens.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
                           floats({1, 2, 3, 4})));
  try {
    load_hf_model(dir);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.norm.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
