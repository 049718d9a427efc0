// .lowbit files: write -> read is bit-exact and deterministic; the result runs and its quality
// sits in pinned bands; malformed files give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "algo/rtn.h"
#include "base/error.h"
#include "base/mapped_file.h"
#include "base/parallel.h"
#include "eval/perplexity.h"
#include "io/lowbit_file.h"
#include "io/safetensors.h"
#include "model/generate.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "legacy_edges.h"
#include "testutil.h"

namespace lowbit {
namespace {

std::string quantize_to(const std::string& model, const std::string& recipe, const std::string& name,
                        std::vector<std::string> overrides = {}) {
  const ModelSource src = open_model_source(test::shared_path(model));
  const auto tok = load_tokenizer_for(src, "");
  QuantizeOptions opt;
  opt.recipe = recipe;
  opt.overrides = test::with_legacy_edges(recipe, std::move(overrides));
  const std::string out = test::temp_dir() + "/" + name;
  quantize_model(src, *tok, opt, out);
  return out;
}

TEST(LowbitFile, RoundTripIsBitExactAndDeterministic) {
  const std::string a = quantize_to("models/ref-s", "rtn:int4:g128", "a.lowbit");
  const std::string b = quantize_to("models/ref-s", "rtn:int4:g128", "b.lowbit");
  EXPECT_EQ(test::read_file(a), test::read_file(b)) << "same inputs must give identical bytes";
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  const ModelSource q = load_lowbit_model(a);
  EXPECT_EQ(q.format, "lowbit");
  EXPECT_EQ(q.config.dim, src.config.dim);
  // Every quantized matrix equals a fresh RTN of the original weights, byte for byte.
  for (const auto& [name, m] : q.quantized) {
    const std::vector<float> w = to_f32(src.tensor(name));
    const QuantizedMatrix fresh = quantize_rtn(w.data(), m.rows, m.cols, m.spec, {});
    EXPECT_EQ(m.codes, fresh.codes) << name;
    EXPECT_EQ(m.scales, fresh.scales) << name;
  }
  EXPECT_EQ(q.quantized.size(), 4u * 7u + 1u);  // block linears + lm_head
  // Plain tensors are exact.
  EXPECT_EQ(to_f32(q.tensor("layers.1.ffn_norm")), to_f32(src.tensor("layers.1.ffn_norm")));
}

// quantize_model streams tensors through LowbitWriter; writing the same tensors at once with
// write_lowbit must give the same bytes.
TEST(LowbitFile, StreamingWriterEqualsWholeModelWriter) {
  const std::string a = quantize_to("models/ref-s", "rtn:int4:g64:asym", "stream.lowbit", {"lm_head=f16"});
  const ModelSource q = load_lowbit_model(a);
  LowbitModelIn m;
  m.config = q.config;
  m.recipe = q.recipe;
  m.source = test::shared_path("models/ref-s");
  m.tokenizer = q.embedded_tokenizer;
  for (const auto& [name, shape] : canonical_tensor_shapes(q.config)) {
    LowbitTensorIn t;
    t.name = name;
    t.recipe = q.recipes.at(name);
    auto it = q.quantized.find(name);
    if (it != q.quantized.end()) {
      t.quantized = true;
      t.matrix = &it->second;
    } else {
      const TensorView& v = q.tensor(name);
      t.values = to_f32(v);
      t.shape = v.shape;
      t.plain_dtype = v.dtype == DType::F16 ? "F16" : v.dtype == DType::BF16 ? "BF16" : "F32";
    }
    m.tensors.push_back(std::move(t));
  }
  const std::string b = test::temp_dir() + "/whole.lowbit";
  write_lowbit(b, m);
  EXPECT_EQ(test::read_file(a), test::read_file(b));
}

TEST(LowbitFile, IsAValidSafetensorsFileWith64ByteAlignment) {
  const std::string a = quantize_to("models/ref-s", "rtn:nf4:g64:dq", "nf4.lowbit");
  SafetensorsFile f(a);  // any safetensors reader lists it
  const MappedFile raw(a);
  int real = 0;
  for (const auto& [name, e] : f.entries()) {
    if (name.starts_with("__pad.")) continue;  // the fillers themselves sit in the gaps
    EXPECT_EQ((e.view.data - raw.data()) % 64, 0) << name;
    ++real;
  }
  EXPECT_GT(real, 50);
  EXPECT_EQ(f.metadata().at("lowbit.version"), "1");
  EXPECT_TRUE(f.entries().count("layers.0.q_proj.scale_codes"));
}

TEST(LowbitFile, CarriesItsTokenizerAndRuns) {
  const std::string a = quantize_to("models/ref-s", "rtn:int8:g128", "int8.lowbit");
  LoadedModel m = load_model(a);
  LoadedModel fp = load_model(test::shared_path("models/ref-s"));
  const std::string text = "The meaning of life is";
  EXPECT_EQ(m.tokenizer->encode(text, true), fp.tokenizer->encode(text, true));
  EXPECT_EQ(m.tokenizer->kind(), fp.tokenizer->kind());
}

// ref-m perplexity on the first 16384 tokens of wikitext-2 (64 windows of 256): int8 within
// 0.5% of fp32; int4-g128 and nf4-g64 in bands pinned around measured values.
// Bands on ppl / fp32 ppl, pinned around the values measured when this test was written
// (int4:g128 1.00596, nf4:g64 1.00425 on this slice): roughly half to twice the measured excess,
// so a real regression, or an unexplained improvement, fails. Re-pin from the printed line.
constexpr double kInt4Lo = 1.0025, kInt4Hi = 1.012;
constexpr double kNf4Lo = 1.0018, kNf4Hi = 1.0085;

double ppl_of(const std::string& path) {
  LoadedModel m = load_model(path);
  std::vector<int32_t> ids =
      m.tokenizer->encode(read_text_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")), false);
  ids.resize(16384);
  return perplexity(*m.model, ids, 256, 256).ppl;
}

TEST(LowbitQuality, RefMPerplexityBands) {
  const double fp = ppl_of(test::shared_path("models/ref-m"));
  const double i8 = ppl_of(quantize_to("models/ref-m", "rtn:int8:g128", "m8.lowbit"));
  const double i4 = ppl_of(quantize_to("models/ref-m", "rtn:int4:g128", "m4.lowbit"));
  const double nf4 = ppl_of(quantize_to("models/ref-m", "rtn:nf4:g64", "mnf4.lowbit"));
  std::printf("ref-m ppl (16384 tokens): fp32 %.4f  int8:g128 %.4f  int4:g128 %.4f  nf4:g64 %.4f\n", fp, i8, i4, nf4);
  EXPECT_LT(std::abs(i8 / fp - 1.0), 0.005);
  EXPECT_GT(i4 / fp, kInt4Lo);
  EXPECT_LT(i4 / fp, kInt4Hi);
  EXPECT_GT(nf4 / fp, kNf4Lo);
  EXPECT_LT(nf4 / fp, kNf4Hi);
}

// Rewrites one metadata value of a .lowbit file (header JSON, re-padded to the same length).
std::string with_metadata(const std::string& path, const std::string& key, const std::string& value) {
  std::string bytes = test::read_file(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  header["__metadata__"][key] = value;
  std::string h = header.dump();
  EXPECT_LE(h.size(), n);
  h.resize(n, ' ');
  const std::string out = test::temp_dir() + "/mut.lowbit";
  test::write_file(out, bytes.substr(0, 8) + h + bytes.substr(8 + n));
  return out;
}

TEST(LowbitFile, MalformedFilesGiveClearErrors) {
  const std::string a = quantize_to("models/ref-s", "rtn:int4:g128", "m.lowbit");
  auto expect_error = [](const std::string& p, const std::string& needle) {
    try {
      load_lowbit_model(p);
      ADD_FAILURE() << "no error, expected '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(with_metadata(a, "lowbit.version", "99"), "version 99");
  expect_error(with_metadata(a, "lowbit.config", "{}"), "lowbit.config");
  const auto tensors = nlohmann::json::parse(SafetensorsFile(a).metadata().at("lowbit.tensors"));
  auto bad = tensors;
  bad["layers.0.q_proj"]["shape"] = {64, 128};
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "layers.0.q_proj");
  bad = tensors;
  bad["layers.0.q_proj"]["format"] = "int4:g64";
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "layers.0.q_proj.scales");
  bad = tensors;
  bad["layers.0.q_proj"]["format"] = "int9:g64";
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "int9");
  // Hostile index shapes and config values (issue 14): refused by the bytes actually present,
  // before any allocation, and never truncated.
  bad = tensors;
  bad["layers.0.q_proj"]["shape"] = {0, 64};
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "empty shape");
  bad = tensors;
  bad["layers.0.q_proj"]["shape"] = {1, int64_t{1} << 32};
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "layers.0.q_proj.codes");
  bad = tensors;
  bad["layers.0.q_proj"]["shape"] = {64.5, 64};
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "non-integer dimension");
  bad = tensors;
  bad["layers.0.q_proj"]["format"] = "e8p:g64";
  bad["layers.0.q_proj"]["shape"] = {64, 60};
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "multiple of 8");
  auto config = nlohmann::json::parse(SafetensorsFile(a).metadata().at("lowbit.config"));
  for (const auto& [key, value] : {std::pair<const char*, nlohmann::json>{"n_layers", 1.5},
                                   {"bos_id", int64_t{1} << 33}, {"tie_embeddings", 1}, {"norm_eps", "x"}}) {
    auto c = config;
    c[key] = value;
    expect_error(with_metadata(a, "lowbit.config", c.dump()), key);
  }
  expect_error(with_metadata(a, "lowbit.tensors", std::string(100, '[')), "nested deeper than 64");
  // Found by fuzz/lowbit_file (fuzz/regressions/lowbit_file): a tokenizer entry of another JSON
  // type escaped as nlohmann::json's type_error instead of a lowbit::Error.
  expect_error(with_metadata(a, "lowbit.tokenizer", R"({"kind": 5})"), "lowbit.tokenizer");
  expect_error(with_metadata(a, "lowbit.tokenizer", "[]"), "lowbit.tokenizer");
  const std::string full = test::read_file(a);
  const std::string cut = test::temp_dir() + "/cut.lowbit";
  test::write_file(cut, full.substr(0, full.size() / 2));
  EXPECT_THROW(load_lowbit_model(cut), Error);
}

// Low-rank corrections (":lr<r>") round-trip exactly, and their malformed index entries or
// parts are refused with the tensor named.
TEST(LowbitFile, CorrectionsRoundTripAndMalformedOnesAreRefused) {
  const std::string a = quantize_to("models/ref-s", "rtn:int4:g128:lr2", "lr.lowbit");
  const ModelSource src = load_lowbit_model(a);
  ASSERT_EQ(src.corrections.size(), 28u);
  const LowRankFactors& c = src.corrections.at("layers.1.up_proj");
  EXPECT_EQ(c.rank, 2);
  EXPECT_EQ(c.rows, src.quantized.at("layers.1.up_proj").rows);
  EXPECT_EQ(c.cols, src.quantized.at("layers.1.up_proj").cols);
  const SafetensorsFile f(a);
  EXPECT_EQ(f.entries().at("layers.1.up_proj.lr_b").view.dtype, DType::F16);
  EXPECT_EQ(f.entries().at("layers.1.up_proj.lr_a").view.shape, (std::vector<int64_t>{2, c.cols}));
  auto expect_error = [](const std::string& p, const std::string& needle) {
    test::expect_error([&] { load_lowbit_model(p); }, needle);
  };
  const auto tensors = nlohmann::json::parse(f.metadata().at("lowbit.tensors"));
  auto bad = tensors;
  bad["layers.0.q_proj"]["low_rank"] = 0;
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "low_rank must be an integer in [1, 128]");
  bad["layers.0.q_proj"]["low_rank"] = "2";
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "layers.0.q_proj': low_rank");
  bad["layers.0.q_proj"]["low_rank"] = 3;  // the parts hold rank 2
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "part 'layers.0.q_proj.lr_a' has");
  bad = tensors;
  bad["norm"]["low_rank"] = 2;
  expect_error(with_metadata(a, "lowbit.tensors", bad.dump()), "belong to quantized matrices");
  const std::string plain = quantize_to("models/ref-s", "rtn:int4:g128", "plain.lowbit");
  bad = nlohmann::json::parse(SafetensorsFile(plain).metadata().at("lowbit.tensors"));
  bad["layers.0.k_proj"]["low_rank"] = 1;  // no parts at all
  expect_error(with_metadata(plain, "lowbit.tensors", bad.dump()), "missing part 'layers.0.k_proj.lr_a'");
}

// A huge finite norm gain (-3e38) overflows the activations: no undefined behaviour in the
// kernels, and generation, perplexity and eval stop with an error instead of printing garbage.
TEST(LowbitFile, OverflowingWeightsGiveAnErrorNotGarbage) {
  const std::string a = quantize_to("models/stories260K/stories260K.bin", "rtn:int4:g32", "ovf.lowbit");
  std::string bytes = test::read_file(a);
  {
    const SafetensorsFile f(a);
    const TensorView& v = f.tensor("layers.0.attn_norm");
    const size_t off = static_cast<size_t>(v.data - f.file_data());
    const float huge = -3e38f;
    for (size_t i = 0; i < v.nbytes / 4; ++i) std::memcpy(&bytes[off + 4 * i], &huge, 4);
  }
  const std::string p = test::temp_dir() + "/ovf2.lowbit";
  test::write_file(p, bytes);
  const LoadedModel m = load_model(p, "");
  GenerateOptions opt;
  opt.max_new_tokens = 4;
  test::expect_error([&] { generate(*m.model, {1, 20, 30}, opt, [](int32_t) { return true; }); },
                     "non-finite logit", "generate");
  const std::vector<int32_t> ids = {1, 20, 30, 40, 50, 60, 70, 80};
  test::expect_error([&] { perplexity(*m.model, ids, 8, 8); }, "non-finite logits", "perplexity");
}

// Errors from deep inside the algorithms name the tensor they happened in (issue 14).
TEST(LowbitFile, QuantizeErrorsNameTheTensor) {
  const std::string dir = test::temp_dir() + "/nan-ref-s";
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "tokenizer.model"})
    std::filesystem::copy_file(test::shared_path(std::string("models/ref-s/") + f), dir + "/" + f);
  std::string bytes = test::read_file(test::shared_path("models/ref-s/model.safetensors"));
  {
    const SafetensorsFile f(test::shared_path("models/ref-s/model.safetensors"));
    const TensorView& v = f.tensor("model.layers.1.mlp.down_proj.weight");
    const float nan = NAN;
    std::memcpy(&bytes[static_cast<size_t>(v.data - f.file_data()) + 4 * 17], &nan, 4);
  }
  test::write_file(dir + "/model.safetensors", bytes);
  const ModelSource src = open_model_source(dir);
  const auto tok = load_tokenizer_for(src, "");
  for (const char* recipe : {"rtn:int4:g32", "gptq:int4:g32"}) {
    QuantizeOptions opt;
    opt.recipe = recipe;
    opt.calibration.windows = 2;
    opt.calibration.window_len = 16;
    test::expect_error([&] { quantize_model(src, *tok, opt, test::temp_dir() + "/nan.lowbit"); },
                       "layers.1", "");
    test::expect_error([&] { quantize_model(src, *tok, opt, test::temp_dir() + "/nan.lowbit"); },
                       "down_proj", "");
  }
}

// Every algorithm writes byte-identical files whatever the thread count (issue 14): work is cut
// into fixed tiles, never per thread.
TEST(LowbitFile, ByteIdenticalAcrossThreadCounts) {
  const ModelSource src = open_model_source(test::shared_path("models/stories260K/stories260K.bin"));
  const auto tok = load_tokenizer_for(src, "");
  for (const char* recipe : {"rtn:int4:g32:clip", "imatrix:int4:g32", "gptq:int3:g32", "awq:int4:g32",
                             "gptq:e8p:g32", "rtn:nf4:g64:dq"}) {
    std::string first;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      QuantizeOptions opt;
      opt.recipe = recipe;
      opt.calibration.windows = 8;
      opt.calibration.window_len = 64;
      const std::string out = test::temp_dir() + "/t" + std::to_string(threads) + ".lowbit";
      quantize_model(src, *tok, opt, out);
      const std::string bytes = test::read_file(out);
      if (first.empty())
        first = bytes;
      else
        EXPECT_TRUE(bytes == first) << recipe << " differs with " << threads << " threads";
    }
    set_num_threads(0);
  }
}

TEST(LowbitFile, QuantizeRefusesBadRecipeAndLeavesNoFile) {
  const ModelSource src = open_model_source(test::shared_path("models/ref-s"));
  const auto tok = load_tokenizer_for(src, "");
  QuantizeOptions opt;
  opt.recipe = "rtn:int4:g7";
  const std::string out = test::temp_dir() + "/never.lowbit";
  EXPECT_THROW(quantize_model(src, *tok, opt, out), Error);
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace lowbit
