#include "pipeline/calibrated_layer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "algo/awq.h"
#include "algo/error_compensation.h"
#include "algo/gptq.h"
#include "algo/input_stats.h"
#include "algo/rtn.h"
#include "algo/smooth_quant.h"
#include "base/error.h"
#include "model/attention.h"
#include "model/llama.h"
#include "model/matrix.h"

namespace lowbit {

namespace {

// y[T, rows] = x[T, cols] · wᵀ (+ bias)
void apply(const DenseWeight& w, const float* x, int64_t T, const std::vector<float>& bias, float* y) {
  Matrix m;
  m.rows = w.rows;
  m.cols = w.cols;
  m.data = w.w.data();
  matmul(x, T, m, bias.empty() ? nullptr : bias.data(), y);
}

void norm_rows(const float* x, const std::vector<float>& w, int64_t T, int64_t D, float eps, float* out) {
  for (int64_t t = 0; t < T; ++t) rms_norm(x + t * D, w.data(), D, eps, out + t * D);
}

// The pieces of the layer's forward pass on one window (positions 0 .. T-1).
class LayerForward {
 public:
  LayerForward(const LlamaConfig& c, const FloatLayer& l) : c_(c), l_(l), inv_freq_(rope_inv_freq(c)) {}

  // xn[T, D] = rms(x)·attn_norm
  void attn_input(const float* x, int64_t T, float* xn) const { norm_rows(x, l_.attn_norm, T, c_.dim, c_.norm_eps, xn); }
  void ffn_input(const float* x, int64_t T, float* xn) const { norm_rows(x, l_.ffn_norm, T, c_.dim, c_.norm_eps, xn); }

  // att[T, Dq] from xn[T, D]
  void attention(const float* xn, int64_t T, float* att) const {
    const int64_t dq = c_.n_heads * c_.head_dim, dkv = c_.n_kv_heads * c_.head_dim;
    std::vector<float> q(T * dq), k(T * dkv), v(T * dkv);
    apply(lin("q_proj"), xn, T, l_.q_bias, q.data());
    apply(lin("k_proj"), xn, T, l_.k_bias, k.data());
    apply(lin("v_proj"), xn, T, l_.v_bias, v.data());
    apply_rope(c_, inv_freq_, q.data(), T, c_.n_heads, 0);
    apply_rope(c_, inv_freq_, k.data(), T, c_.n_kv_heads, 0);
    causal_attention(c_, q.data(), T, k.data(), v.data(), 0, att);
  }

  // a[T, H] = silu(gate·xn) * (up·xn)
  void swiglu(const float* xn, int64_t T, float* a) const {
    std::vector<float> u(T * c_.hidden_dim);
    apply(lin("gate_proj"), xn, T, {}, a);
    apply(lin("up_proj"), xn, T, {}, u.data());
    for (int64_t i = 0; i < T * c_.hidden_dim; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * u[i];
  }

  // x[T, D] += w · in
  void add_projection(const char* name, const float* in, int64_t T, float* x) const {
    std::vector<float> o(T * c_.dim);
    apply(lin(name), in, T, {}, o.data());
    for (int64_t i = 0; i < T * c_.dim; ++i) x[i] += o[i];
  }

 private:
  const DenseWeight& lin(const char* name) const { return l_.linears.at(name); }
  const LlamaConfig& c_;
  const FloatLayer& l_;
  std::vector<double> inv_freq_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The input statistics of all four linear inputs, with the layer as it is now (float pass).
struct LayerStats {
  InputStats attn, o, ffn, down;
  explicit LayerStats(const LlamaConfig& c)
      : attn(c.dim), o(c.n_heads * c.head_dim), ffn(c.dim), down(c.hidden_dim) {}
};

LayerStats float_pass(const LlamaConfig& c, const FloatLayer& layer, Activations& act) {
  const LayerForward f(c, layer);
  const int64_t L = act.len, D = c.dim;
  LayerStats st(c);
  std::vector<float> xn(L * D), att(L * c.n_heads * c.head_dim), h(L * D), a(L * c.hidden_dim);
  for (int64_t w = 0; w < act.windows; ++w) {
    const float* x = act.window(w);
    f.attn_input(x, L, xn.data());
    st.attn.add(xn.data(), L);
    f.attention(xn.data(), L, att.data());
    st.o.add(att.data(), L);
    std::copy(x, x + L * D, h.begin());
    f.add_projection("o_proj", att.data(), L, h.data());
    f.ffn_input(h.data(), L, xn.data());
    st.ffn.add(xn.data(), L);
    f.swiglu(xn.data(), L, a.data());
    st.down.add(a.data(), L);
  }
  return st;
}

// Scales for one group of linears sharing an input (members by short name, stats of that
// input), or nothing to leave the group as it is.
using GroupScales = std::function<std::optional<std::vector<float>>(const std::vector<std::string>& members,
                                                                     const InputStats& stats)>;

// o_proj's input channel j (query head j / head_dim, dimension j % head_dim) carries the
// attention-weighted values of v_proj's output channel v_channel_of_o_input(j): query head g
// reads key/value head g / (n_heads / n_kv_heads).
int64_t v_channel_of_o_input(const LlamaConfig& c, int64_t j) {
  const int64_t head = j / c.head_dim, d = j % c.head_dim;
  return (head / (c.n_heads / c.n_kv_heads)) * c.head_dim + d;
}

// Folds per-input-channel scales s into the layer wherever that leaves its float function
// unchanged (x -> x/s, W -> W·diag(s)): down by up_proj's rows, o by v_proj's rows, q/k/v by the
// attention norm, gate/up by the FFN norm. o's scales fold into v only when they are equal over
// the query heads that share a key/value head: always so with n_heads == n_kv_heads; under
// grouped-query attention only when `o_tied` says the callback ties them (else o is skipped).
// The statistics come from one float pass before any fold; the row folds come first so that
// the column groups of q/k/v and gate/up see their final rows (dividing v's or up's rows does
// not change the inputs of q/k/v or gate/up).
void fold_channel_scales(const LlamaConfig& c, FloatLayer& layer, Activations& act, const GroupScales& scales,
                         bool o_tied) {
  const LayerStats st = float_pass(c, layer, act);
  const int64_t D = c.dim, H = c.hidden_dim;
  auto fold = [&](const std::vector<std::string>& members, const InputStats& stats,
                  const std::function<void(const float* s)>& divide) {
    const std::optional<std::vector<float>> s = scales(members, stats);
    if (!s) return;
    for (const std::string& m : members) {
      DenseWeight& w = layer.linears.at(m);
      awq_scale_columns(w.w.data(), w.rows, w.cols, s->data());
    }
    divide(s->data());
  };
  fold({"down_proj"}, st.down, [&](const float* s) { awq_divide_rows(layer.linears.at("up_proj").w.data(), H, D, s); });
  if (c.n_heads == c.n_kv_heads || o_tied) {
    fold({"o_proj"}, st.o, [&](const float* s) {
      DenseWeight& v = layer.linears.at("v_proj");
      std::vector<float> sv(static_cast<size_t>(v.rows));
      for (int64_t j = 0; j < st.o.dim(); ++j) sv[v_channel_of_o_input(c, j)] = s[j];
      for (int64_t j = 0; j < st.o.dim(); ++j) LOWBIT_ASSERT(s[j] == sv[v_channel_of_o_input(c, j)]);  // tied
      awq_divide_rows(v.w.data(), v.rows, D, sv.data());
      if (!layer.v_bias.empty()) awq_divide_rows(layer.v_bias.data(), v.rows, 1, sv.data());
    });
  }
  fold({"q_proj", "k_proj", "v_proj"}, st.attn, [&](const float* s) { awq_divide_rows(layer.attn_norm.data(), D, 1, s); });
  fold({"gate_proj", "up_proj"}, st.ffn, [&](const float* s) { awq_divide_rows(layer.ffn_norm.data(), D, 1, s); });
}

bool has_awq(const std::map<std::string, Recipe>& recipes) {
  for (const auto& [name, r] : recipes)
    if (r.algorithm == "awq") return true;
  return false;
}

// AWQ's float pass: the scales of each group are searched over its members whose recipe is awq
// (folded into every member); nothing changes where plain RTN wins the search.
void awq_fold_layer(const LlamaConfig& c, FloatLayer& layer, const std::map<std::string, Recipe>& recipes,
                    Activations& act) {
  fold_channel_scales(c, layer, act, [&](const std::vector<std::string>& members, const InputStats& stats)
                                         -> std::optional<std::vector<float>> {
    std::vector<AwqLinearRef> refs;
    const Recipe* recipe = nullptr;
    for (const std::string& m : members) {
      if (recipes.at(m).algorithm != "awq") continue;
      const DenseWeight& w = layer.linears.at(m);
      refs.push_back({w.w.data(), w.rows, w.cols});
      if (recipe == nullptr) recipe = &recipes.at(m);
    }
    if (refs.empty()) return std::nullopt;
    const std::vector<float> h = stats.hessian(), mean_abs = stats.mean_abs();
    AwqSearchResult r = awq_search_scales(refs, stats.dim(), mean_abs.data(), h.data(), recipe->spec);
    if (!r.scaled) return std::nullopt;
    return std::move(r.scales);
  }, /*o_tied=*/false);  // AWQ's search gives every o channel its own scale (as AutoAWQ: o only without GQA)
}

// SmoothQuant's migration (algo/smooth_quant.h) of every group, whatever its recipes. Under
// grouped-query attention o's channels are tied per key/value channel: the maxima of the query
// heads that read one value channel are pooled and give them one scale.
void smooth_fold_layer(const LlamaConfig& c, FloatLayer& layer, double alpha, Activations& act) {
  fold_channel_scales(c, layer, act, [&](const std::vector<std::string>& members, const InputStats& stats)
                                         -> std::optional<std::vector<float>> {
    std::vector<SmoothLinearRef> refs;
    for (const std::string& m : members) refs.push_back({layer.linears.at(m).w.data(), layer.linears.at(m).rows});
    const std::vector<float> x_max = stats.max_abs();
    if (members.front() != "o_proj" || c.n_heads == c.n_kv_heads)
      return smooth_scales(refs, stats.dim(), x_max.data(), alpha);
    const std::vector<float> w_max = column_max_abs(refs, stats.dim());
    const int64_t dkv = c.n_kv_heads * c.head_dim;
    std::vector<float> a(static_cast<size_t>(dkv), 0.0f), w(static_cast<size_t>(dkv), 0.0f);
    for (int64_t j = 0; j < stats.dim(); ++j) {
      const int64_t k = v_channel_of_o_input(c, j);
      a[k] = std::isnan(a[k]) ? a[k] : std::isnan(x_max[j]) ? x_max[j] : std::max(a[k], x_max[j]);  // NaN stays
      w[k] = std::max(w[k], w_max[j]);
    }
    const std::vector<float> s_kv = smooth_scales_from_maxima(a.data(), w.data(), dkv, alpha);
    std::vector<float> s(static_cast<size_t>(stats.dim()));
    for (int64_t j = 0; j < stats.dim(); ++j) s[j] = s_kv[v_channel_of_o_input(c, j)];
    return s;
  }, /*o_tied=*/true);
}

// Quantizes the named linears against `stats` and puts their dequantized values into the layer.
void quantize_members(FloatLayer& layer, const LinearQuantizer& quantize,
                      const std::vector<std::string>& members, const InputStats& stats,
                      std::map<std::string, LinearResult>& out, const StageFn& stage) {
  const std::vector<float> h = stats.hessian();
  for (const std::string& m : members) {
    if (stage) stage(m);
    out[m] = quantize(m, layer.linears.at(m), h.data());
  }
}

}  // namespace

// In blocks of rows (bounded scratch).
double output_energy(const DenseWeight& w, const float* h) {
  constexpr int64_t kBlock = 256;
  const std::vector<float> zero(static_cast<size_t>(std::min(kBlock, w.rows) * w.cols), 0.0f);
  double total = 0;
  for (int64_t r0 = 0; r0 < w.rows; r0 += kBlock)
    total += output_sq_error(w.w.data() + r0 * w.cols, zero.data(), std::min(kBlock, w.rows - r0), w.cols, h);
  return total;
}

LinearResult quantize_rotated_input(DenseWeight& w, const Recipe& r, const float* h, const Rotation& rot) {
  DenseWeight wr = w;
  rot.apply_right(wr.w.data(), wr.rows);  // W·H
  std::vector<float> hr;
  if (h != nullptr) {  // Hᵀ·(Σ x xᵀ)·H: the statistics of the rotated inputs x·H
    hr.assign(h, h + w.cols * w.cols);
    rot.apply_left_transposed(hr.data(), w.cols);
    rot.apply_right(hr.data(), w.cols);
  }
  LinearResult res = quantize_linear(wr, r, h ? hr.data() : nullptr);
  if (res.quantized) {
    w.w = decoded_weight(res);
    rot.apply_right_transposed(w.w.data(), w.rows);  // back to the unrotated basis for the pass
  }
  return res;
}

LinearResult quantize_linear(const DenseWeight& w, const Recipe& r, const float* h, bool measure) {
  const auto t0 = std::chrono::steady_clock::now();
  if (r.calibrated() && h == nullptr) throw Error("quantize", r.to_string() + " needs calibration statistics");
  LinearResult res;
  std::vector<float> hdiag;
  if (h != nullptr)
    for (int64_t i = 0; i < w.cols; ++i) hdiag.push_back(h[i * w.cols + i]);
  if (r.algorithm == "none") {
    res.matrix = quantize_rtn(w.w.data(), w.rows, w.cols, r.spec);  // plain storage: rounding only
  } else if (r.algorithm == "rtn" || r.algorithm == "imatrix") {
    RtnOptions o;
    o.clip_search = r.clip || r.algorithm == "imatrix";
    if (r.algorithm == "imatrix") o.importance = hdiag.data();
    res.matrix = quantize_rtn(w.w.data(), w.rows, w.cols, r.spec, o);
  } else if (r.algorithm == "awq") {
    // The weights arrive folded (W·diag(s)) and h is already of their input x/s: scales 1.
    const std::vector<float> ones(static_cast<size_t>(w.cols), 1.0f);
    res.matrix = awq_quantize(w.w.data(), w.rows, w.cols, h, ones.data(), r.spec);
  } else if (r.algorithm == "gptq") {
    GptqOptions o;
    o.act_order = r.act_order;
    o.clip_search = r.clip;
    res.matrix = quantize_gptq(w.w.data(), w.rows, w.cols, h, r.spec, o);
  } else {
    throw Error("quantize", "unknown algorithm '" + r.algorithm + "'");
  }
  res.quantized = r.algorithm != "none";
  if (res.quantized && r.low_rank > 0) {
    const std::vector<float> back = dequantize(res.matrix);
    res.correction = fit_error_correction(w.w.data(), back.data(), w.rows, w.cols, h, r.low_rank);
  }
  res.seconds = seconds_since(t0);  // the algorithm alone; the error measurements below are extra
  if (measure) {
    const std::vector<float> back = res.quantized ? decoded_weight(res) : dequantize(res.matrix);
    measure_linear_error(w, back.data(), h, res);
    if (r.spec.kind == FormatKind::F32) res.rel_rmse = 0.0;
  }
  if (!res.quantized) res.matrix = {};
  return res;
}

std::vector<float> decoded_weight(const LinearResult& r) {
  std::vector<float> w = dequantize(r.matrix);
  if (r.correction) add_correction(*r.correction, w.data());
  return w;
}

void measure_linear_error(const DenseWeight& w, const float* back, const float* h, LinearResult& r) {
  r.rel_rmse = relative_rmse(w.w.data(), back, w.rows * w.cols);
  r.rel_output_error = -1;
  if (h == nullptr) return;
  const double total = output_energy(w, h);
  const double err = output_sq_error(w.w.data(), back, w.rows, w.cols, h);
  r.rel_output_error = total > 0 ? err / total : 0.0;
}

std::map<std::string, LinearResult> quantize_layer_calibrated(
    const LlamaConfig& c, FloatLayer& layer, const std::map<std::string, Recipe>& recipes,
    Activations& act, const StageFn& stage, const LayerTransforms& transforms) {
  LOWBIT_ASSERT(act.dim == c.dim && act.x.size() == static_cast<size_t>(act.windows * act.len * act.dim));
  const Rotation* down_input = transforms.down_input;
  if (transforms.smooth_alpha > 0) {
    if (stage) stage("smoothquant scales");
    smooth_fold_layer(c, layer, transforms.smooth_alpha, act);
  }
  if (has_awq(recipes)) {
    if (stage) stage("awq scale search");
    awq_fold_layer(c, layer, recipes, act);
  }
  const LinearQuantizer by_recipe = [&](const std::string& name, DenseWeight& w, const float* h) {
    return with_error_context(name, [&] {
      if (name == "down_proj" && down_input) return quantize_rotated_input(w, recipes.at(name), h, *down_input);
      LinearResult r = quantize_linear(w, recipes.at(name), h);
      if (r.quantized) w.w = decoded_weight(r);
      return r;
    });
  };
  auto staged = [&](const std::string& name) {
    if (stage) stage(recipes.count(name) ? recipes.at(name).algorithm + " " + name : name);
  };
  return quantize_layer_calibrated(c, layer, by_recipe, act, staged);
}

std::map<std::string, LinearResult> quantize_layer_calibrated(const LlamaConfig& c, FloatLayer& layer,
                                                              const LinearQuantizer& quantize,
                                                              Activations& act, const StageFn& stage) {
  LOWBIT_ASSERT(act.dim == c.dim && act.x.size() == static_cast<size_t>(act.windows * act.len * act.dim));
  const LayerForward f(c, layer);
  const int64_t L = act.len, D = c.dim, dq = c.n_heads * c.head_dim;
  std::map<std::string, LinearResult> out;
  std::vector<float> xn(L * D), a(L * c.hidden_dim);
  // 1. q, k, v
  InputStats st_attn(D);
  for (int64_t w = 0; w < act.windows; ++w) {
    f.attn_input(act.window(w), L, xn.data());
    st_attn.add(xn.data(), L);
  }
  quantize_members(layer, quantize, {"q_proj", "k_proj", "v_proj"}, st_attn, out, stage);
  // 2. o
  std::vector<float> att(static_cast<size_t>(act.windows * L * dq));
  InputStats st_o(dq);
  for (int64_t w = 0; w < act.windows; ++w) {
    f.attn_input(act.window(w), L, xn.data());
    f.attention(xn.data(), L, &att[w * L * dq]);
    st_o.add(&att[w * L * dq], L);
  }
  quantize_members(layer, quantize, {"o_proj"}, st_o, out, stage);
  // 3. residual, gate and up
  InputStats st_ffn(D);
  for (int64_t w = 0; w < act.windows; ++w) {
    f.add_projection("o_proj", &att[w * L * dq], L, act.window(w));
    f.ffn_input(act.window(w), L, xn.data());
    st_ffn.add(xn.data(), L);
  }
  std::vector<float>().swap(att);
  quantize_members(layer, quantize, {"gate_proj", "up_proj"}, st_ffn, out, stage);
  // 4. down
  InputStats st_down(c.hidden_dim);
  for (int64_t w = 0; w < act.windows; ++w) {
    f.ffn_input(act.window(w), L, xn.data());
    f.swiglu(xn.data(), L, a.data());
    st_down.add(a.data(), L);
  }
  quantize_members(layer, quantize, {"down_proj"}, st_down, out, stage);
  // 5. the layer's output
  if (stage) stage("layer output");
  for (int64_t w = 0; w < act.windows; ++w) {
    f.ffn_input(act.window(w), L, xn.data());
    f.swiglu(xn.data(), L, a.data());
    f.add_projection("down_proj", a.data(), L, act.window(w));
  }
  return out;
}

}  // namespace lowbit
