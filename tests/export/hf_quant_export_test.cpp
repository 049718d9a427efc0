// .lowbit -> GPTQ / AWQ / compressed-tensors HF directory -> lowbit's HF loader (export/
// hf_quant_export.h, io/hf_quantized.h):
//  - ref-s in rtn int4 g128 (GPTQ, compressed-tensors), int3/int8/int2 and asym grids, gptq
//    int4 g64 asym: every Linear reads back as the identical QuantizedMatrix (spec, codes, scales,
//    zeros), and the model gives bit-identical logits;
//  - AWQ (int4 g32): identical dequantized weights and logits, scales made positive;
//  - an interleaved-RoPE source (stories260K) comes back rotate-half with the same logits;
//  - config.json, tensor names and tokenizer files; unsupported input throws before writing
//    and leaves nothing behind.
#include "export/hf_quant_export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "io/safetensors.h"
#include "model/llama.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "export/logits_diff.h"
#include "legacy_edges.h"
#include "testutil.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;

std::string quantize(const std::string& model, const std::string& recipe,
                     std::vector<std::string> overrides, bool calibrate = false) {
  const ModelSource src = open_model_source(test::shared_path(model));
  const auto tok = load_tokenizer_for(src, "");
  QuantizeOptions opt;
  opt.recipe = recipe;
  opt.overrides = test::with_legacy_edges(recipe, std::move(overrides));
  if (calibrate) {
    opt.calibration.source = test::shared_path("data/calibration/wiki.utf8");
    opt.calibration.windows = 16;
    opt.calibration.window_len = 128;
  }
  const std::string out = test::temp_dir() + "/q.lowbit";
  quantize_model(src, *tok, opt, out);
  return out;
}

std::string export_dir(const ModelSource& q, HfQuantFormat f, HfQuantExportReport* rep = nullptr,
                       std::vector<std::string>* warnings = nullptr) {
  HfQuantExportOptions opt;
  opt.format = f;
  opt.warn = [warnings](const std::string& w) {
    if (warnings) warnings->push_back(w);
  };
  const std::string out = test::temp_dir() + "/hf";
  const HfQuantExportReport r = export_hf_quant(q, opt, out);
  if (rep) *rep = r;
  return out;
}

using test::golden_prompts;
using test::last_logits;
using test::logits_rel_diff;

// Every quantized Linear of q comes back: the same matrix (exact) or the same values.
void expect_linears_back(const ModelSource& q, const ModelSource& h, bool exact) {
  int64_t n = 0;
  for (const auto& [name, m] : q.quantized) {
    if (name == "lm_head" || name == "embed_tokens") continue;
    ++n;
    auto it = h.quantized.find(name);
    ASSERT_NE(it, h.quantized.end()) << name;
    const QuantizedMatrix& b = it->second;
    if (exact) {
      EXPECT_EQ(b.spec, m.spec) << name << ": " << b.spec.to_string() << " vs "
                                << m.spec.to_string();
      EXPECT_TRUE(b.codes == m.codes && b.scales == m.scales && b.zeros == m.zeros) << name;
    }
    // Flipped groups (AWQ) give -0 where the original gives +0: compare values, not bits.
    const std::vector<float> va = dequantize(m), vb = dequantize(b);
    int64_t diff = 0;
    for (size_t i = 0; i < va.size(); ++i) diff += va[i] != vb[i];
    EXPECT_EQ(diff, 0) << name;
  }
  EXPECT_EQ(n, q.config.n_layers * 7);
}

void round_trip(const std::string& recipe, HfQuantFormat f, bool calibrate = false) {
  SCOPED_TRACE(recipe + " as " + hf_quant_format_name(f));
  const ModelSource q =
      open_model_source(quantize("models/ref-s", recipe, {"lm_head=f16"}, calibrate));
  HfQuantExportReport rep;
  const ModelSource h = open_model_source(export_dir(q, f, &rep));
  EXPECT_EQ(rep.packed, 28);
  EXPECT_EQ(rep.dequantized, 0);
  EXPECT_EQ(h.config.rope_style, RopeStyle::RotateHalf);
  expect_linears_back(q, h, f != HfQuantFormat::Awq);
  const double d = logits_rel_diff(h, q, "models/ref-s/golden.json");
  std::printf("%s -> %s -> lowbit: rel dlogit %.3g, %lld groups flipped\n", recipe.c_str(),
              hf_quant_format_name(f), d, static_cast<long long>(rep.flipped_groups));
  EXPECT_EQ(d, 0.0);
}

TEST(HfQuantExport, GptqInt4G128RoundTripsExactly) {
  round_trip("rtn:int4:g128", HfQuantFormat::Gptq);
}
TEST(HfQuantExport, GptqOtherBitWidthsRoundTripExactly) {
  for (const char* r :
       {"rtn:int3:g128", "rtn:int8:g128", "rtn:int2:g64", "rtn:int4:g32:asym", "rtn:int4:gc"})
    round_trip(r, HfQuantFormat::Gptq);
}
TEST(HfQuantExport, GptqAlgorithmAsymRoundTripsExactly) {
  round_trip("gptq:int4:g64:asym", HfQuantFormat::Gptq, true);
}
TEST(HfQuantExport, CompressedTensorsRoundTripsExactly) {
  for (const char* r : {"rtn:int4:g128", "rtn:int8:g64", "rtn:int4:g128:asym"})
    round_trip(r, HfQuantFormat::CompressedTensors);
}
void expect_refused(const ModelSource& src, HfQuantFormat f, const std::string& needle);

// W8A8 (int-quantized int8 weights per channel, dynamic per-token int8 activations): the codes
// come back exactly, the tensors are I8 [out, in] and F16 [out, 1], the config is llm-compressor's
// W8A8 scheme, and only symmetric per-channel int8 is accepted.
TEST(HfQuantExport, CompressedTensorsW8A8RoundTripsExactly) {
  round_trip("rtn:int8:gc", HfQuantFormat::CompressedTensorsW8A8);
  const ModelSource q = open_model_source(quantize("models/ref-s", "rtn:int8:gc", {"lm_head=f16"}));
  const std::string dir = export_dir(q, HfQuantFormat::CompressedTensorsW8A8);
  const auto cfg = nlohmann::json::parse(test::read_file(dir + "/config.json"))["quantization_config"];
  EXPECT_EQ(cfg["format"], "int-quantized");
  const auto& g = cfg["config_groups"]["group_0"];
  EXPECT_EQ(g["format"], "int-quantized");
  EXPECT_EQ(g["weights"]["strategy"], "channel");
  EXPECT_EQ(g["weights"]["num_bits"], 8);
  EXPECT_EQ(g["input_activations"]["strategy"], "token");
  EXPECT_EQ(g["input_activations"]["dynamic"], true);
  EXPECT_EQ(g["input_activations"]["num_bits"], 8);
  const SafetensorsFile st(dir + "/model.safetensors");
  const auto& w = st.entries().at("model.layers.1.mlp.down_proj.weight");
  EXPECT_EQ(w.dtype_name, "I8");
  EXPECT_EQ(w.view.shape, (std::vector<int64_t>{128, 352}));
  const auto& sc = st.entries().at("model.layers.1.mlp.down_proj.weight_scale");
  EXPECT_EQ(sc.dtype_name, "F16");
  EXPECT_EQ(sc.view.shape, (std::vector<int64_t>{128, 1}));
  for (const char* r : {"rtn:int4:gc", "rtn:int8:g128", "rtn:int8:gc:asym"}) {
    const ModelSource bad = open_model_source(quantize("models/ref-s", r, {}));
    expect_refused(bad, HfQuantFormat::CompressedTensorsW8A8, "needs symmetric per-channel int8 weights");
  }
}

TEST(HfQuantExport, AwqRoundTripsValues) {
  for (const char* r : {"rtn:int4:g32", "rtn:int4:g32:asym"}) round_trip(r, HfQuantFormat::Awq);
}

TEST(HfQuantExport, DirectoryHasHfConfigNamesAndTokenizer) {
  const ModelSource q = open_model_source(quantize("models/ref-s", "rtn:int4:g128", {}));
  HfQuantExportReport rep;
  std::vector<std::string> warnings;
  const std::string dir = export_dir(q, HfQuantFormat::Gptq, &rep, &warnings);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(rep.dequantized, 1) << "the int8 lm_head is written as F16";
  const auto cfg = nlohmann::json::parse(test::read_file(dir + "/config.json"));
  const auto ref =
      nlohmann::json::parse(test::read_file(test::shared_path("models/ref-s/config.json")));
  for (const char* k : {"architectures", "hidden_size", "intermediate_size", "num_attention_heads",
                        "num_key_value_heads", "num_hidden_layers", "head_dim", "rms_norm_eps",
                        "rope_theta", "vocab_size", "max_position_embeddings",
                        "tie_word_embeddings", "bos_token_id", "eos_token_id"})
    EXPECT_EQ(cfg[k], ref[k]) << k;
  EXPECT_EQ(cfg["torch_dtype"], "float16");
  const auto& qc = cfg["quantization_config"];
  EXPECT_EQ(qc["quant_method"], "gptq");
  EXPECT_EQ(qc["bits"], 4);
  EXPECT_EQ(qc["group_size"], 128);
  EXPECT_EQ(qc["desc_act"], false);
  EXPECT_EQ(qc["sym"], true);
  EXPECT_EQ(qc["checkpoint_format"], "gptq");
  EXPECT_EQ(test::read_file(dir + "/tokenizer.model"),
            test::read_file(test::shared_path("models/ref-s/tokenizer.model")));
  const SafetensorsFile st(dir + "/model.safetensors");
  EXPECT_EQ(st.metadata().at("format"), "pt");
  const auto& e = st.entries();
  for (const char* name :
       {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
        "model.layers.0.input_layernorm.weight", "model.layers.3.post_attention_layernorm.weight"})
    EXPECT_TRUE(e.count(name)) << name;
  EXPECT_EQ(e.at("lm_head.weight").dtype_name, "F16");
  const std::pair<const char*, std::vector<int64_t>> packed[] = {
      {"model.layers.0.self_attn.q_proj.qweight", {16, 128}},  // [128/32*4, 128]
      {"model.layers.0.self_attn.k_proj.qzeros", {1, 8}},      // [1 group, 64/32*4]
      {"model.layers.1.mlp.down_proj.scales", {3, 128}},       // ceil(352/128) groups
      {"model.layers.2.mlp.gate_proj.g_idx", {128}},
      {"model.layers.3.mlp.up_proj.qweight", {16, 352}}};
  for (const auto& [name, shape] : packed) {
    ASSERT_TRUE(e.count(name)) << name;
    EXPECT_EQ(e.at(name).view.shape, shape) << name;
  }
  EXPECT_FALSE(e.count("model.layers.0.self_attn.q_proj.weight"));
  // compressed-tensors: one group targeting every Linear, lm_head ignored.
  const std::string ct = export_dir(q, HfQuantFormat::CompressedTensors);
  const auto cc =
      nlohmann::json::parse(test::read_file(ct + "/config.json"))["quantization_config"];
  EXPECT_EQ(cc["format"], "pack-quantized");
  EXPECT_EQ(cc["config_groups"]["group_0"]["targets"], nlohmann::json::array({"Linear"}));
  EXPECT_EQ(cc["config_groups"]["group_0"]["weights"]["num_bits"], 4);
  EXPECT_EQ(cc["config_groups"]["group_0"]["weights"]["group_size"], 128);
  EXPECT_EQ(cc["config_groups"]["group_0"]["weights"]["strategy"], "group");
  EXPECT_EQ(cc["ignore"], nlohmann::json::array({"lm_head"}));
  // The imported model runs close to the .lowbit: only lm_head differs (its int8 values as f16,
  // run through the dense fp32 path instead of the int8-activation kernels, as in the GGUF test).
  EXPECT_LE(logits_rel_diff(open_model_source(dir), q, "models/ref-s/golden.json"), 2e-2);
}

TEST(HfQuantExport, MixedSpecsGoToCompressedTensorsGroups) {
  const ModelSource q = open_model_source(quantize(
      "models/ref-s", "rtn:int4:g128",
      {"lm_head=f16", "layers\\.[0-9]+\\.down_proj=rtn:int8:g64", "layers\\.0\\.q_proj=f16"}));
  try {
    export_dir(q, HfQuantFormat::Gptq);
    ADD_FAILURE() << "gptq accepted a float Linear";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.q_proj is not quantized"), std::string::npos)
        << e.what();
  }
  const std::string dir = export_dir(q, HfQuantFormat::CompressedTensors);
  const auto cc =
      nlohmann::json::parse(test::read_file(dir + "/config.json"))["quantization_config"];
  EXPECT_EQ(cc["config_groups"].size(), 2u);
  EXPECT_EQ(cc["ignore"], nlohmann::json::array({"lm_head", "model.layers.0.self_attn.q_proj"}));
  const ModelSource h = open_model_source(dir);
  EXPECT_EQ(h.quantized.at("layers.2.down_proj").spec.to_string(), "int8:g64");
  EXPECT_EQ(h.quantized.at("layers.2.up_proj").spec.to_string(), "int4:g128");
  EXPECT_FALSE(h.quantized.count("layers.0.q_proj"));
  EXPECT_EQ(logits_rel_diff(h, q, "models/ref-s/golden.json"), 0.0);
}

TEST(HfQuantExport, InterleavedSourceIsWrittenRotateHalf) {
  const ModelSource q = open_model_source(
      quantize("models/stories260K/stories260K.bin", "rtn:int4:gc", {"lm_head=f16"}));
  ASSERT_EQ(q.config.rope_style, RopeStyle::Interleaved);
  std::vector<std::string> warnings;
  HfQuantExportReport rep;
  const std::string dir = export_dir(q, HfQuantFormat::CompressedTensors, &rep, &warnings);
  EXPECT_EQ(warnings.size(), 1u) << "no HF tokenizer files for a llama2.c model";
  const ModelSource h = open_model_source(dir);
  EXPECT_EQ(h.config.rope_style, RopeStyle::RotateHalf);
  // q/k rows are permuted within each head (rope_interleave_order), values kept exactly; every
  // other projection is unchanged.
  const LlamaConfig& c = q.config;
  for (const std::string proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    const std::string name = "layers.0." + proj;
    const std::vector<float> wq = dequantize(q.quantized.at(name)), wh = dequantize(h.quantized.at(name));
    ASSERT_EQ(wq.size(), wh.size()) << name;
    const int64_t cols = q.quantized.at(name).cols, rows = q.quantized.at(name).rows;
    const bool permuted = proj == "q_proj" || proj == "k_proj";
    const std::vector<int64_t> order =
        permuted ? rope_interleave_order(rows / c.head_dim, c.head_dim) : std::vector<int64_t>{};
    if (permuted) {
      EXPECT_NE(wq, wh) << name;
    }
    int64_t diff = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) diff += wq[r * cols + k] != wh[(permuted ? order[r] : r) * cols + k];
    EXPECT_EQ(diff, 0) << name;
  }
  // Same model up to the order of float operations in RoPE. The packed kernels round activations
  // to int8 blocks, so a last-bit difference in q or k can move a rounding boundary and grow over
  // the layers: 1.9e-7 in the GCC build, 1.2e-2 in the clang sanitizer build (the compilers fuse
  // the two RoPE paths' multiply-adds differently). A wrong permutation gives O(1).
  const double d = logits_rel_diff(h, q, "models/stories260K/golden.json");
  std::printf("stories260K int4:gc -> compressed-tensors: rel dlogit %.3g\n", d);
  EXPECT_LE(d, 5e-2);
}

size_t entries_in(const std::string& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

void expect_refused(const ModelSource& src, HfQuantFormat f, const std::string& needle) {
  const std::string parent = test::temp_dir();
  HfQuantExportOptions opt;
  opt.format = f;
  try {
    export_hf_quant(src, opt, parent + "/out");
    ADD_FAILURE() << "no error; wanted " << needle;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_EQ(entries_in(parent), 0u) << "nothing may be left behind";
}

TEST(HfQuantExport, UnsupportedInputThrowsAndLeavesNothing) {
  const ModelSource nf4 = open_model_source(quantize("models/ref-s", "rtn:nf4:g64", {}));
  for (HfQuantFormat f :
       {HfQuantFormat::Gptq, HfQuantFormat::Awq, HfQuantFormat::CompressedTensors})
    expect_refused(nf4, f, "nf4:g64 is not an integer grid");
  const ModelSource g128 = open_model_source(quantize("models/ref-s", "rtn:int4:g128", {}));
  expect_refused(
      g128, HfQuantFormat::Awq,
      "layers.0.down_proj: int4:g128 on shape [128, 352]: awq needs a group size dividing");
  const ModelSource int3 = open_model_source(quantize("models/ref-s", "rtn:int3:g128", {}));
  expect_refused(int3, HfQuantFormat::CompressedTensors, "supports 4 and 8 bits");
  expect_refused(int3, HfQuantFormat::Awq, "int4 only");
  const ModelSource mixed = open_model_source(
      quantize("models/ref-s", "rtn:int4:g128", {"layers\\.1\\.up_proj=rtn:int8:g128"}));
  expect_refused(mixed, HfQuantFormat::Gptq, "one bit width and group size per model");
  const ModelSource fp = open_model_source(test::shared_path("models/ref-s"));
  expect_refused(fp, HfQuantFormat::Gptq, "is not quantized");
  expect_refused(fp, HfQuantFormat::CompressedTensors, "no block Linear is quantized");
  // A failure half-way through writing (a norm missing) removes the temporary directory.
  ModelSource bad = g128;
  bad.tensors.erase("layers.2.ffn_norm");
  expect_refused(bad, HfQuantFormat::Gptq, "layers.2.ffn_norm");
  // An existing non-empty output directory is refused.
  const std::string dir = export_dir(g128, HfQuantFormat::Gptq);
  HfQuantExportOptions opt;
  EXPECT_THROW(export_hf_quant(g128, opt, dir), Error);
  EXPECT_TRUE(fs::exists(dir + "/config.json"));
}

TEST(HfQuantExport, CliWritesAndReadsBack) {
  const std::string q = quantize("models/ref-s", "rtn:int4:g128", {});
  const std::string out = test::temp_dir() + "/cli-gptq";
  const auto r =
      test::run_command(test::lowbit_bin() + " export -m " + q + " --format gptq -o " + out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("28 packed linears"), std::string::npos) << r.out;
  const auto info = test::run_command(test::lowbit_bin() + " info -m " + out);
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("gptq int4 g128 sym (gptq checkpoint)"), std::string::npos) << info.out;
  const auto bad = test::run_command(test::lowbit_bin() + " export -m " + q + " --format awq -o " +
                                     out + "-awq");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("[export]"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(out + "-awq"));
  const auto help = test::run_command(test::lowbit_bin() + " export --help");
  EXPECT_NE(help.out.find("compressed-tensors"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
