// Scale tuning (train/kd_tune.h, `lowbit quantize --tune kd`):
//  - Linear::scale_gradient against its plain-loop twin Σ_group (dYᵀX) ⊙ Ŵ on awkward shapes
//    (a row tile boundary at 128, a short last group);
//  - the whole model's θ gradient (KL to the float teacher) against central differences along
//    "scale every group of one matrix by e^t" — with the matrix's scales first rounded to 6
//    significant bits, so that the ±1/16 steps are exact in fp16 and the finite difference sees
//    only the trained function;
//  - tuning stories260K at 3 bits lowers the held-out KL into a band, the rewritten file keeps
//    its size, codes and every non-scale byte, and reloads to the tuned scales;
//  - bad inputs give errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>

#include "base/half.h"
#include "io/lowbit_file.h"
#include "model/loader.h"
#include "pipeline/calibration.h"
#include "pipeline/quantize.h"
#include "testutil.h"
#include "train/lora_model.h"
#include "train/kd_tune.h"

namespace lowbit {
namespace {

std::string stories_path() { return test::shared_path("models/stories260K/stories260K.bin"); }

// stories260K quantized with `recipe` into a fresh file.
std::string quantize_stories(const std::string& recipe, const std::string& name) {
  LoadedModel m = load_model(stories_path());
  QuantizeOptions opt;
  opt.recipe = recipe;
  const std::string out = test::temp_dir() + "/" + name;
  quantize_model(m.source, *m.tokenizer, opt, out);
  return out;
}

QuantizedMatrix random_matrix(const QuantSpec& spec, int64_t rows, int64_t cols, uint64_t seed) {
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> codes(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (uint8_t& c : codes) c = static_cast<uint8_t>(rng() % (1u << spec.bits));
    set_row_codes(m, r, codes.data());
    for (int64_t g = 0; g < m.groups_per_row(); ++g)
      set_group_params(m, r, g,
                       make_group_params(spec, 0.01f + 0.001f * static_cast<float>(rng() % 50),
                                         static_cast<int>(rng() % (1u << spec.bits))));
  }
  return m;
}

TEST(KdTune, ScaleGradientEqualsItsPlainTwin) {
  for (const char* spec_s : {"int3:g32:asym", "int4:g16", "int2:g64:asym"}) {
    const QuantSpec spec = parse_quant_spec(spec_s);
    const int64_t R = 131, C = 100, T = 7;
    const QuantizedMatrix m = random_matrix(spec, R, C, 3);
    const Linear lin = Linear::packed(PackedMatrix::pack(m));
    const std::vector<float> w = dequantize(m);
    std::mt19937_64 rng(4);
    std::normal_distribution<float> nd;
    std::vector<float> x(T * C), dy(T * R);
    for (float& v : x) v = nd(rng);
    for (float& v : dy) v = nd(rng);
    const int64_t G = lin.groups_per_row(), len = spec.group_len(C);
    ASSERT_EQ(G, m.groups_per_row());
    std::vector<float> g(R * G, 1.0f);  // accumulates onto what is there
    lin.scale_gradient(x.data(), dy.data(), T, g.data());
    for (int64_t r = 0; r < R; ++r)
      for (int64_t grp = 0; grp < G; ++grp) {
        double want = 1.0, mag = 1.0;
        for (int64_t j = grp * len; j < std::min(C, (grp + 1) * len); ++j) {
          double dw = 0;
          for (int64_t t = 0; t < T; ++t) dw += double(dy[t * R + r]) * x[t * C + j];
          want += dw * w[r * C + j];
          mag += std::fabs(dw * w[r * C + j]);
        }
        ASSERT_NEAR(g[r * G + grp], want, 1e-5 * mag) << spec_s << " row " << r << " group " << grp;
      }
  }
}

// Rounds every scale of m to 6 significant bits (a multiple of 2^(e−5) for 2^e <= |s| < 2^(e+1)).
void round_scales_to_6_bits(QuantizedMatrix& m) {
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t g = 0; g < m.groups_per_row(); ++g) {
      const GroupParams p = group_params(m, r, g);
      int e = 0;
      const float f = std::frexp(p.scale, &e);  // p.scale = f·2^e, 0.5 <= |f| < 1
      set_group_params(m, r, g, make_group_params(m.spec, std::ldexp(std::round(f * 64.0f) / 64.0f, e), p.zero));
    }
}

void set_scales_times(QuantizedMatrix& m, const QuantizedMatrix& base, float factor) {
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t g = 0; g < m.groups_per_row(); ++g) {
      const GroupParams p = group_params(base, r, g);
      const float s = p.scale * factor;
      ASSERT_EQ(f16_to_f32(f32_to_f16(s)), s);  // exact: the finite difference sees no rounding
      set_group_params(m, r, g, make_group_params(m.spec, s, p.zero));
    }
}

// Routes one layer's (x, dy) to its scale gradient.
struct OneLayerHook : LinearGradHook {
  const Linear* layer = nullptr;
  std::vector<float> grad;
  void on_backward(const Linear& w, const float* x, const float* dy, int64_t N) override {
    if (&w == layer) w.scale_gradient(x, dy, N, grad.data());
  }
};

TrainBatch random_batch(int64_t vocab, uint64_t seed) {
  TrainBatch b;
  b.n_seq = 2;
  b.len = 16;
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < b.n_seq * b.len; ++i) b.tokens.push_back(static_cast<int32_t>(rng() % vocab));
  b.targets.assign(b.tokens.size(), 0);
  return b;
}

std::vector<float> teacher_logits(const LlamaModel& teacher, const TrainBatch& b) {
  std::vector<float> out, logits;
  for (int64_t s = 0; s < b.n_seq; ++s) {
    KvCache cache = teacher.new_cache(b.len);
    teacher.forward(std::span(b.tokens.data() + s * b.len, b.len), cache, true, logits);
    out.insert(out.end(), logits.begin(), logits.end());
  }
  return out;
}

// A student whose matrix `name` has 6-bit scales, with the training model and a hook collecting
// that matrix's θ gradient. derivative(loss) is the central difference of loss() along "scale
// every group of the matrix by e^t": (L(17/16) − L(15/16)) / (ln 17/16 − ln 15/16).
struct ScaleDirection {
  ScaleDirection(const std::string& path, std::string layer_name) : name(std::move(layer_name)), src(load_lowbit_model(path)) {
    QuantizedMatrix& qm = src.quantized.at(name);
    round_scales_to_6_bits(qm);
    base = qm;
    student = std::make_unique<LlamaModel>(src);
    hook.layer = student->find_linear(name);
    hook.grad.assign(static_cast<size_t>(qm.rows * qm.groups_per_row()), 0.0f);
    lm = std::make_unique<LoraModel>(*student, none);
    lm->set_linear_grad_hook(&hook);
  }
  double analytic() const {
    double sum = 0;
    for (const float g : hook.grad) sum += g;
    return sum;
  }
  double derivative(const std::function<double()>& loss) {
    auto at = [&](float factor) {
      QuantizedMatrix q = base;
      set_scales_times(q, base, factor);
      student->replace_packed(name, PackedMatrix::pack(q));
      return loss();
    };
    return (at(17.0f / 16) - at(15.0f / 16)) / (std::log(17.0 / 16) - std::log(15.0 / 16));
  }

  std::string name;
  ModelSource src;
  QuantizedMatrix base;
  std::unique_ptr<LlamaModel> student;
  OneLayerHook hook;
  LoraAdapter none;
  std::unique_ptr<LoraModel> lm;
};

// The loss is ~0.1 per position here and moves by ~1e-3 over the ±6% step; the truncation error
// of the central difference is (h²/6)·L''' with h = ln(17/16) ≈ 0.06, under 1% of the
// derivative, and fp32 rounding of the summed loss (~1e-6 relative) is far below the signal:
// a 3% band separates a right gradient from a missing factor or term.
TEST(KdTune, GradientMatchesFiniteDifferencesOfTheDistillationLoss) {
  const std::string path = quantize_stories("rtn:int3:g32:asym", "fd.lowbit");
  LoadedModel teacher = load_model(stories_path());
  for (const char* name : {"layers.2.down_proj", "layers.0.q_proj", "lm_head"}) {
    ScaleDirection d(path, name);
    const TrainBatch b = random_batch(d.student->config().vocab_size, 9);
    const std::vector<float> t = teacher_logits(*teacher.model, b);
    d.lm->forward_backward_distill(b, t.data(), 1.0);
    const double numeric = d.derivative([&] { return d.lm->distill_loss(b, t.data()).loss; });
    EXPECT_NEAR(d.analytic(), numeric, 0.03 * std::fabs(numeric)) << name;
    EXPECT_GT(std::fabs(numeric), 1e-3) << name;  // the check has something to see
  }
}

// The block-wise stage's loss: Σ (block(x) − target)² for one block, x and target random hidden
// states of the ~unit scale the model's residual stream has. Same bound as above.
TEST(KdTune, BlockGradientMatchesFiniteDifferences) {
  const std::string path = quantize_stories("rtn:int3:g32:asym", "fd-block.lowbit");
  for (const char* name : {"layers.1.gate_proj", "layers.1.v_proj"}) {
    ScaleDirection d(path, name);
    const TrainBatch b = random_batch(d.student->config().vocab_size, 10);
    const int64_t n = b.n_seq * b.len * d.student->config().dim;
    std::mt19937_64 rng(11);
    std::normal_distribution<float> nd;
    std::vector<float> x(n), target(n), y(n);
    for (float& v : x) v = nd(rng);
    for (float& v : target) v = nd(rng);
    auto squared_error = [&] {
      d.lm->block_forward(1, b, x.data(), y.data());
      double l = 0;
      for (int64_t i = 0; i < n; ++i) l += (double(y[i]) - target[i]) * (double(y[i]) - target[i]);
      return l;
    };
    const double loss = d.lm->block_mse_backward(1, b, x.data(), target.data(), 1.0);
    EXPECT_NEAR(loss, squared_error(), 1e-9 * loss);
    const double numeric = d.derivative(squared_error);
    EXPECT_NEAR(d.analytic(), numeric, 0.03 * std::fabs(numeric)) << name;
    EXPECT_GT(std::fabs(numeric), 1e-2) << name;
  }
}

struct Tuned {
  std::string ptq, out;
  KdTuneReport report;
  std::map<std::string, QuantizedMatrix> matrices, ptq_matrices;
};

// stories260K at rtn:int3:g32:asym, tuned on 24 windows of 64 tokens from the calibration text.
const Tuned& tuned_stories() {
  static const Tuned t = [] {
    Tuned r;
    r.ptq = quantize_stories("rtn:int3:g32:asym", "ptq.lowbit");
    r.out = test::temp_dir() + "/tuned.lowbit";
    LoadedModel teacher = load_model(stories_path());
    ModelSource src = load_lowbit_model(r.ptq);
    LlamaModel student(src);
    CalibrationOptions co;
    co.source = test::shared_path("data/calibration/tiny.utf8");
    co.windows = 24;
    co.window_len = 64;
    const CalibrationSet cs = load_calibration(*teacher.tokenizer, co);
    KdTuneOptions opt;
    opt.steps = 30;
    opt.block_steps = 20;
    opt.batch = 4;
    opt.holdout = 4;
    r.report = tune_kd(*teacher.model, student, src.quantized, cs.windows, opt);
    rewrite_lowbit_quantized(r.ptq, src.quantized, r.out);
    r.ptq_matrices = load_lowbit_model(r.ptq).quantized;
    r.matrices = src.quantized;
    return r;
  }();
  return t;
}

// Measured: KL 0.644 → 0.425 (ratio 0.66) with these settings (stories260K is tiny: 3 bits cost it
// much more than they cost ref-m).
TEST(KdTune, LowersHeldOutKlIntoABand) {
  const Tuned& t = tuned_stories();
  EXPECT_TRUE(t.report.improved);
  EXPECT_EQ(t.report.tensors, 5 * 7 + 1);  // every block linear of the 5 layers, and lm_head
  EXPECT_EQ(t.report.train_windows, 20);
  EXPECT_EQ(t.report.steps, 30);
  int64_t linear_weights = 0;
  for (const auto& [name, m] : t.matrices)
    if (name != "embed_tokens") linear_weights += m.rows * m.cols;
  EXPECT_EQ(t.report.trained_codes, linear_weights);  // int3: every linear weight's code is trained
  EXPECT_GT(t.report.codes_changed, 0);
  EXPECT_LT(t.report.codes_changed, t.report.trained_codes / 10);
  EXPECT_GT(t.report.kl_before, 0.0);
  const double ratio = t.report.kl_after / t.report.kl_before;
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 0.8);
}

TEST(KdTune, RewrittenFileKeepsEverythingButCodesAndScales) {
  const Tuned& t = tuned_stories();
  const std::string a = test::read_file(t.ptq), b = test::read_file(t.out);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_NE(a, b);
  const ModelSource after = load_lowbit_model(t.out);
  const ModelSource before = load_lowbit_model(t.ptq);
  ASSERT_EQ(t.ptq_matrices.size(), after.quantized.size());
  int64_t changed = 0, part_bytes = 0;
  for (const auto& [name, m] : after.quantized) {
    const QuantizedMatrix& old = t.ptq_matrices.at(name);
    EXPECT_EQ(m.zeros, old.zeros) << name;
    EXPECT_EQ(m.codes, t.matrices.at(name).codes) << name;  // what was trained is what was written
    EXPECT_EQ(m.scales, t.matrices.at(name).scales) << name;
    changed += m.scales != old.scales;
    part_bytes += static_cast<int64_t>(m.scales.size() * 2 + m.codes.size());
  }
  EXPECT_EQ(changed, t.report.tensors);
  EXPECT_EQ(before.recipe, after.recipe);
  EXPECT_EQ(before.embedded_tokenizer.bytes, after.embedded_tokenizer.bytes);
  // Bytes outside the code and scale parts are identical.
  int64_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i];
  EXPECT_LE(differing, part_bytes);
}

TEST(KdTune, RejectsBadInputs) {
  LoadedModel teacher = load_model(stories_path());
  ModelSource src = load_lowbit_model(tuned_stories().ptq);
  LlamaModel student(src);
  const std::vector<std::vector<int32_t>> few(4, std::vector<int32_t>(8, 1));
  KdTuneOptions opt;
  opt.holdout = 4;
  test::expect_error([&] { tune_kd(*teacher.model, student, src.quantized, few, opt); }, "more calibration windows",
                     "tune");
  std::vector<std::vector<int32_t>> ragged(8, std::vector<int32_t>(8, 1));
  ragged[3].resize(5);
  opt.holdout = 2;
  test::expect_error([&] { tune_kd(*teacher.model, student, src.quantized, ragged, opt); }, "one length",
                     "tune");
  std::map<std::string, QuantizedMatrix> nothing;
  test::expect_error(
      [&] { tune_kd(*teacher.model, student, nothing, std::vector<std::vector<int32_t>>(8, std::vector<int32_t>(8, 1)), opt); },
      "no quantized linear layer", "tune");
  const std::string f16 = quantize_stories("f16", "f16.lowbit");
  test::expect_error([&] { rewrite_lowbit_quantized(f16, src.quantized, test::temp_dir() + "/x.lowbit"); }, "missing part",
                     "lowbit");
  EXPECT_FALSE(std::filesystem::exists(test::temp_dir() + "/x.lowbit"));
}

}  // namespace
}  // namespace lowbit
