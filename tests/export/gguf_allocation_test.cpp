// Bit allocation for GGUF export (export/gguf_allocation.h): the planned file is exactly within
// its target, uses only candidate types, is read back by lowbit's GGUF loader, and at the size
// of a uniform Q4_0 export (gptq codes in both) has a lower KLD.
#include "export/gguf_allocation.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "eval/compare.h"
#include "model/loader.h"
#include "testutil.h"

namespace lowbit {
namespace {

CalibrationOptions short_calibration() {
  CalibrationOptions c;
  c.source = test::shared_path("data/calibration/wiki.utf8");
  c.windows = 8;
  c.window_len = 128;
  return c;
}

double kld_vs(const std::string& file, const LoadedModel& ref, const std::vector<int32_t>& ids) {
  const LoadedModel m = load_model(file);
  return compare_models(*m.model, *ref.model, ids, 128, 128).kld_mean;
}

TEST(GgufAllocation, PlannedFileFitsAndBeatsUniformQ4_0) {
  const std::string dir = test::temp_dir();
  const LoadedModel ref = load_model(test::shared_path("models/ref-s"));
  GgufExportOptions uniform;
  parse_export_type("Q4_0", uniform);
  uniform.method = GgufMethod::Gptq;
  uniform.calibration = short_calibration();
  uniform.warn = [](const std::string&) {};
  export_gguf(ref.source, *ref.tokenizer, uniform, dir + "/uniform.gguf");
  const int64_t target = static_cast<int64_t>(std::filesystem::file_size(dir + "/uniform.gguf"));
  EXPECT_EQ(gguf_export_size(ref.source, *ref.tokenizer, uniform), target);  // the size is exact

  // ref-s rows are 128 or 352 long: the K-quants do not apply, the 32-blocks do.
  MeasureOptions mo = gguf_measure_options(GgufMethod::Gptq, {"Q4_0", "IQ4_NL", "Q5_0", "Q8_0", "Q4_K"},
                                           {"Q4_0", "Q8_0", "F16"});
  mo.calibration = short_calibration();
  mo.kld_windows = 2;
  const Measurement m = measure_model(ref.source, *ref.tokenizer, mo);
  for (const TensorMeasurement& t : m.tensors)
    for (const CandidateCost& c : t.candidates) EXPECT_NE(c.recipe, "Q4_K") << t.name;
  GgufExportOptions planned;
  planned.method = GgufMethod::Gptq;
  planned.calibration = short_calibration();
  planned.warn = [](const std::string&) {};
  const Allocation al = allocate_gguf(m, ref.source, *ref.tokenizer, target, planned);
  export_gguf(ref.source, *ref.tokenizer, planned, dir + "/planned.gguf");
  const int64_t size = static_cast<int64_t>(std::filesystem::file_size(dir + "/planned.gguf"));
  EXPECT_LE(size, target);
  EXPECT_GT(size, target * 97 / 100);
  std::set<std::string> allowed = {"Q4_0", "IQ4_NL", "Q5_0", "Q8_0", "F16", "F32"};
  for (const GgufExportTensor& t : plan_gguf_export(ref.source, planned).tensors)
    EXPECT_TRUE(allowed.count(ggml_type_label(t.type))) << t.name << " " << ggml_type_label(t.type);

  const std::string text = test::read_file(test::shared_path("data/wikitext-2-raw/wiki.test.raw"));
  const std::vector<int32_t> ids = ref.tokenizer->encode(text.substr(0, 40000), false);
  const double k_uniform = kld_vs(dir + "/uniform.gguf", ref, ids), k_planned = kld_vs(dir + "/planned.gguf", ref, ids);
  std::printf("ref-s GGUF at %lld bytes: uniform Q4_0 KLD %.5f, planned %.5f (predicted %.5f)\n",
              static_cast<long long>(target), k_uniform, k_planned, al.predicted_kld);
  EXPECT_LT(k_planned, 0.9 * k_uniform);
  EXPECT_GT(k_planned, 0.2 * k_uniform);
}

TEST(GgufAllocation, BadCandidatesAreRefused) {
  test::expect_error([] { gguf_measure_options(GgufMethod::Gptq, {"Q4_0", "Q9_9"}, {}); }, "unknown GGUF candidate type 'Q9_9'",
                     "export");
}

}  // namespace
}  // namespace lowbit
