// The layer-streaming calibrated pipeline on ref-s: its activations are the quantized model's
// own, it is deterministic, and GPTQ / AWQ / activation-weighted RTN beat plain RTN at 3 bits.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "base/error.h"
#include "base/mapped_file.h"
#include "eval/compare.h"
#include "eval/perplexity.h"
#include "io/lowbit_file.h"
#include "model/loader.h"
#include "pipeline/quantize.h"
#include "ref_s_quantize.h"
#include "testutil.h"

namespace lowbit {
namespace {

using test::quantize_ref_s;
using test::small_calibration;

// Dense fp32 weights, so that the model's forward uses the same arithmetic as the pipeline.
ModelSource dequantized_source(const std::string& path) { return test::dense_source(path); }

TEST(CalibratedPipeline, StreamedActivationsEqualTheQuantizedModelsForward) {
  const std::string out = test::temp_dir() + "/stream.lowbit";
  QuantizeOptions opt = small_calibration("gptq:int4:g128");
  opt.calib_nll = true;
  const QuantizeReport r = quantize_ref_s(opt, out);
  EXPECT_EQ(r.calib_windows, 16);
  EXPECT_EQ(r.calib_window_len, 128);
  EXPECT_GT(r.peak_rss_bytes, 0);
  // Run the same windows through the written model, layer after layer in one forward pass.
  const ModelSource src = dequantized_source(out);
  const LlamaModel model(src);
  const auto tok = load_tokenizer_for(src, "");
  const CalibrationSet cs = load_calibration(*tok, opt.calibration);
  NllStats nll;
  std::vector<float> logits;
  for (const auto& w : cs.windows) {
    KvCache cache = model.new_cache(static_cast<int64_t>(w.size()));
    model.forward(w, cache, true, logits);
    for (size_t t = 0; t + 1 < w.size(); ++t)
      nll.add(token_nll(std::span<const float>(&logits[t * 4096], 4096), w[t + 1]));
  }
  std::printf("calibration nll: pipeline %.6f, model %.6f\n", r.calib_nll, nll.mean());
  EXPECT_NEAR(r.calib_nll, nll.mean(), 1e-4 * nll.mean());
}

TEST(CalibratedPipeline, SameInputsGiveIdenticalFiles) {
  for (const char* recipe : {"gptq:int3:g64", "awq:int4:g128"}) {
    const std::string a = test::temp_dir() + "/det-a.lowbit", b = test::temp_dir() + "/det-b.lowbit";
    quantize_ref_s(small_calibration(recipe), a);
    quantize_ref_s(small_calibration(recipe), b);
    EXPECT_EQ(test::read_file(a), test::read_file(b)) << recipe;
  }
}

TEST(CalibratedPipeline, ReportsOutputErrorPerLinear) {
  const QuantizeReport r = quantize_ref_s(small_calibration("imatrix:int4:g128"), test::temp_dir() + "/im.lowbit");
  int linears = 0;
  for (const TensorReport& t : r.tensors) {
    if (!t.name.ends_with("_proj")) continue;
    ++linears;
    EXPECT_EQ(t.recipe, "imatrix:int4:g128");
    EXPECT_GT(t.rel_output_error, 0.0) << t.name;
    EXPECT_LT(t.rel_output_error, 0.05) << t.name;
  }
  EXPECT_EQ(linears, 4 * 7);
}

// Mean KL-divergence from fp32 on held-out text (wikitext-2 test, first 8192 tokens, ctx 256).
TEST(CalibratedPipeline, CalibratedAlgorithmsBeatRtnAtThreeBits) {
  LoadedModel fp = load_model(test::shared_path("models/ref-s"));
  std::vector<int32_t> ids =
      fp.tokenizer->encode(read_text_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw")), false);
  ids.resize(8192);
  std::map<std::string, double> kld;
  for (const char* recipe : {"rtn:int3:g128", "imatrix:int3:g128", "gptq:int3:g128", "awq:int3:g128"}) {
    const std::string out = test::temp_dir() + "/q3.lowbit";
    quantize_ref_s(small_calibration(recipe), out);
    const LoadedModel q = load_model(out);
    kld[recipe] = compare_models(*q.model, *fp.model, ids, 256, 256).kld_mean;
    std::printf("%-18s KLD %.5f\n", recipe, kld[recipe]);
  }
  const double rtn = kld["rtn:int3:g128"];
  ASSERT_GT(rtn, 0.0);
  // Ratios to RTN's KLD, measured and pinned in two-sided bands (docs/BENCHMARKS.md has the
  // ref-m sweep). Measured: gptq 0.519, awq 0.747, imatrix 0.947 -- with 16 x 128 calibration
  // tokens on this small model the diagonal-weighted imatrix clip search barely beats rounding.
  EXPECT_NEAR(kld["gptq:int3:g128"] / rtn, 0.52, 0.1);
  EXPECT_NEAR(kld["awq:int3:g128"] / rtn, 0.75, 0.1);
  EXPECT_NEAR(kld["imatrix:int3:g128"] / rtn, 0.95, 0.1);
}

TEST(CalibratedPipeline, MissingCalibrationDataFailsWithoutOutput) {
  const std::string out = test::temp_dir() + "/nocalib.lowbit";
  QuantizeOptions opt = small_calibration("gptq:int4:g128");
  opt.calibration.source = test::temp_dir() + "/no-such-dir";
  EXPECT_THROW(quantize_ref_s(opt, out), Error);
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(test::temp_dir()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

}  // namespace
}  // namespace lowbit
