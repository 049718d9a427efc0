#include "pipeline/quantize.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include "algo/input_stats.h"
#include "algo/rtn.h"
#include "base/error.h"
#include "eval/perplexity.h"
#include "io/lowbit_file.h"
#include "model/llama.h"
#include "pipeline/calibrated_layer.h"
#include "pipeline/layer_source.h"
#include "pipeline/model_rotation.h"

namespace lowbit {

namespace {

bool is_linear(const std::string& name) {
  return name == "lm_head" || (name.starts_with("layers.") && name.ends_with("_proj"));
}

const char* plain_dtype(FormatKind k) {
  return k == FormatKind::F16 ? "F16" : k == FormatKind::BF16 ? "BF16" : "F32";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

// Writes tensors as they are produced and keeps the report.
class Emitter {
 public:
  // down_seed >= 0: down_proj tensors arrive as W·H (":had") and are marked so in the file.
  Emitter(LowbitWriter& writer, QuantizeReport& report, int64_t down_seed)
      : writer_(writer), report_(report), down_seed_(down_seed) {}

  // A tensor kept in float storage (plain recipe) or quantized with RTN (no calibration needed).
  void plain_or_rtn(const std::string& name, const std::vector<float>& w, const std::vector<int64_t>& shape,
                    const Recipe& r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (r.algorithm != "none" && shape.size() != 2) throw Error("quantize", name + ": only matrices can be quantized");
    if (r.calibrated() || r.low_rank > 0)
      if (!is_linear(name)) throw Error("quantize", name + ": " + r.to_string() + " applies to linear layers only");
    if (r.calibrated()) throw Error("quantize", name + ": " + r.to_string() + " needs calibration statistics");
    if (r.algorithm == "none") {
      TensorReport rep = base_report(name, shape, r);
      if (r.spec.kind != FormatKind::F32) {
        const QuantizedMatrix plain = quantize_rtn(w.data(), 1, rep.params, r.spec);
        const std::vector<float> back = dequantize(plain);
        rep.rel_rmse = relative_rmse(w.data(), back.data(), rep.params);
      }
      rep.seconds = seconds_since(t0);
      add_plain(name, w, shape, r, rep);
      return;
    }
    DenseWeight dw{shape[0], shape[1], w};
    LinearResult res = with_error_context(name, [&] { return quantize_linear(dw, r, nullptr); });
    res.seconds = seconds_since(t0);
    add_linear(name, r, std::move(res), w, shape);
  }

  // A linear whose quantization already happened (calibrated layers).
  void add_linear(const std::string& name, const Recipe& r, LinearResult res, const std::vector<float>& plain_values,
                  const std::vector<int64_t>& shape) {
    TensorReport rep = base_report(name, shape, r);
    rep.rel_rmse = res.rel_rmse;
    rep.rel_output_error = res.rel_output_error;
    rep.seconds = res.seconds;
    if (!res.quantized) {
      add_plain(name, plain_values, shape, r, rep);
      return;
    }
    rep.bytes = res.matrix.storage_bytes() + (res.correction ? fp16_bytes(*res.correction) : 0);
    LowbitTensorIn in;
    in.name = name;
    in.recipe = rep.recipe;
    in.quantized = true;
    in.matrix = &res.matrix;
    if (res.correction) in.correction = &*res.correction;
    in.input_hadamard = input_hadamard(name);
    writer_.add(in);
    finish(std::move(rep));
  }

  void add_plain(const std::string& name, const std::vector<float>& w, const std::vector<int64_t>& shape,
                 const Recipe& r, TensorReport rep) {
    LowbitTensorIn in;
    in.name = name;
    in.recipe = rep.recipe;
    in.values = w;
    in.shape = shape;
    in.plain_dtype = plain_dtype(r.spec.kind);
    in.input_hadamard = input_hadamard(name);
    rep.bytes = rep.params * (r.spec.kind == FormatKind::F32 ? 4 : 2);
    writer_.add(in);
    finish(std::move(rep));
  }

 private:
  static TensorReport base_report(const std::string& name, const std::vector<int64_t>& shape, const Recipe& r) {
    TensorReport rep;
    rep.name = name;
    rep.recipe = r.to_string();
    rep.format = r.spec.to_string() + (r.low_rank > 0 ? "+lr" + std::to_string(r.low_rank) : "");
    rep.shape = shape;
    rep.params = 1;
    for (int64_t d : shape) rep.params *= d;
    return rep;
  }
  void finish(TensorReport rep) {
    rep.bits_per_weight = 8.0 * static_cast<double>(rep.bytes) / static_cast<double>(rep.params);
    report_.total_params += rep.params;
    report_.total_bytes += rep.bytes;
    if (is_linear(rep.name)) {
      report_.linear_params += rep.params;
      report_.linear_bytes += rep.bytes;
    }
    report_.tensors.push_back(std::move(rep));
  }
  int64_t input_hadamard(const std::string& name) const { return name.ends_with("down_proj") ? down_seed_ : -1; }
  LowbitWriter& writer_;
  QuantizeReport& report_;
  int64_t down_seed_;
};

// The seed of the ":had" rotation of down_proj's input (next to the residual rotation's two).
uint64_t down_hadamard_seed(const QuantizeOptions& opt) { return opt.calibration.seed + 2; }

// Every tensor through RTN / plain storage, in canonical order.
void quantize_plain(const ModelSource& src, const LlamaConfig& config, const RecipePlan& plan,
                    const QuantizeOptions& opt, const ModelRotation* rot, const Rotation* down_input, Emitter& emit) {
  const auto names = canonical_tensor_shapes(config);
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& [name, shape] = names[i];
    if (opt.progress) opt.progress(static_cast<int64_t>(i), static_cast<int64_t>(names.size()), name);
    std::vector<float> w = source_f32(src, name, rot);
    if (down_input && name.ends_with("down_proj")) down_input->apply_right(w.data(), shape[0]);  // W·H
    emit.plain_or_rtn(name, w, shape, plan.for_tensor(name, shape.size() == 2));
  }
  if (opt.progress) opt.progress(static_cast<int64_t>(names.size()), static_cast<int64_t>(names.size()), "");
}

// Emits one finished calibrated layer in canonical order.
void emit_layer(const LlamaConfig& c, const RecipePlan& plan, const std::string& p, FloatLayer& l,
                std::map<std::string, LinearResult>& results, const std::map<std::string, std::vector<float>>& originals,
                Emitter& emit) {
  const int64_t dq = c.n_heads * c.head_dim, dkv = c.n_kv_heads * c.head_dim;
  auto vec = [&](const std::string& n, const std::vector<float>& v) {
    emit.plain_or_rtn(p + n, v, {static_cast<int64_t>(v.size())}, plan.for_tensor(p + n, false));
  };
  auto lin = [&](const std::string& n) {
    const DenseWeight& w = l.linears.at(n);
    emit.add_linear(p + n, plan.for_tensor(p + n, true), std::move(results.at(n)), originals.at(n), {w.rows, w.cols});
  };
  vec("attn_norm", l.attn_norm);
  lin("q_proj");
  lin("k_proj");
  lin("v_proj");
  if (c.attention_bias) {
    LOWBIT_ASSERT(static_cast<int64_t>(l.q_bias.size()) == dq && static_cast<int64_t>(l.v_bias.size()) == dkv);
    vec("q_bias", l.q_bias);
    vec("k_bias", l.k_bias);
    vec("v_bias", l.v_bias);
  }
  lin("o_proj");
  vec("ffn_norm", l.ffn_norm);
  lin("gate_proj");
  lin("up_proj");
  lin("down_proj");
}

// Mean NLL of predicting each window's next tokens from the final hidden states.
double calibration_nll(const LlamaConfig& c, const std::vector<float>& norm, const DenseWeight& head,
                       const Activations& act, const CalibrationSet& cs) {
  NllStats nll;
  const int64_t L = act.len, D = c.dim;
  std::vector<float> xn(L * D), logits(L * head.rows);
  for (int64_t w = 0; w < act.windows; ++w) {
    for (int64_t t = 0; t < L; ++t) rms_norm(&act.x[(w * L + t) * D], norm.data(), D, c.norm_eps, &xn[t * D]);
    Matrix m;
    m.rows = head.rows;
    m.cols = head.cols;
    m.data = head.w.data();
    matmul(xn.data(), L, m, nullptr, logits.data());
    for (int64_t t = 0; t + 1 < L; ++t)
      nll.add(token_nll(std::span<const float>(&logits[t * head.rows], head.rows), cs.windows[w][t + 1]));
  }
  return nll.mean();
}

void quantize_calibrated(const ModelSource& src, const Tokenizer& tokenizer, const LlamaConfig& config,
                         const RecipePlan& plan, const QuantizeOptions& opt, const ModelRotation* rot,
                         const Rotation* down_input, Emitter& emit, QuantizeReport& report) {
  const auto t0 = std::chrono::steady_clock::now();
  CalibrationOptions co = opt.calibration;
  if (co.source.empty()) co.source = default_calibration_source();
  co.window_len = std::min(co.window_len, config.max_seq_len);
  const CalibrationSet cs = load_calibration(tokenizer, co);
  report.calib_windows = static_cast<int64_t>(cs.windows.size());
  report.calib_window_len = cs.window_len;
  report.calib_seconds = seconds_since(t0);
  const int64_t n_layers = config.n_layers;
  auto progress = [&](int64_t layer, const std::string& what) {
    if (opt.progress) opt.progress(layer, n_layers, what);
  };

  progress(0, "embeddings");
  Activations act;
  {
    const std::vector<float> embed = source_f32(src, "embed_tokens", rot);  // freed before the layers
    emit.plain_or_rtn("embed_tokens", embed, {config.vocab_size, config.dim}, plan.for_tensor("embed_tokens", true));
    act = embed_windows(embed, config, cs);
  }

  for (int64_t l = 0; l < n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    FloatLayer layer = load_float_layer(src, config, p, rot);
    std::map<std::string, Recipe> recipes;
    for (const char* n : kLayerLinearNames) recipes[n] = plan.for_tensor(p + n, true);
    auto results = with_error_context("layers." + std::to_string(l), [&] {
      return quantize_layer_calibrated(config, layer, recipes, act,
                                       [&](const std::string& stage) { progress(l, p + stage); },
                                       LayerTransforms{down_input, plan.smooth_alpha()});
    });
    std::map<std::string, std::vector<float>> originals;  // values of float-stored linears
    for (const char* n : kLayerLinearNames)
      originals[n] = recipes[n].algorithm == "none" ? layer.linears[n].w : std::vector<float>{};
    if (down_input && !originals["down_proj"].empty())  // stored as W·H
      down_input->apply_right(originals["down_proj"].data(), layer.linears["down_proj"].rows);
    emit_layer(config, plan, p, layer, results, originals, emit);
  }

  progress(n_layers, "lm_head");
  const std::vector<float> norm = source_f32(src, "norm", rot);
  emit.plain_or_rtn("norm", norm, {config.dim}, plan.for_tensor("norm", false));
  DenseWeight head{config.vocab_size, config.dim, source_f32(src, "lm_head", rot)};
  const Recipe head_recipe = plan.for_tensor("lm_head", true);
  std::vector<float> h;
  if (head_recipe.calibrated() || opt.calib_nll) h = final_norm_stats(config, norm, act).hessian();
  const std::vector<float> head_values = head_recipe.algorithm == "none" ? head.w : std::vector<float>{};
  LinearResult res =
      with_error_context("lm_head", [&] { return quantize_linear(head, head_recipe, h.empty() ? nullptr : h.data()); });
  if (opt.calib_nll) {
    if (res.quantized) head.w = decoded_weight(res);
    report.calib_nll = calibration_nll(config, norm, head, act, cs);
  }
  emit.add_linear("lm_head", head_recipe, std::move(res), head_values, {config.vocab_size, config.dim});
  progress(n_layers, "");
}

}  // namespace

QuantizeReport quantize_model(const ModelSource& src, const Tokenizer& tokenizer,
                              const QuantizeOptions& opt, const std::string& out_path) {
  if (!src.quantized.empty())
    throw Error("quantize", src.path + ": already quantized; quantize from the original model");
  const auto t0 = std::chrono::steady_clock::now();
  RecipePlan plan(opt.recipe, opt.overrides);
  for (const auto& [name, recipe] : opt.assigned) plan.assign(name, parse_recipe(recipe));
  LowbitModelIn meta;
  meta.config = src.config;
  meta.config.tie_embeddings = false;  // lm_head is stored on its own (it may be quantized)
  meta.recipe = plan.to_string();
  std::optional<ModelRotation> rot;
  if (plan.rotate()) {
    rot = ModelRotation::make(src.config, opt.calibration.seed);
    meta.rotation = rot->to_json();
  }
  const ModelRotation* rot_ptr = rot ? &*rot : nullptr;
  std::optional<Rotation> down_input;  // ":had": down_proj's input rotated at run time
  if (plan.hadamard_down()) down_input = Rotation::random_hadamard(src.config.hidden_dim, down_hadamard_seed(opt));
  const Rotation* down_ptr = down_input ? &*down_input : nullptr;
  meta.source = src.path;
  const TokenizerBlob blob = tokenizer.to_blob();
  meta.tokenizer = {blob.kind, blob.bytes};
  std::vector<std::string> names;
  std::map<std::string, int64_t> matrix_cols;
  for (const auto& [name, shape] : canonical_tensor_shapes(meta.config)) {
    names.push_back(name);
    if (shape.size() == 2) matrix_cols[name] = shape[1];
  }
  plan.set_matrix_cols(std::move(matrix_cols));

  QuantizeReport report;
  report.recipe = meta.recipe;
  LowbitWriter writer(out_path, meta);
  Emitter emit(writer, report, down_ptr ? static_cast<int64_t>(down_hadamard_seed(opt)) : -1);
  if (plan.needs_calibration(names)) quantize_calibrated(src, tokenizer, meta.config, plan, opt, rot_ptr, down_ptr, emit, report);
  else quantize_plain(src, meta.config, plan, opt, rot_ptr, down_ptr, emit);
  writer.commit();
  report.peak_rss_bytes = peak_rss_bytes();
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace lowbit
