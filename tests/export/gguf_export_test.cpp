// Model -> GGUF export, checked through lowbit's own GGUF loader:
//  - ref-s (HF, rotate-half RoPE) -> F32 GGUF gives ref-s's logits (proves the q/k permutation);
//  - int4:g32 / int8:g32 .lowbit -> Q4_0 / Q8_0 keeps every code and scale (dequantized weights
//    bit-identical) and gives the .lowbit model's logits;
//  - llama2.c and GGUF sources (already interleaved) are written unpermuted;
//  - unsupported input throws lowbit::Error before anything is written.
#include "export/gguf_export.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/gguf.h"
#include "model/llama.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "export/logits_diff.h"
#include "legacy_edges.h"
#include "testutil.h"
#include "tokenizer/load.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

using test::golden_prompts;
using test::last_logits;
using test::logits_rel_diff;

std::string export_to(const ModelSource& src, const std::string& name, std::optional<GgmlType> type,
                      GgufExportReport* report = nullptr,
                      std::vector<std::string>* warnings = nullptr) {
  const auto tok = load_tokenizer_for(src, "");
  GgufExportOptions opt;
  opt.type = type;
  opt.warn = [warnings](const std::string& w) {
    if (warnings) warnings->push_back(w);
  };
  const std::string out = test::temp_dir() + "/" + name;
  const GgufExportReport r = export_gguf(src, *tok, opt, out);
  if (report) *report = r;
  return out;
}

std::string quantize_ref_s(const std::string& recipe, std::vector<std::string> overrides = {}) {
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  const auto tok = load_tokenizer_for(src, "");
  QuantizeOptions opt;
  opt.recipe = recipe;
  opt.overrides = test::with_legacy_edges(recipe, std::move(overrides));
  const std::string out = test::temp_dir() + "/q.lowbit";
  quantize_model(src, *tok, opt, out);
  return out;
}

// The source row that GGUF row r of a q/k projection holds: within a head of size hd, GGUF
// row 2i is source row i and row 2i+1 is source row i + hd/2 (RotateHalf -> interleaved).
int64_t source_row(int64_t r, int64_t hd) {
  const int64_t j = r % hd;
  return r - j + (j % 2 == 0 ? j / 2 : j / 2 + hd / 2);
}

// Every weight of the GGUF (decoded by io/'s reader) equals the .lowbit's dequantized weight,
// bit for bit, q/k rows un-permuted.
void expect_weights_identical(const ModelSource& lowbit, const ModelSource& gguf) {
  const int64_t hd = lowbit.config.head_dim;
  for (const auto& [name, m] : lowbit.quantized) {
    const std::vector<float> want = dequantize(m);
    const std::vector<float> got = to_f32(gguf.tensor(name));
    ASSERT_EQ(got.size(), want.size()) << name;
    const bool permuted = name.ends_with("q_proj") || name.ends_with("k_proj");
    int64_t mismatches = 0;
    for (int64_t r = 0; r < m.rows; ++r) {
      const int64_t sr = permuted ? source_row(r, hd) : r;
      for (int64_t c = 0; c < m.cols; ++c)
        mismatches += std::memcmp(&got[r * m.cols + c], &want[sr * m.cols + c], 4) != 0;
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}

TEST(GgufExport, RefSF32GivesRefSLogits) {
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  ASSERT_EQ(src.config.rope_style, RopeStyle::RotateHalf);
  const std::string path = export_to(src, "f32.gguf", GgmlType::F32);
  const ModelSource g = open_model_source(path);
  EXPECT_EQ(g.config.rope_style, RopeStyle::Interleaved);
  const double d = logits_rel_diff(g, src, "models/ref-s/golden.json");
  std::printf("ref-s -> F32 GGUF: max |dlogit| / max |logit| = %.3g\n", d);
  EXPECT_LE(d, 1e-5);
  // Without the permutation the logits would be far off: guard that the check can fail.
  const std::vector<float> q0 = to_f32(g.tensor("layers.0.q_proj")),
                           s0 = to_f32(src.tensor("layers.0.q_proj"));
  EXPECT_NE(q0, s0);
}

TEST(GgufExport, RefSDefaultIsF16WithLlamaMetadataAndVocab) {
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  GgufExportReport r;
  const std::string path = export_to(src, "f16.gguf", std::nullopt, &r);
  EXPECT_EQ(r.file_type, GgmlType::F16);
  for (const GgufExportTensor& t : r.tensors)
    EXPECT_EQ(t.type, t.shape.size() == 1 ? GgmlType::F32 : GgmlType::F16) << t.name;
  const GgufFile g(path);
  const LlamaConfig& c = src.config;
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_string("general.name"), "ref-s");
  EXPECT_EQ(g.get_int("general.file_type"), 1);
  const std::pair<const char*, int64_t> ints[] = {{"llama.context_length", c.max_seq_len},
                                                  {"llama.embedding_length", c.dim},
                                                  {"llama.block_count", c.n_layers},
                                                  {"llama.feed_forward_length", c.hidden_dim},
                                                  {"llama.rope.dimension_count", c.head_dim},
                                                  {"llama.attention.head_count", c.n_heads},
                                                  {"llama.attention.head_count_kv", c.n_kv_heads},
                                                  {"llama.vocab_size", c.vocab_size},
                                                  {"tokenizer.ggml.bos_token_id", 1},
                                                  {"tokenizer.ggml.eos_token_id", 2},
                                                  {"tokenizer.ggml.unknown_token_id", 0}};
  for (const auto& [key, want] : ints) {
    EXPECT_EQ(g.get_int(key), want) << key;
    EXPECT_EQ(g.find(key)->type, GgufType::U32) << key << ": llama.cpp reads these as u32";
  }
  EXPECT_EQ(g.find("llama.attention.layer_norm_rms_epsilon")->type, GgufType::F32);
  EXPECT_FLOAT_EQ(static_cast<float>(g.get_float("llama.rope.freq_base")), c.rope_theta);
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_TRUE(g.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_TRUE(g.get_bool("tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens").size(), 4096u);
  // The embedded vocab tokenizes like the source's tokenizer.model.
  const ModelSource gs = open_model_source(path);
  const auto want = load_tokenizer_for(src, ""), got = load_tokenizer_for(gs, "");
  EXPECT_EQ(got->kind(), "gguf-llama");
  for (const char* text :
       {"Hello world", "The history of the city, 1998.", "  two  spaces\nnewline"})
    EXPECT_EQ(got->encode(text, true), want->encode(text, true)) << text;
  EXPECT_LE(logits_rel_diff(gs, src, "models/ref-s/golden.json"), 2e-2);  // fp16 weights
}

// A float ModelSource holding the .lowbit's dequantized weights: the same model, run through
// the fp32 matmul path that a GGUF's Q4_0/Q8_0 weights take.
ModelSource dequantized_copy(const ModelSource& q) {
  ModelSource f = q;
  f.quantized.clear();
  for (const auto& [name, m] : q.quantized) {
    auto values = std::make_shared<std::vector<float>>(dequantize(m));
    f.tensors[name] = TensorView{name,
                                 DType::F32,
                                 {m.rows, m.cols},
                                 reinterpret_cast<const uint8_t*>(values->data()),
                                 values->size() * 4};
    f.owners.push_back(values);
  }
  return f;
}

void check_codes_kept(const std::string& recipe, const std::string& lm_head,
                      std::optional<GgmlType> type, GgmlType want_type) {
  const ModelSource q = open_model_source(quantize_ref_s(recipe, {"lm_head=" + lm_head}));
  GgufExportReport r;
  std::vector<std::string> warnings;
  const std::string path = export_to(q, "q.gguf", type, &r, &warnings);
  EXPECT_TRUE(warnings.empty()) << (warnings.empty() ? "" : warnings.front());
  EXPECT_EQ(r.file_type, want_type);
  EXPECT_EQ(default_export_type(q), want_type);
  for (const GgufExportTensor& t : r.tensors) {
    if (t.name == "token_embd.weight" || t.shape.size() == 1) continue;  // float in the .lowbit
    EXPECT_TRUE(t.codes_kept) << t.name;
  }
  const ModelSource g = open_model_source(path);
  EXPECT_EQ(g.tensor("layers.0.q_proj").dtype,
            want_type == GgmlType::Q4_0 ? DType::Q4_0 : DType::Q8_0);
  expect_weights_identical(q, g);
  // Through the same fp32 path the logits agree to rounding; against the .lowbit's own integer
  // kernels (int8-quantized activations, see kernels/packed_matrix.h) within a looser band.
  const double same_path = logits_rel_diff(g, dequantized_copy(q), "models/ref-s/golden.json");
  const double kernels = logits_rel_diff(g, q, "models/ref-s/golden.json");
  std::printf("%s -> %s: rel dlogit %.3g (fp32 path), %.3g (vs .lowbit kernels)\n", recipe.c_str(),
              ggml_type_label(want_type), same_path, kernels);
  EXPECT_LE(same_path, 1e-5);
  EXPECT_LE(kernels, 2e-2);
}

TEST(GgufExport, Int4G32KeepsCodesAsQ4_0) {
  // int4:g32 linears (-> Q4_0), lm_head int8:g32 (-> Q8_0, also exact), embed f16 (-> F16).
  check_codes_kept("rtn:int4:g32", "rtn:int8:g32", std::nullopt, GgmlType::Q4_0);
}

TEST(GgufExport, Int8G32KeepsCodesAsQ8_0) {
  // (An explicit --type Q8_0 would also quantize the f16 embedding; the default keeps it F16.)
  check_codes_kept("rtn:int8:g32", "rtn:int8:g32", std::nullopt, GgmlType::Q8_0);
}

TEST(GgufExport, GgufBlockTensorsAreCopiedByteForByte) {
  const ModelSource q = open_model_source(quantize_ref_s("rtn:int4:g32", {"lm_head=rtn:int8:g32"}));
  const ModelSource g1 = open_model_source(export_to(q, "a.gguf", std::nullopt));
  GgufExportReport r;
  std::vector<std::string> warnings;
  const ModelSource g2 = open_model_source(export_to(g1, "b.gguf", std::nullopt, &r, &warnings));
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(r.file_type, GgmlType::Q4_0);
  for (const auto& [name, v] : g1.tensors) {
    const TensorView& w = g2.tensor(name);
    EXPECT_EQ(w.dtype, v.dtype) << name;
    EXPECT_TRUE(w.nbytes == v.nbytes && std::memcmp(w.data, v.data, v.nbytes) == 0) << name;
  }
}

TEST(GgufExport, OtherGridsAreRequantizedWithOneWarningPerKind) {
  const ModelSource q = open_model_source(quantize_ref_s("rtn:int4:g128"));
  GgufExportReport r;
  std::vector<std::string> warnings;
  export_to(q, "q.gguf", GgmlType::Q4_0, &r, &warnings);
  // 7 linear kinds + lm_head's re-quantization + lm_head's row fallback: as llama-quantize does,
  // the output projection gets Q6_K under a 4-bit type, and ref-s's 128-wide rows fall back to Q8_0.
  EXPECT_EQ(warnings.size(), 9u);
  for (const GgufExportTensor& t : r.tensors) {
    if (t.shape.size() == 1) continue;
    EXPECT_EQ(t.type, t.name == "output.weight" ? GgmlType::Q8_0 : GgmlType::Q4_0) << t.name;
    EXPECT_EQ(t.requantized, t.name != "token_embd.weight") << t.name;
  }
  EXPECT_EQ(default_export_type(q), GgmlType::Q8_0);
}

TEST(GgufExport, InterleavedSourcesAreNotPermuted) {
  for (const char* model :
       {"models/stories260K/stories260K.bin", "models/stories260K-gguf/stories260K.gguf"}) {
    const ModelSource src = open_model_source(test::shared_path(model));
    ASSERT_EQ(src.config.rope_style, RopeStyle::Interleaved);
    const std::string path = export_to(src, "s.gguf", GgmlType::F32);
    const ModelSource g = open_model_source(path);
    EXPECT_EQ(to_f32(g.tensor("layers.0.q_proj")), to_f32(src.tensor("layers.0.q_proj"))) << model;
    EXPECT_LE(logits_rel_diff(g, src, "models/stories260K/golden.json"), 1e-6) << model;
    const auto want = load_tokenizer_for(src, ""), got = load_tokenizer_for(g, "");
    EXPECT_EQ(got->encode("Once upon a time, there was", true),
              want->encode("Once upon a time, there was", true));
  }
}

TEST(GgufExport, RowsNotMultipleOf32FallBackToF16) {
  const ModelSource src =
      open_model_source(test::shared_path("models/stories260K/stories260K.bin"));
  GgufExportOptions opt;
  opt.type = GgmlType::Q8_0;
  std::vector<std::string> warnings;
  opt.warn = [&](const std::string& w) { warnings.push_back(w); };
  const GgufExportReport r = plan_gguf_export(src, opt);
  for (const GgufExportTensor& t : r.tensors) {
    if (t.shape.size() == 1) continue;
    EXPECT_EQ(t.type, t.shape[1] % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F16) << t.name;
  }
}

// Files in `dir` (nothing, not even a temp file, may be left after a failed export).
size_t file_count(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

void expect_export_error(const ModelSource& src, const Tokenizer& tok, std::optional<GgmlType> type,
                         const std::string& needle) {
  const std::string dir = test::temp_dir();
  GgufExportOptions opt;
  opt.type = type;
  try {
    export_gguf(src, tok, opt, dir + "/out.gguf");
    ADD_FAILURE() << "no error; wanted " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_EQ(file_count(dir), 0u);
}

TEST(GgufExport, BadInputsThrowAndLeaveNoFile) {
  EXPECT_THROW(parse_ggml_type("Q2_K"), Error);
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  const auto hf = load_tokenizer_file(test::shared_path("models/smollm2-tokenizer/tokenizer.json"));
  expect_export_error(src, *hf, std::nullopt, "49152 pieces but the model only 4096");
  const auto tiktoken =
      load_tokenizer_file(test::shared_path("models/llama3-tokenizer/tokenizer.model"));
  expect_export_error(src, *tiktoken, std::nullopt, "128256 pieces but the model only 4096");
  // A failure while writing tensor data (a NaN weight cannot be quantized) leaves nothing behind.
  ModelSource bad = src;
  auto nan = std::make_shared<std::vector<float>>(to_f32(src.tensor("layers.1.up_proj")));
  (*nan)[5] = std::nanf("");
  bad.tensors["layers.1.up_proj"].data = reinterpret_cast<const uint8_t*>(nan->data());
  bad.owners.push_back(nan);
  const auto tok = load_tokenizer_for(src, "");
  expect_export_error(bad, *tok, GgmlType::Q8_0, "non-finite");
  // q/k/v biases (qwen2) are not mapped.
  ModelSource biased = src;
  biased.config.attention_bias = true;
  expect_export_error(biased, *tok, std::nullopt, "biases");
}

}  // namespace
}  // namespace lowbit
