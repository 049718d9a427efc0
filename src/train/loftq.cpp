#include "train/loftq.h"

#include <cmath>

#include "algo/low_rank.h"
#include "algo/rtn.h"
#include "base/error.h"
#include "base/gemm.h"
#include "pipeline/recipe.h"

namespace lowbit {

namespace {

constexpr const char* kComp = "loftq";

double squared_norm(const float* v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(v[i]) * v[i];
  return s;
}

}  // namespace

LoftqMatrix loftq_matrix(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec, bool clip, int64_t rank,
                         float scale, int64_t iters) {
  if (iters < 1) throw Error(kComp, "LoftQ needs at least one iteration");
  const size_t n = static_cast<size_t>(rows * cols);
  const double w_norm = std::sqrt(std::max(squared_norm(w, n), 1e-300));
  RtnOptions ro;
  ro.clip_search = clip;
  LoftqMatrix out;
  std::vector<float> target(w, w + n), residual(n);
  double best = INFINITY;
  for (int64_t it = 0; it < iters; ++it) {
    QuantizedMatrix q = quantize_rtn(target.data(), rows, cols, spec, ro);  // quant(W − s·B·A)
    const std::vector<float> qv = dequantize(q);
    for (size_t i = 0; i < n; ++i) residual[i] = w[i] - qv[i];
    if (it == 0) out.rel_error_plain = std::sqrt(squared_norm(residual.data(), n)) / w_norm;
    const LowRankFactors f = truncated_svd(residual.data(), rows, cols, rank);  // s·B·A ≈ W − Q
    std::vector<float> ba(n), left(n);
    gemm<float>(false, false, rows, cols, rank, 1.0f, f.b.data(), rank, f.a.data(), cols, 0.0f, ba.data(), cols);
    for (size_t i = 0; i < n; ++i) {
      left[i] = residual[i] - ba[i];
      target[i] = w[i] - ba[i];
    }
    const double err = std::sqrt(squared_norm(left.data(), n)) / w_norm;
    if (err < best) {  // keep the best pair (the alternation need not be monotone after rounding)
      best = err;
      out.q = std::move(q);
      const float inv_root = 1.0f / std::sqrt(scale);  // B·A = (√Σ-split factors) / s
      out.b.resize(f.b.size());
      out.a.resize(f.a.size());
      for (size_t i = 0; i < f.b.size(); ++i) out.b[i] = f.b[i] * inv_root;
      for (size_t i = 0; i < f.a.size(); ++i) out.a[i] = f.a[i] * inv_root;
    }
  }
  out.rel_error = best;
  return out;
}

LoraAdapter loftq_model(const ModelSource& float_src, std::map<std::string, QuantizedMatrix>& quantized,
                        const std::map<std::string, std::string>& recipes, const std::string& rotation,
                        const LoraConfig& lc, int64_t iters, LoftqReport* report) {
  validate_lora_config(lc);
  if (!rotation.empty()) throw Error(kComp, "the model was rotated (:rot) before quantizing; LoftQ needs its own weights");
  LoraAdapter ad = LoraAdapter::init(float_src.config, lc, 0);
  LoftqReport rep;
  for (LoraParam& p : ad.params()) {
    auto q = quantized.find(p.module);
    if (q == quantized.end()) throw Error(kComp, "'" + p.module + "' is not quantized; LoftQ needs a quantized base");
    auto rit = recipes.find(p.module);
    const Recipe recipe = parse_recipe(rit == recipes.end() ? "" : rit->second);
    if (recipe.low_rank > 0)
      throw Error(kComp, "'" + p.module + "' carries a low-rank error correction (" + rit->second +
                             "); LoftQ fits its own low-rank term, so quantize without ':lr'");
    if (recipe.algorithm != "rtn")
      throw Error(kComp, "'" + p.module + "' was quantized by '" + (rit == recipes.end() ? "?" : rit->second) +
                             "'; LoftQ re-quantizes with round-to-nearest, so quantize with an rtn recipe");
    const std::vector<float> w = to_f32(float_src.tensor(p.module));
    LoftqMatrix m = loftq_matrix(w.data(), p.rows, p.cols, q->second.spec, recipe.clip, p.rank,
                                 static_cast<float>(lc.scale()), iters);
    q->second = std::move(m.q);
    p.a = std::move(m.a);
    p.b = std::move(m.b);
    rep.rel_error_plain += m.rel_error_plain;
    rep.rel_error += m.rel_error;
    ++rep.matrices;
  }
  if (rep.matrices > 0) {
    rep.rel_error_plain /= static_cast<double>(rep.matrices);
    rep.rel_error /= static_cast<double>(rep.matrices);
  }
  if (report) *report = rep;
  return ad;
}

}  // namespace lowbit
