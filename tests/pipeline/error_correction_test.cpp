// ":lr<r>" recipes end to end: the correction is fitted per linear and lowers every linear's
// output error on the calibration inputs; it is stored in the .lowbit file and read back
// exactly; the model applies it in every product (packed matmul, training's decoded forward and
// its input gradient) as if the weight were Ŵ + B·A; the calibrated pipeline's activations are
// those of the written model; tools that cannot carry it refuse the file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "algo/rtn.h"
#include "base/error.h"
#include "formats/quant_spec.h"
#include "eval/perplexity.h"
#include "export/gguf_export.h"
#include "io/lowbit_file.h"
#include "kernels/packed_matrix.h"
#include "model/linear.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "ref_s_quantize.h"
#include "testutil.h"

namespace lowbit {
namespace {

using test::dense_source;
using test::quantize_ref_s;
using test::small_calibration;

std::map<std::string, double> output_errors(const QuantizeReport& r) {
  std::map<std::string, double> out;
  for (const TensorReport& t : r.tensors)
    if (t.name.ends_with("_proj")) out[t.name] = t.rel_output_error;
  return out;
}

TEST(ErrorCorrection, LowersEveryLinearsOutputErrorAndCountsItsBytes) {
  const std::string plain_path = test::temp_dir() + "/p.lowbit";
  const QuantizeReport plain = quantize_ref_s(small_calibration("gptq:int2:g64:asym"), plain_path);
  const std::string out = test::temp_dir() + "/lr.lowbit";
  const QuantizeReport lr = quantize_ref_s(small_calibration("gptq:int2:g64:asym:lr8"), out);
  const auto e0 = output_errors(plain), e1 = output_errors(lr);
  ASSERT_EQ(e1.size(), 28u);
  double sum0 = 0, sum1 = 0;
  for (const auto& [name, err] : e1) {
    EXPECT_LT(err, e0.at(name)) << name;
    sum0 += e0.at(name), sum1 += err;
  }
  std::printf("mean relative output error: gptq:int2:g64:asym %.4f, with :lr8 %.4f\n", sum0 / 28, sum1 / 28);
  EXPECT_LT(sum1, 0.9 * sum0);
  // Each linear pays 2 bytes per factor element; the file holds exactly what the report counts.
  const ModelSource src = load_lowbit_model(out);
  ASSERT_EQ(src.corrections.size(), 28u);
  for (const TensorReport& t : lr.tensors) {
    if (!t.name.ends_with("_proj")) continue;
    EXPECT_EQ(t.recipe, "gptq:int2:g64:asym:lr8");
    const LowRankFactors& c = src.corrections.at(t.name);
    EXPECT_EQ(c.rank, 8);
    EXPECT_EQ(t.bytes, src.quantized.at(t.name).storage_bytes() + 2 * 8 * (t.shape[0] + t.shape[1])) << t.name;
  }
  const ModelSource p = load_lowbit_model(plain_path);
  EXPECT_TRUE(p.corrections.empty());
  for (const TensorReport& t : plain.tensors) {
    if (t.name.ends_with("_proj")) {
      EXPECT_EQ(t.bytes, p.quantized.at(t.name).storage_bytes()) << t.name;
    }
  }
}

double calibration_nll(const LlamaModel& model, const CalibrationSet& cs) {
  NllStats nll;
  std::vector<float> logits;
  for (const auto& w : cs.windows) {
    KvCache cache = model.new_cache(static_cast<int64_t>(w.size()));
    model.forward(w, cache, true, logits);
    for (size_t t = 0; t + 1 < w.size(); ++t) nll.add(token_nll(std::span<const float>(&logits[t * 4096], 4096), w[t + 1]));
  }
  return nll.mean();
}

// The pipeline continued with Ŵ + B·A: its calibration NLL is the written model's (to the
// float-order tolerance of calibrated_test's twin), and clearly not the model's without them.
TEST(ErrorCorrection, PipelineActivationsAreTheWrittenModels) {
  const std::string out = test::temp_dir() + "/lr-nll.lowbit";
  QuantizeOptions opt = small_calibration("gptq:int4:g128:lr8");
  opt.calib_nll = true;
  const QuantizeReport r = quantize_ref_s(opt, out);
  const ModelSource dense = dense_source(out);
  const auto tok = load_tokenizer_for(dense, "");
  const CalibrationSet cs = load_calibration(*tok, opt.calibration);
  const double with = calibration_nll(LlamaModel(dense), cs);
  ModelSource uncorrected = load_lowbit_model(out);
  uncorrected.corrections.clear();
  const double without = calibration_nll(LlamaModel(uncorrected), cs);
  std::printf("calibration nll: pipeline %.6f, written model %.6f, without its corrections %.6f\n", r.calib_nll, with, without);
  EXPECT_NEAR(r.calib_nll, with, 1e-4 * with);
  EXPECT_GT(std::fabs(r.calib_nll - without), 2 * std::fabs(r.calib_nll - with));
}

// The packed model with its corrections against the dense Ŵ + B·A model: as close as the packed
// model without them is to the dense Ŵ (the kernels' own rounding), while the correction itself
// moves the logits much more: it is applied, once.
TEST(ErrorCorrection, ModelAppliesTheStoredCorrection) {
  const std::string out = test::temp_dir() + "/lr-run.lowbit";
  QuantizeOptions opt;
  opt.recipe = "rtn:int3:g64:lr16";  // no calibration: the plain SVD of the error
  quantize_ref_s(opt, out);
  ModelSource packed = load_lowbit_model(out);
  const LlamaModel with(packed), dense(dense_source(out)), dense_plain(dense_source(out, false));
  packed.corrections.clear();
  const LlamaModel without(packed);
  const std::vector<int32_t> tokens = {1, 450, 996, 1354, 1701, 432, 3204, 975, 278, 366, 2203};
  auto logits = [&](const LlamaModel& m) {
    std::vector<float> l;
    KvCache k = m.new_cache(16);
    m.forward(tokens, k, true, l);
    return l;
  };
  auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d;
  };
  const std::vector<float> lw = logits(with), ld = logits(dense), lo = logits(without), lp = logits(dense_plain);
  const double kernel = max_diff(lo, lp), applied = max_diff(lw, ld), effect = max_diff(ld, lp);
  std::printf("max |logit diff|: packed vs dense %.3f with corrections, %.3f without; corrections move %.3f\n", applied,
              kernel, effect);
  EXPECT_LT(applied, 2 * kernel + 1e-3);
  EXPECT_GT(effect, 5 * applied);
}

TEST(ErrorCorrection, TrainingProductsIncludeIt) {
  const int64_t R = 40, C = 64, r = 3, T = 5;
  std::vector<float> w(R * C), x(T * C), dy(T * R);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * float(i)) * 0.1f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * float(i));
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = std::sin(0.05f * float(i) + 1.0f);
  const QuantizedMatrix q = quantize_rtn(w.data(), R, C, parse_quant_spec("int4:g32"));
  LowRankFactors d;  // fp16-exact values (the layer keeps them in fp16)
  d.rank = r, d.rows = R, d.cols = C;
  for (int64_t i = 0; i < R * r; ++i) d.b.push_back(float(i % 7 - 3) / 64.0f);
  for (int64_t i = 0; i < r * C; ++i) d.a.push_back(float(i % 5 - 2) / 32.0f);
  std::vector<float> full = dequantize(q);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j)
      for (int64_t k = 0; k < r; ++k) full[i * C + j] += d.b[i * r + k] * d.a[k * C + j];
  Linear packed = Linear::packed(PackedMatrix::pack(q));
  packed.set_correction(d);
  EXPECT_EQ(packed.format(), "int4:g32+lr3");
  Matrix m;
  m.rows = R, m.cols = C, m.owned = full, m.data = m.owned.data();
  const Linear dense = Linear::dense(std::move(m));
  std::vector<float> y1(T * R), y2(T * R), g1(T * C, 1.0f), g2(T * C, 1.0f);
  packed.forward_decoded(x.data(), T, nullptr, y1.data());
  dense.forward_decoded(x.data(), T, nullptr, y2.data());
  for (size_t i = 0; i < y1.size(); ++i) EXPECT_NEAR(y1[i], y2[i], 1e-5) << i;
  packed.backward_input(dy.data(), T, g1.data(), /*accumulate=*/true);
  dense.backward_input(dy.data(), T, g2.data(), /*accumulate=*/true);
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_NEAR(g1[i], g2[i], 1e-5) << i;
  packed.backward_input(dy.data(), T, g1.data());
  dense.backward_input(dy.data(), T, g2.data());
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_NEAR(g1[i], g2[i], 1e-5) << i;
  LowRankFactors wrong = d;
  wrong.cols = C - 1;
  test::expect_error([&] { packed.set_correction(wrong); }, "does not match its weight");
  // Packed inference (activations quantized by the int4 kernel) agrees to that kernel's rounding.
  packed.matmul(x.data(), T, nullptr, y1.data());
  for (size_t i = 0; i < y1.size(); ++i) EXPECT_NEAR(y1[i], y2[i], 2e-2 * (1 + std::fabs(y2[i]))) << i;
}

TEST(ErrorCorrection, ToolsThatCannotCarryItRefuse) {
  const std::string dir = test::temp_dir(), out = dir + "/lr-export.lowbit";
  QuantizeOptions opt;
  opt.recipe = "rtn:int4:g64:lr2";
  quantize_ref_s(opt, out);
  const ModelSource src = load_lowbit_model(out);
  const auto tok = load_tokenizer_for(src, "");
  GgufExportOptions eo;
  test::expect_error([&] { export_gguf(src, *tok, eo, dir + "/lr.gguf"); }, "low-rank error correction");
  EXPECT_FALSE(std::filesystem::exists(dir + "/lr.gguf"));
  // Only linear layers take one.
  QuantizeOptions bad;
  bad.recipe = "rtn:int4:g64";
  bad.overrides = {"embed_tokens=rtn:int4:g64:lr4"};
  test::expect_error([&] { quantize_ref_s(bad, dir + "/bad.lowbit"); }, "applies to linear layers only");
  bad.overrides = {"layers\\.0\\.q_proj=rtn:int4:g64:lr200"};  // ref-s q_proj is 128 x 128
  test::expect_error([&] { quantize_ref_s(bad, dir + "/bad.lowbit"); }, "layers.0.q_proj");
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.lowbit"));
}

}  // namespace
}  // namespace lowbit
