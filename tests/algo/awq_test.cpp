// AWQ: output-error gains over plain RTN on a synthetic layer with salient input channels
// (two-sided bands), the s = 1 candidate's guarantee, consistency of the search's loss with
// output_sq_error, the clip search's metrics (each choice the argmin of its documented error;
// Row < Block < Diagonal on inputs with a mean component), folding identities, groups of
// linears sharing one input, every format kind, determinism across thread counts and input
// errors.
#include "algo/awq.h"

#include <cblas.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "algo/rtn.h"
#include "base/error.h"
#include "base/parallel.h"
#include "formats/test_data.h"
#include "testutil.h"

namespace lowbit {
namespace {

// A group of linears sharing the input X [tokens, cols] and its statistics.
struct Layer {
  int64_t cols = 0, tokens = 0;
  std::vector<float> x;               // [tokens, cols]
  std::vector<float> h;               // [cols, cols] = XᵀX
  std::vector<float> x_abs;           // [cols] mean |x|
  std::vector<int64_t> rows;          // per linear
  std::vector<std::vector<float>> w;  // per linear [rows, cols], sigma 0.02
  std::vector<AwqLinearRef> refs() const {
    std::vector<AwqLinearRef> r;
    for (size_t i = 0; i < w.size(); ++i) r.push_back({w[i].data(), rows[i], cols});
    return r;
  }
};

void fill_stats(Layer& l) {
  const int64_t c = l.cols, t = l.tokens;
  l.h.assign(c * c, 0.0f);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, c, t, 1.0f, l.x.data(), c, l.x.data(), c,
              0.0f, l.h.data(), c);
  l.x_abs.assign(c, 0.0f);
  for (int64_t j = 0; j < c; ++j) {
    double a = 0.0;
    for (int64_t i = 0; i < t; ++i) a += std::fabs(l.x[i * c + j]);
    l.x_abs[j] = static_cast<float>(a / t);
  }
}

// Activations like an LLM's after a norm: 16 shared latent factors (correlated columns) plus
// independent noise, per-channel magnitudes log-normal(0, spread), and `salient` channels (evenly
// spaced) 10x larger, as the outlier channels of real models' activations; `offset` adds a
// per-channel mean offset·N(0, 1) (times the magnitude) shared by every token, the mean
// component of real activations. Weights Gaussian, sigma 0.02, one seed per linear.
Layer make_layer(int64_t cols, std::vector<int64_t> rows, int salient, uint64_t seed,
                 double spread = 0.5, int64_t tokens = 1024, double offset = 0.0) {
  test::Rng rng(seed);
  Layer l;
  l.cols = cols;
  l.tokens = tokens;
  constexpr int kFactors = 16;
  std::vector<double> mix(kFactors * cols), mag(cols), mean(cols, 0.0);
  for (double& v : mix) v = 0.35 * rng.normal();
  for (int64_t c = 0; c < cols; ++c) mag[c] = std::exp(spread * rng.normal());
  if (offset != 0.0)
    for (double& v : mean) v = offset * rng.normal();
  for (int k = 0; k < salient; ++k) mag[(2 * k + 1) * cols / (2 * salient)] *= 10.0;
  l.x.resize(tokens * cols);
  for (int64_t t = 0; t < tokens; ++t) {
    double f[kFactors];
    for (double& v : f) v = rng.normal();
    for (int64_t c = 0; c < cols; ++c) {
      double v = mean[c] + rng.normal();
      for (int k = 0; k < kFactors; ++k) v += f[k] * mix[k * cols + c];
      l.x[t * cols + c] = static_cast<float>(mag[c] * v);
    }
  }
  fill_stats(l);
  l.rows = rows;
  for (size_t i = 0; i < rows.size(); ++i)
    l.w.push_back(test::gaussian_data(rows[i] * cols, seed * 100 + i));
  return l;
}

// ‖(W - Ŵ) Xᵀ‖² computed from X itself (not through H).
double out_error(const Layer& l, const float* w, const float* w_hat, int64_t rows) {
  std::vector<float> d(rows * l.cols), y(rows * l.tokens);
  for (size_t i = 0; i < d.size(); ++i) d[i] = w[i] - w_hat[i];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l.tokens, l.cols, 1.0f, d.data(),
              l.cols, l.x.data(), l.cols, 0.0f, y.data(), l.tokens);
  double e = 0.0;
  for (float v : y) e += static_cast<double>(v) * v;
  return e;
}

// Ŵ of AWQ in the original basis: deq(awq_quantize(W·diag(s)))·diag(1/s).
std::vector<float> awq_weight(const Layer& l, size_t i, const std::vector<float>& s,
                              const QuantSpec& spec, const AwqOptions& opt = {}) {
  std::vector<float> ws = l.w[i];
  awq_scale_columns(ws.data(), l.rows[i], l.cols, s.data());
  QuantizedMatrix m = awq_quantize(ws.data(), l.rows[i], l.cols, l.h.data(), s.data(), spec, opt);
  validate(m);
  std::vector<float> back = dequantize(m);
  for (int64_t r = 0; r < l.rows[i]; ++r)
    for (int64_t c = 0; c < l.cols; ++c) back[r * l.cols + c] /= s[c];
  return back;
}

struct Errors {
  double rtn = 0, awq = 0;
  AwqSearchResult res;
};

// Output error summed over the layer's linears: plain RTN vs AWQ (search + fold + quantize).
Errors compare(const Layer& l, const QuantSpec& spec, const AwqOptions& opt = {}) {
  Errors e;
  const std::vector<AwqLinearRef> refs = l.refs();
  e.res = awq_search_scales(refs, l.cols, l.x_abs.data(), l.h.data(), spec, opt);
  for (size_t i = 0; i < l.w.size(); ++i) {
    const std::vector<float> rtn = dequantize(quantize_rtn(l.w[i].data(), l.rows[i], l.cols, spec));
    e.rtn += out_error(l, l.w[i].data(), rtn.data(), l.rows[i]);
    const std::vector<float> awq = awq_weight(l, i, e.res.scales, spec, opt);
    e.awq += out_error(l, l.w[i].data(), awq.data(), l.rows[i]);
  }
  return e;
}

const Layer& qkv_layer() {  // q [128, 512], k and v [64, 512] (GQA-like), 8 salient channels
  static const Layer l = make_layer(512, {128, 64, 64}, 8, 7);
  return l;
}

// AWQ error / RTN error measured on qkv_layer() (AWQ with its default Row clip search vs plain
// RTN); bands are [0.8, 1.2] x these values. Re-pin by copying the ratios the test prints.
// (With the Diagonal clip metric they were 0.5549, 0.4443, 0.4368, 0.4425.)
const std::map<std::string, double> kPinnedRatio = {
    {"int4:g128", 0.4144},
    {"int3:g128", 0.3251},
    {"nf4:g64", 0.2928},
    {"int3:g128:asym", 0.3160},
};

TEST(Awq, ReducesOutputErrorInsideTwoSidedBands) {
  for (const auto& [name, pinned] : kPinnedRatio) {
    const Errors e = compare(qkv_layer(), parse_quant_spec(name));
    const double ratio = e.awq / e.rtn;
    std::printf("  %-16s alpha %.2f  awq/rtn %.4g  search loss best/plain %.4g\n", name.c_str(),
                e.res.alpha, ratio, e.res.loss_best / e.res.loss_plain);
    EXPECT_TRUE(e.res.scaled) << name;
    EXPECT_GE(ratio, 0.8 * pinned) << name;
    EXPECT_LE(ratio, 1.2 * pinned) << name;
  }
}

// The scaling alone (no clip search) already beats RTN; the clip search then helps further.
TEST(Awq, ScalingAloneBeatsRtn) {
  AwqOptions no_clip;
  no_clip.clip_search = false;
  for (const char* name : {"int4:g128", "int3:g128"}) {
    const Errors plain = compare(qkv_layer(), parse_quant_spec(name), no_clip);
    const Errors clip = compare(qkv_layer(), parse_quant_spec(name));
    std::printf("  %-10s no clip awq/rtn %.4g, clip %.4g\n", name, plain.awq / plain.rtn,
                clip.awq / clip.rtn);
    EXPECT_LT(plain.awq, 0.9 * plain.rtn) << name;
    EXPECT_LT(clip.awq, plain.awq) << name;
  }
}

// With every row scored (max_rows = 0) the search's losses are exactly the output errors of
// RTN (s = 1) and of RTN of the scaled weight, unscaled; output_sq_error agrees with the error
// computed from X itself.
TEST(Awq, SearchLossIsTheOutputError) {
  const Layer& l = qkv_layer();
  const QuantSpec spec = parse_quant_spec("int4:g128");
  AwqOptions opt;
  opt.max_rows = 0;
  opt.clip_search = false;
  const std::vector<AwqLinearRef> refs = l.refs();
  const AwqSearchResult res =
      awq_search_scales(refs, l.cols, l.x_abs.data(), l.h.data(), spec, opt);
  double plain = 0, best = 0, plain_x = 0;
  for (size_t i = 0; i < l.w.size(); ++i) {
    const std::vector<float> rtn = dequantize(quantize_rtn(l.w[i].data(), l.rows[i], l.cols, spec));
    plain += output_sq_error(l.w[i].data(), rtn.data(), l.rows[i], l.cols, l.h.data());
    plain_x += out_error(l, l.w[i].data(), rtn.data(), l.rows[i]);
    const std::vector<float> awq = awq_weight(l, i, res.scales, spec, opt);
    best += output_sq_error(l.w[i].data(), awq.data(), l.rows[i], l.cols, l.h.data());
  }
  EXPECT_NEAR(res.loss_plain / plain, 1.0, 1e-5);
  EXPECT_NEAR(res.loss_best / best, 1.0, 1e-5);
  EXPECT_NEAR(plain_x / plain, 1.0, 1e-4);  // fp32 sums over 1024 tokens vs through H
  EXPECT_LT(res.loss_best, res.loss_plain);
}

// Equal mean |x| on every channel: every candidate is s = 1, so RTN wins (ties keep s = 1) and
// awq_quantize without clip search is exactly RTN.
TEST(Awq, UniformActivationsGiveRtn) {
  const Layer& l = qkv_layer();
  const QuantSpec spec = parse_quant_spec("int4:g128");
  const std::vector<float> flat(l.cols, 0.7f);
  const std::vector<AwqLinearRef> refs = l.refs();
  const AwqSearchResult res = awq_search_scales(refs, l.cols, flat.data(), l.h.data(), spec);
  EXPECT_FALSE(res.scaled);
  EXPECT_EQ(res.alpha, 0.0);
  EXPECT_EQ(res.loss_best, res.loss_plain);
  for (float s : res.scales) ASSERT_EQ(s, 1.0f);
  AwqOptions no_clip;
  no_clip.clip_search = false;
  const QuantizedMatrix a =
      awq_quantize(l.w[0].data(), l.rows[0], l.cols, l.h.data(), res.scales.data(), spec, no_clip);
  const QuantizedMatrix b = quantize_rtn(l.w[0].data(), l.rows[0], l.cols, spec);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
}

// Activations of one magnitude on every channel (iid up to sampling noise): little to gain, and
// the s = 1 candidate keeps the search from losing; the scales stay near 1.
TEST(Awq, NearlyUniformActivationsStayNearRtn) {
  const Layer l = make_layer(256, {128, 64}, 0, 11, /*spread=*/0.0);
  for (const char* name : {"int4:g128", "int3:g64:asym"}) {
    const Errors e = compare(l, parse_quant_spec(name));
    std::printf("  %-14s alpha %.2f  awq/rtn %.4g  search best/plain %.4g\n", name, e.res.alpha,
                e.awq / e.rtn, e.res.loss_best / e.res.loss_plain);
    EXPECT_LE(e.res.loss_best, e.res.loss_plain) << name;
    EXPECT_GT(e.res.loss_best, 0.97 * e.res.loss_plain) << name;
    for (float s : e.res.scales) {
      EXPECT_GT(s, 0.8f) << name;
      EXPECT_LT(s, 1.25f) << name;
    }
    EXPECT_LT(e.awq, 1.0 * e.rtn) << name;  // the clip search still helps a little
  }
}

// The Diagonal metric is quantize_rtn with the clip search weighted by diag(H) / s² over the
// ratios 1 - k·max_shrink/clip_grid.
TEST(Awq, DiagonalMetricIsRtnWithScaledImportance) {
  const Layer& l = qkv_layer();
  const QuantSpec spec = parse_quant_spec("int3:g128:asym");
  const AwqSearchResult res = awq_search_scales(l.refs(), l.cols, l.x_abs.data(), l.h.data(), spec);
  std::vector<float> ws = l.w[1], imp(l.cols);
  awq_scale_columns(ws.data(), l.rows[1], l.cols, res.scales.data());
  for (int64_t c = 0; c < l.cols; ++c)
    imp[c] = static_cast<float>(l.h[c * l.cols + c] / (double(res.scales[c]) * res.scales[c]));
  AwqOptions opt;
  opt.clip_metric = AwqClipMetric::Diagonal;
  opt.max_shrink = 0.3f;
  opt.clip_grid = 6;
  RtnOptions rtn;
  rtn.clip_search = true;
  rtn.clip_grid = 6;
  rtn.clip_min = 0.7f;
  rtn.importance = imp.data();
  const QuantizedMatrix a =
      awq_quantize(ws.data(), l.rows[1], l.cols, l.h.data(), res.scales.data(), spec, opt);
  const QuantizedMatrix b = quantize_rtn(ws.data(), l.rows[1], l.cols, spec, rtn);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
}

// With max_shrink 0 every candidate is ratio 1: Block and Row give exactly plain RTN, also for
// double-quantized and per-channel specs.
TEST(Awq, NoShrinkIsRtn) {
  const Layer& l = qkv_layer();
  const std::vector<float> ones(l.cols, 1.0f);
  for (const char* name : {"int3:g128", "int4:g64:asym", "nf4:g64:dq", "int4:gc", "ternary:g64"}) {
    const QuantSpec spec = parse_quant_spec(name);
    const QuantizedMatrix rtn = quantize_rtn(l.w[0].data(), l.rows[0], l.cols, spec);
    for (AwqClipMetric metric : {AwqClipMetric::Block, AwqClipMetric::Row}) {
      AwqOptions opt;
      opt.clip_metric = metric;
      opt.max_shrink = 0.0f;
      opt.clip_grid = 2;
      const QuantizedMatrix a =
          awq_quantize(l.w[0].data(), l.rows[0], l.cols, l.h.data(), ones.data(), spec, opt);
      EXPECT_EQ(a.codes, rtn.codes) << name;
      EXPECT_EQ(a.scales, rtn.scales) << name;
      EXPECT_EQ(a.zeros, rtn.zeros) << name;
      EXPECT_EQ(a.scale_codes, rtn.scale_codes) << name;
      EXPECT_EQ(a.dq_scale, rtn.dq_scale) << name;
    }
  }
}

// Every group's parameters are those of the candidate ratio with the least documented error,
// recomputed here in double from fit_group on the whole group: Block δᵀ H_gg δ; Row adds
// 2 δᵀ H[g, 0:b] δ_prev with δ_prev the residuals of the row's earlier groups as stored. δ is
// the residual divided by s (scales from a search, so not 1). Near-ties may go either way in
// fp32, so a different pick must score within 1e-5 of the best.
TEST(Awq, ClipSearchPicksTheLeastError) {
  const Layer l = make_layer(200, {40}, 3, 51, 0.5, 1024, 1.0);  // groups 64, 64, 64, 8
  const QuantSpec spec = parse_quant_spec("int3:g64");
  const std::vector<AwqLinearRef> refs = l.refs();
  const AwqSearchResult res = awq_search_scales(refs, l.cols, l.x_abs.data(), l.h.data(), spec);
  ASSERT_TRUE(res.scaled);
  const std::vector<float>& s = res.scales;
  const int64_t rows = l.rows[0], cols = l.cols, glen = 64;
  std::vector<float> ws = l.w[0];
  awq_scale_columns(ws.data(), rows, cols, s.data());
  AwqOptions opt;
  opt.clip_grid = 8;
  for (AwqClipMetric metric : {AwqClipMetric::Block, AwqClipMetric::Row}) {
    opt.clip_metric = metric;
    const QuantizedMatrix m = awq_quantize(ws.data(), rows, cols, l.h.data(), s.data(), spec, opt);
    const std::vector<float> deq = dequantize(m);
    int exact = 0, total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> d(cols, 0.0);  // δ of the earlier groups as stored, 0 elsewhere
      for (int64_t b = 0; b < cols; b += glen) {
        const int64_t n = std::min(glen, cols - b);
        const float* w = &ws[r * cols + b];
        auto error = [&](const GroupParams& p) {
          std::vector<double> dg(n);
          for (int64_t j = 0; j < n; ++j)
            dg[j] = (w[j] - static_cast<double>(decode(spec, encode(spec, w[j], p), p))) / s[b + j];
          double e = 0.0;
          for (int64_t i = 0; i < n; ++i) {
            double hd = 0.0, cross = 0.0;
            for (int64_t j = 0; j < n; ++j) hd += l.h[(b + i) * cols + b + j] * dg[j];
            if (metric == AwqClipMetric::Row)
              for (int64_t j = 0; j < b; ++j) cross += l.h[(b + i) * cols + j] * d[j];
            e += dg[i] * (hd + 2.0 * cross);
          }
          return e;
        };
        double best = INFINITY;
        GroupParams best_p;
        for (int k = 0; k <= opt.clip_grid; ++k) {
          const GroupParams p = fit_group(spec, w, n, 1.0f - k * opt.max_shrink / opt.clip_grid);
          const double e = error(p);
          if (e < best) {
            best = e;
            best_p = p;
          }
        }
        const GroupParams got = group_params(m, r, b / glen);
        ++total;
        if (got.scale == best_p.scale) {
          ++exact;
        } else {
          EXPECT_LE(error(got), best + 1e-5 * std::fabs(best)) << "row " << r << " col " << b;
        }
        for (int64_t j = 0; j < n; ++j) d[b + j] = (w[j] - deq[r * cols + b + j]) / s[b + j];
      }
    }
    EXPECT_GE(exact, total * 95 / 100) << static_cast<int>(metric);
  }
}

// Pinned output error / no clip search's of ClipMetricsOnInputsWithAMeanComponent.
constexpr double kPinDiag3 = 0.7810, kPinBlock3 = 0.4424, kPinRow3 = 0.3575;
constexpr double kPinDiag4 = 0.8290, kPinBlock4 = 0.4922, kPinRow4 = 0.3834;

// Inputs with a mean component (a per-channel offset shared by all tokens) couple the channels
// and the groups: the diagonal of H alone then gains little from clipping, the group's own block
// much more and the whole row most. Output errors relative to no clip search, bands ±5%.
TEST(Awq, ClipMetricsOnInputsWithAMeanComponent) {
  const Layer l = make_layer(512, {256}, 0, 61, 0.5, 1024, 1.5);
  const std::vector<float> ones(l.cols, 1.0f);
  struct Case {
    const char* spec;
    double diag, block, row;  // output error / no clip search's, pinned
  };
  for (const Case& c : {Case{"int3:g128", kPinDiag3, kPinBlock3, kPinRow3},
                        Case{"int4:g128", kPinDiag4, kPinBlock4, kPinRow4}}) {
    const QuantSpec spec = parse_quant_spec(c.spec);
    auto err = [&](bool clip, AwqClipMetric metric) {
      AwqOptions opt;
      opt.clip_search = clip;
      opt.clip_metric = metric;
      const std::vector<float> q = dequantize(
          awq_quantize(l.w[0].data(), l.rows[0], l.cols, l.h.data(), ones.data(), spec, opt));
      return out_error(l, l.w[0].data(), q.data(), l.rows[0]);
    };
    const double none = err(false, AwqClipMetric::Row);
    const double diag = err(true, AwqClipMetric::Diagonal) / none;
    const double block = err(true, AwqClipMetric::Block) / none;
    const double row = err(true, AwqClipMetric::Row) / none;
    std::printf("  %-10s clip / no clip: diagonal %.4g block %.4g row %.4g\n", c.spec, diag, block,
                row);
    EXPECT_LT(row, block) << c.spec;
    EXPECT_LT(block, diag) << c.spec;
    for (const auto& [got, pinned] :
         {std::pair{diag, c.diag}, std::pair{block, c.block}, std::pair{row, c.row}}) {
      EXPECT_GE(got, 0.95 * pinned) << c.spec;
      EXPECT_LE(got, 1.05 * pinned) << c.spec;
    }
  }
}

// The float model is unchanged by folding: (W·diag(s)) (x / s) = W x, with x / s made by the
// predecessor: a norm weight divided by s, or a predecessor linear's output rows divided by s.
TEST(Awq, FoldingKeepsTheFloatModel) {
  const Layer& l = qkv_layer();
  const AwqSearchResult res = awq_search_scales(l.refs(), l.cols, l.x_abs.data(), l.h.data(),
                                                parse_quant_spec("int4:g128"));
  ASSERT_TRUE(res.scaled);
  const int64_t cols = l.cols, rows = l.rows[0], d_in = 96;
  std::vector<float> ws = l.w[0];
  awq_scale_columns(ws.data(), rows, cols, res.scales.data());
  // Norm predecessor: x = gamma ∘ u.
  const std::vector<float> u = test::gaussian_data(cols, 21, 1.0);
  std::vector<float> gamma = test::gaussian_data(cols, 22, 1.0), gamma_f = gamma;
  awq_divide_rows(gamma_f.data(), cols, 1, res.scales.data());
  // Linear predecessor: x = V z, V [cols, d_in].
  const std::vector<float> v = test::gaussian_data(cols * d_in, 23, 0.1);
  const std::vector<float> z = test::gaussian_data(d_in, 24, 1.0);
  std::vector<float> v_f = v;
  awq_divide_rows(v_f.data(), cols, d_in, res.scales.data());
  auto matvec = [](const float* a, const float* x, int64_t n, int64_t k) {
    std::vector<double> y(n, 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) y[i] += static_cast<double>(a[i * k + j]) * x[j];
    return y;
  };
  auto to_float = [](const std::vector<double>& a) {
    return std::vector<float>(a.begin(), a.end());
  };
  std::vector<float> x(cols), x_f(cols);
  for (int64_t c = 0; c < cols; ++c) {
    x[c] = gamma[c] * u[c];
    x_f[c] = gamma_f[c] * u[c];
  }
  const std::vector<float> vx = to_float(matvec(v.data(), z.data(), cols, d_in));
  const std::vector<float> vx_f = to_float(matvec(v_f.data(), z.data(), cols, d_in));
  using Pair = std::pair<const std::vector<float>*, const std::vector<float>*>;
  for (const auto& [in, in_f] : {Pair{&x, &x_f}, Pair{&vx, &vx_f}}) {
    const std::vector<double> y = matvec(l.w[0].data(), in->data(), rows, cols);
    const std::vector<double> y_f = matvec(ws.data(), in_f->data(), rows, cols);
    double ref = 0, diff = 0;
    for (int64_t r = 0; r < rows; ++r) {
      ref += y[r] * y[r];
      diff += (y[r] - y_f[r]) * (y[r] - y_f[r]);
    }
    EXPECT_LT(std::sqrt(diff / ref), 1e-6);  // a few fp32 roundings per product
  }
}

// A group shares one s: its s = 1 loss is the sum of its linears' own, and its best loss is at
// least the sum of what each linear would reach with scales of its own.
TEST(Awq, LinearsSharingOneInput) {
  const Layer& l = qkv_layer();
  const QuantSpec spec = parse_quant_spec("int3:g128");
  const std::vector<AwqLinearRef> refs = l.refs();
  const AwqSearchResult group = awq_search_scales(refs, l.cols, l.x_abs.data(), l.h.data(), spec);
  double plain = 0, best = 0;
  for (const AwqLinearRef& r : refs) {
    const AwqSearchResult one =
        awq_search_scales(std::span(&r, 1), l.cols, l.x_abs.data(), l.h.data(), spec);
    plain += one.loss_plain;
    best += one.loss_best;
  }
  EXPECT_NEAR(group.loss_plain / plain, 1.0, 1e-9);
  EXPECT_GE(group.loss_best, best * (1 - 1e-9));
  EXPECT_LT(group.loss_best, group.loss_plain);
}

// Scoring 64 evenly spaced rows per linear picks scales as good as scoring all of them.
TEST(Awq, RowSamplingMatchesExactSearch) {
  const Layer l = make_layer(256, {1024, 512}, 4, 31);
  const QuantSpec spec = parse_quant_spec("int4:g64");
  AwqOptions exact, sampled;
  exact.max_rows = 0;
  sampled.max_rows = 64;
  const Errors e = compare(l, spec, exact), s = compare(l, spec, sampled);
  std::printf("  alpha exact %.2f sampled %.2f; awq/rtn exact %.4g sampled %.4g\n", e.res.alpha,
              s.res.alpha, e.awq / e.rtn, s.awq / s.rtn);
  EXPECT_NEAR(s.res.alpha, e.res.alpha, 0.1);
  EXPECT_NEAR(s.awq / e.awq, 1.0, 0.02);
  EXPECT_NEAR(s.res.loss_plain / e.res.loss_plain, 1.0, 0.1);  // an estimate from 64 rows
}

// Every format kind, awkward widths (cols 200: g128 leaves a last group of 72, g64 and g32 one
// of 8), per-channel groups and double-quantized scales.
TEST(Awq, EveryFormatKind) {
  const Layer l = make_layer(200, {48, 24}, 3, 41);
  for (const char* name : {"int2:g64", "int2:g128:asym", "int3:gc", "int4:gc:asym", "int5:g32",
                           "int8:g128", "int4:g128:dq", "nf4:g64:dq", "nf4:gc", "fp4:g32",
                           "fp4:g64:dq", "fp8:gc", "fp8:g64", "ternary:g64", "f16"}) {
    const Errors e = compare(l, parse_quant_spec(name));
    std::printf("  %-14s alpha %.2f  awq/rtn %.4g\n", name, e.res.alpha, e.awq / e.rtn);
    EXPECT_LE(e.res.loss_best, e.res.loss_plain) << name;
    for (float s : e.res.scales) EXPECT_TRUE(std::isfinite(s) && s > 0.0f) << name;
    if (parse_quant_spec(name).quantized()) {
      EXPECT_LT(e.awq, e.rtn) << name;
    }
  }
}

// AutoAWQ's duo scaling (weight magnitudes in the scales) is an alternative family; s = 1 is
// still a candidate.
TEST(Awq, DuoScaling) {
  AwqOptions duo;
  duo.duo_scaling = true;
  for (const char* name : {"int4:g128", "int3:g128"}) {
    const Errors e = compare(qkv_layer(), parse_quant_spec(name), duo);
    std::printf("  %-10s duo alpha %.2f  awq/rtn %.4g\n", name, e.res.alpha, e.awq / e.rtn);
    EXPECT_LE(e.res.loss_best, e.res.loss_plain) << name;
    EXPECT_LT(e.awq, 0.9 * e.rtn) << name;
  }
}

TEST(Awq, ResultDoesNotDependOnThreadCount) {
  const Layer& l = qkv_layer();
  const QuantSpec spec = parse_quant_spec("nf4:g64");
  const int threads = num_threads();
  set_num_threads(1);
  const AwqSearchResult one = awq_search_scales(l.refs(), l.cols, l.x_abs.data(), l.h.data(), spec);
  set_num_threads(3);
  const AwqSearchResult three =
      awq_search_scales(l.refs(), l.cols, l.x_abs.data(), l.h.data(), spec);
  set_num_threads(threads);
  EXPECT_EQ(one.scales, three.scales);
  EXPECT_EQ(one.loss_best, three.loss_best);
  EXPECT_EQ(one.loss_plain, three.loss_plain);
}

// The clip search runs fixed blocks of rows (64 for g128 here, 48 per channel at 512 columns),
// so 200 rows split unevenly over any thread count give the same matrix.
TEST(Awq, QuantizeDoesNotDependOnThreadCount) {
  const Layer l = make_layer(512, {200}, 4, 71);
  const AwqSearchResult res = awq_search_scales(l.refs(), l.cols, l.x_abs.data(), l.h.data(),
                                                parse_quant_spec("int3:g128"));
  std::vector<float> ws = l.w[0];
  awq_scale_columns(ws.data(), l.rows[0], l.cols, res.scales.data());
  const int threads = num_threads();
  for (const char* name : {"int3:g128", "int4:gc:asym", "nf4:g64:dq"}) {
    for (AwqClipMetric metric : {AwqClipMetric::Block, AwqClipMetric::Row}) {
      AwqOptions opt;
      opt.clip_metric = metric;
      std::vector<QuantizedMatrix> m;
      for (int t : {1, 3, 4}) {
        set_num_threads(t);
        m.push_back(awq_quantize(ws.data(), l.rows[0], l.cols, l.h.data(), res.scales.data(),
                                 parse_quant_spec(name), opt));
      }
      for (size_t i = 1; i < m.size(); ++i) {
        EXPECT_EQ(m[i].codes, m[0].codes) << name;
        EXPECT_EQ(m[i].scales, m[0].scales) << name;
        EXPECT_EQ(m[i].zeros, m[0].zeros) << name;
        EXPECT_EQ(m[i].scale_codes, m[0].scale_codes) << name;
      }
    }
  }
  set_num_threads(threads);
}

void expect_algo_error(const std::function<void()>& f, const std::string& needle,
                       const std::string& component = "algo") {
  test::expect_error(f, needle, component);
}

TEST(Awq, RejectsBadInput) {
  const int64_t cols = 16;
  std::vector<float> w(4 * cols, 0.1f), xa(cols, 1.0f), h(cols * cols, 0.0f), s(cols, 1.0f);
  for (int64_t c = 0; c < cols; ++c) h[c * cols + c] = 1.0f;
  const QuantSpec spec = parse_quant_spec("int4:g8");
  std::vector<AwqLinearRef> refs = {{w.data(), 4, cols}};
  auto search = [&](const AwqOptions& opt = {}) {
    awq_search_scales(refs, cols, xa.data(), h.data(), spec, opt);
  };
  expect_algo_error([&] { awq_search_scales({}, cols, xa.data(), h.data(), spec); },
                    "no linear layers");
  refs[0].cols = 8;
  expect_algo_error([&] { search(); }, "linear 0 has 8 cols, the group has 16");
  refs[0] = {w.data(), 0, 0};
  expect_algo_error([&] { search(); }, "no weight rows");
  refs[0] = {nullptr, 4, 0};
  expect_algo_error([&] { search(); }, "no weight rows");
  refs[0] = {w.data(), 4, 0};
  w[21] = NAN;
  expect_algo_error([&] { search(); }, "non-finite weight at (1, 5)");
  w[21] = 0.1f;
  xa[3] = -1.0f;
  expect_algo_error([&] { search(); }, "mean |x| of channel 3");
  xa[3] = NAN;
  expect_algo_error([&] { search(); }, "mean |x| of channel 3");
  xa[3] = INFINITY;
  expect_algo_error([&] { search(); }, "mean |x| of channel 3");
  xa[3] = 1.0f;
  h[2 * cols + 5] = INFINITY;
  expect_algo_error([&] { search(); }, "H(2, 5) is not finite");
  h[2 * cols + 5] = 0.0f;
  h[4 * cols + 4] = -1.0f;
  expect_algo_error([&] { search(); }, "H(4, 4) < 0");
  h[4 * cols + 4] = 1.0f;
  expect_algo_error([&] { awq_search_scales(refs, cols, nullptr, h.data(), spec); },
                    "missing input statistics");
  AwqOptions opt;
  opt.grid = 0;
  expect_algo_error([&] { search(opt); }, "grid must be >= 1");
  opt = {};
  opt.max_rows = -1;
  expect_algo_error([&] { search(opt); }, "max_rows");
  opt = {};
  opt.max_shrink = 1.0f;
  expect_algo_error([&] { search(opt); }, "max_shrink");
  QuantSpec bad = spec;
  bad.bits = 12;
  expect_algo_error([&] { awq_search_scales(refs, cols, xa.data(), h.data(), bad); },
                    "bad quant spec", "format");  // check_quant_spec's own error
  auto quantize = [&](const float* scales, const AwqOptions& opt = {}) {
    awq_quantize(w.data(), 4, cols, h.data(), scales, spec, opt);
  };
  s[6] = 0.0f;
  expect_algo_error([&] { quantize(s.data()); }, "scale of channel 6");
  s[6] = INFINITY;
  expect_algo_error([&] { quantize(s.data()); }, "scale of channel 6");
  s[6] = 1.0f;
  h[2 * cols + 3] = NAN;
  expect_algo_error([&] { quantize(s.data()); }, "H(2, 3) is not finite");
  h[2 * cols + 3] = 0.0f;
  h[5 * cols + 5] = -1.0f;
  expect_algo_error([&] { quantize(s.data()); }, "H(5, 5) < 0");
  h[5 * cols + 5] = 1.0f;
  expect_algo_error([&] { quantize(nullptr); }, "needs the weight, H and the scales");
  expect_algo_error([&] { awq_quantize(w.data(), 0, cols, h.data(), s.data(), spec); },
                    "empty matrix [0, 16]");
  w[9] = INFINITY;
  expect_algo_error([&] { quantize(s.data()); }, "non-finite weight at (0, 9)");
  w[9] = 0.1f;
  opt = {};
  opt.clip_grid = 0;
  expect_algo_error([&] { quantize(s.data(), opt); }, "clip_grid >= 1");
  expect_algo_error([&] { awq_quantize(w.data(), 4, cols, h.data(), s.data(), bad); },
                    "bad quant spec", "format");
  EXPECT_NO_THROW(quantize(s.data()));
  EXPECT_NO_THROW(search());
}

// The scale search and the clip-searched quantization give identical results for 1, 2 and 3
// threads (issue 14's determinism: work is cut into fixed blocks, never per thread).
TEST(Awq, IndependentOfThreadCount) {
  const Layer& l = qkv_layer();
  for (const char* name : {"int4:g32", "int3:g128:asym"}) {
    const QuantSpec spec = parse_quant_spec(name);
    std::vector<float> first_scales;
    std::vector<uint8_t> first_codes;
    std::vector<uint16_t> first_qscales;
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      const AwqSearchResult res = awq_search_scales(l.refs(), l.cols, l.x_abs.data(), l.h.data(), spec);
      std::vector<float> ws = l.w[0];
      awq_scale_columns(ws.data(), l.rows[0], l.cols, res.scales.data());
      const QuantizedMatrix m = awq_quantize(ws.data(), l.rows[0], l.cols, l.h.data(), res.scales.data(), spec);
      if (threads == 1) {
        first_scales = res.scales;
        first_codes = m.codes;
        first_qscales = m.scales;
      } else {
        EXPECT_EQ(res.scales, first_scales) << name << " search, " << threads << " threads";
        EXPECT_EQ(m.codes, first_codes) << name << " codes, " << threads << " threads";
        EXPECT_EQ(m.scales, first_qscales) << name << " scales, " << threads << " threads";
      }
    }
    set_num_threads(0);
  }
}

}  // namespace
}  // namespace lowbit
