#include "algo/awq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "algo/rtn.h"
#include "base/error.h"
#include "base/parallel.h"
#include "formats/registry.h"

namespace lowbit {

namespace {

constexpr double kScaleFloor = 1e-4;  // AutoAWQ's clamp(min=1e-4) before normalizing
constexpr int64_t kSliceCols = 256;   // columns of H per gemm call (the unit of threading)
constexpr int64_t kChunkRows = 1024;  // rows of ΔW scored at once (bounds memory)

std::string idx(int64_t i) {
  return std::to_string(i);
}

// Index of the first non-finite value of p[0..n), or -1.
int64_t first_non_finite(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

void check_options(const AwqOptions& opt) {
  if (opt.grid < 1) throw Error("algo", "awq: grid must be >= 1, got " + idx(opt.grid));
  if (opt.max_rows < 0) throw Error("algo", "awq: max_rows must be >= 0 (0 = all rows)");
  if (!(opt.max_shrink >= 0.0f && opt.max_shrink < 1.0f) || opt.clip_grid < 1)
    throw Error("algo", "awq: clip search needs max_shrink in [0, 1) and clip_grid >= 1");
}

void check_linears(std::span<const AwqLinearRef> linears, int64_t cols) {
  if (linears.empty()) throw Error("algo", "awq: no linear layers to search scales for");
  if (cols < 1) throw Error("algo", "awq: cols must be >= 1, got " + idx(cols));
  for (size_t i = 0; i < linears.size(); ++i) {
    const AwqLinearRef& l = linears[i];
    const std::string name = "awq: linear " + idx(static_cast<int64_t>(i));
    if (!l.w || l.rows < 1) throw Error("algo", name + " has no weight rows");
    if (l.cols != 0 && l.cols != cols)
      throw Error("algo", name + " has " + idx(l.cols) + " cols, the group has " + idx(cols));
    const int64_t bad = first_non_finite(l.w, l.rows * cols);
    if (bad >= 0)
      throw Error("algo", name + " has a non-finite weight at (" + idx(bad / cols) + ", " +
                              idx(bad % cols) + ")");
  }
}

// H = Σ x xᵀ [cols, cols]: finite, with a non-negative diagonal.
void check_hessian(int64_t cols, const float* h) {
  const int64_t bad = first_non_finite(h, cols * cols);
  if (bad >= 0)
    throw Error("algo", "awq: H(" + idx(bad / cols) + ", " + idx(bad % cols) + ") is not finite");
  for (int64_t c = 0; c < cols; ++c)
    if (h[c * cols + c] < 0.0f)
      throw Error("algo", "awq: H(" + idx(c) + ", " + idx(c) + ") < 0: not a sum of x xᵀ");
}

void check_stats(int64_t cols, const float* x_mean_abs, const float* h) {
  if (!x_mean_abs || !h) throw Error("algo", "awq: missing input statistics (mean |x| or H)");
  for (int64_t c = 0; c < cols; ++c)
    if (!(x_mean_abs[c] >= 0.0f) || std::isinf(x_mean_abs[c]))
      throw Error("algo", "awq: mean |x| of channel " + idx(c) + " is not a finite value >= 0");
  check_hessian(cols, h);
}

// AutoAWQ's duo_scaling weight statistic: per column, the mean over all rows of all linears of
// |w| / (max |w| of its group + 1e-6). Parallel over groups of columns; sums in double.
std::vector<float> column_w_mean(std::span<const AwqLinearRef> linears, int64_t cols,
                                 const QuantSpec& spec) {
  const int64_t glen = spec.group_len(cols), groups = (cols + glen - 1) / glen;
  std::vector<double> sum(static_cast<size_t>(cols), 0.0);
  int64_t total_rows = 0;
  for (const AwqLinearRef& l : linears) {
    total_rows += l.rows;
    parallel_for(groups, [&](int64_t gb, int64_t ge) {
      for (int64_t r = 0; r < l.rows; ++r)
        for (int64_t g = gb; g < ge; ++g) {
          const float* w = l.w + r * cols;
          const int64_t b = g * glen, e = std::min(cols, b + glen);
          float amax = 0.0f;
          for (int64_t c = b; c < e; ++c) amax = std::max(amax, std::fabs(w[c]));
          for (int64_t c = b; c < e; ++c) sum[c] += std::fabs(w[c]) / (amax + 1e-6);
        }
    });
  }
  std::vector<float> mean(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) mean[c] = static_cast<float>(sum[c] / total_rows);
  return mean;
}

// The candidate scales of exponent alpha (header formula), computed in double. alpha = 0 without
// w_mean gives exactly 1 everywhere (pow(x, 0) = 1, also for x = 0).
std::vector<float> candidate_scales(const float* x_mean_abs, const std::vector<float>& w_mean,
                                    int64_t cols, double alpha) {
  std::vector<double> t(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    double v = std::pow(static_cast<double>(x_mean_abs[c]), alpha);
    if (!w_mean.empty()) v /= std::pow(static_cast<double>(w_mean[c]), 1.0 - alpha) + 1e-4;
    t[c] = std::max(v, kScaleFloor);
  }
  const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
  const double norm = std::sqrt(*lo * *hi);
  std::vector<float> s(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) s[c] = static_cast<float>(t[c] / norm);
  return s;
}

// One row scored by the search: a weight row and the factor sqrt(rows / sampled rows) of its
// linear (so its squared error counts rows / sampled rows times).
struct SampledRow {
  const float* w;  // [cols]
  float weight;
};

// Of each linear min(rows, max_rows) evenly spaced rows (all rows when max_rows is 0 or >= rows),
// all linears in order.
std::vector<SampledRow> sample_rows(std::span<const AwqLinearRef> linears, int64_t cols,
                                    int64_t max_rows) {
  std::vector<SampledRow> out;
  for (const AwqLinearRef& l : linears) {
    const int64_t m = max_rows == 0 ? l.rows : std::min(l.rows, max_rows);
    const float weight = m == l.rows ? 1.0f : static_cast<float>(std::sqrt(double(l.rows) / m));
    for (int64_t i = 0; i < m; ++i)
      out.push_back({l.w + (2 * i + 1) * l.rows / (2 * m) * cols, weight});
  }
  return out;
}

// Σ_r d_r h d_rᵀ over the m rows of d [m, cols]. Threads split h by column slices of
// kSliceCols: slice j computes g = d · h[:, slice] with one fp32 gemm (h is read and packed
// once in all, d once per slice) and adds Σ_c d[r, c] g[r, c] over its columns in double.
// The slices are fixed and summed in order, so the result does not depend on the thread count.
double quad_form_rows(const float* d, int64_t m, int64_t cols, const float* h) {
  const int64_t slices = (cols + kSliceCols - 1) / kSliceCols;
  std::vector<double> part(static_cast<size_t>(slices), 0.0);
  parallel_for(slices, [&](int64_t begin, int64_t end) {
    std::vector<float> g(static_cast<size_t>(m * kSliceCols));
    for (int64_t j = begin; j < end; ++j) {
      const int64_t c0 = j * kSliceCols, w = std::min(kSliceCols, cols - c0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m),
                  static_cast<int>(w), static_cast<int>(cols), 1.0f, d, static_cast<int>(cols),
                  h + c0, static_cast<int>(cols), 0.0f, g.data(), static_cast<int>(w));
      double acc = 0.0;
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < w; ++c)
          acc += static_cast<double>(d[r * cols + c0 + c]) * g[r * w + c];
      part[j] = acc;
    }
  });
  double total = 0.0;
  for (double v : part) total += v;
  return total;
}

// d [n, cols] <- weight_i · (w_i - ŵ_i) for the n rows, with ŵ = deq(RTN(w·diag(s)))·diag(1/s)
// (no clip search; the n rows quantized as one matrix). False when a scaled weight overflows.
bool scaled_residual(const SampledRow* rows, int64_t n, int64_t cols, const float* s,
                     const QuantSpec& spec, float* d) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < cols; ++c) d[i * cols + c] = rows[i].w[c] * s[c];
  if (first_non_finite(d, n * cols) >= 0) return false;
  const std::vector<float> deq = dequantize(quantize_rtn(d, n, cols, spec));
  // One light pass (serial: a parallel region costs more than it saves here).
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < cols; ++c) {
      const float r = rows[i].w[c] - deq[i * cols + c] / s[c];
      d[i * cols + c] = rows[i].weight == 1.0f ? r : rows[i].weight * r;
    }
  return true;
}

// The search's loss of scales s over the sampled rows, in chunks of kChunkRows rows (h is
// streamed once per chunk); +inf when a scaled weight overflows fp32.
double candidate_loss(const std::vector<SampledRow>& rows, int64_t cols,
                      const std::vector<float>& s, const float* h, const QuantSpec& spec) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<float> d(static_cast<size_t>(std::min(n, kChunkRows) * cols));
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kChunkRows) {
    const int64_t m = std::min(kChunkRows, n - b);
    if (!scaled_residual(&rows[b], m, cols, s.data(), spec, d.data())) return INFINITY;
    total += quad_form_rows(d.data(), m, cols, h);
  }
  return total;
}

// ---- awq_quantize's clip search (Block and Row metrics) ------------------------------------

// Floats of candidate residuals per row block: sets the rows searched together (the unit of
// threading), at most kClipRowsMax, fewer for long groups (per-channel) so scratch stays small.
constexpr int64_t kClipFloats = int64_t{1} << 19;
constexpr int64_t kClipRowsMax = 64;

void check_quantize_stats(int64_t cols, const float* h, const float* scales) {
  for (int64_t c = 0; c < cols; ++c)
    if (!(scales[c] > 0.0f) || std::isinf(scales[c]))
      throw Error("algo", "awq: scale of channel " + idx(c) + " is not a finite value > 0");
  check_hessian(cols, h);
}

// The few values fit_group of the group w[0..n) depends on, by the fit rules in the kinds'
// headers (formats/int.h, nf4.h, fp4.h, fp8.h): asymmetric Int its min and max, symmetric Int
// the first value of largest magnitude, NF4/FP4/FP8 the absmax (that same value); ternary its
// mean |w|, so all of w. fit_group of the summary equals fit_group of the group for every clip
// ratio, and costs O(1) per candidate. Returns the length; the values are in buf or w.
int64_t fit_summary(const QuantSpec& spec, const float* w, int64_t n, float (&buf)[2],
                    const float*& out) {
  if (spec.kind == FormatKind::Ternary || spec.kind == FormatKind::E8P) {  // mean |w|, rms
    out = w;
    return n;
  }
  out = buf;
  if (spec.kind == FormatKind::Int && spec.asym) {
    const auto [lo, hi] = std::minmax_element(w, w + n);
    buf[0] = *lo;
    buf[1] = *hi;
    return 2;
  }
  float m = 0.0f;  // strict > keeps the first on ties, as int_fit does
  for (int64_t i = 0; i < n; ++i)
    if (std::fabs(w[i]) > std::fabs(m)) m = w[i];
  buf[0] = m;
  return 1;
}

// What the clip search of one matrix shares. The residuals it scores are δ/s (the original
// basis), so δ_sᵀ H_s δ_s = (δ/s)ᵀ H (δ/s) reads the unscaled H in place.
struct ClipSearch {
  const QuantSpec& spec;
  int64_t cols, glen, groups, block_rows;
  const float* h;             // [cols, cols], unscaled
  std::vector<float> inv_s;   // [cols]
  bool cross;                 // Row metric
  std::vector<float> ratios;  // the candidates' clip ratios, 1 first

  ClipSearch(const QuantSpec& sp, int64_t c, const float* hh, const float* s, const AwqOptions& o)
      : spec(sp),
        cols(c),
        glen(sp.group_len(c)),
        groups((c + glen - 1) / glen),
        h(hh),
        cross(o.clip_metric == AwqClipMetric::Row) {
    for (int64_t i = 0; i < c; ++i) inv_s.push_back(1.0f / s[i]);
    for (int k = 0; k <= o.clip_grid; ++k)
      ratios.push_back(1.0f - static_cast<float>(k) * o.max_shrink / o.clip_grid);
    block_rows = std::clamp<int64_t>(kClipFloats / (n_cand() * glen), 1, kClipRowsMax);
  }
  int64_t n_cand() const { return static_cast<int64_t>(ratios.size()); }
};

// Per-thread buffers for block_rows rows: each candidate's parameters, residual δ/s
// [rows·n_cand, glen] and its product with H_gg; Row metric: the chosen residuals δ/s
// [rows, cols] and the cross terms [rows, glen].
struct ClipScratch {
  std::vector<GroupParams> params;
  std::vector<float> delta, prod, rec, chosen, cross;
  std::vector<uint8_t> codes;
  explicit ClipScratch(const ClipSearch& cs)
      : params(static_cast<size_t>(cs.block_rows * cs.n_cand())),
        delta(static_cast<size_t>(cs.block_rows * cs.n_cand() * cs.glen)),
        prod(delta.size()),
        rec(static_cast<size_t>(cs.glen)),
        chosen(cs.cross ? static_cast<size_t>(cs.block_rows * cs.cols) : 0),
        cross(static_cast<size_t>(cs.block_rows * cs.glen)),
        codes(static_cast<size_t>(cs.glen)) {}
};

// Group g (columns b .. b+n) of the nr rows w [nr, cols]: every candidate's parameters and
// residual (w - deq(Q(w))) / s into the scratch, [nr·n_cand, n].
void candidate_residuals(const ClipSearch& cs, const float* w, int64_t nr, int64_t g,
                         ClipScratch& sc) {
  const int64_t b = g * cs.glen, n = std::min(cs.glen, cs.cols - b), nc = cs.n_cand();
  for (int64_t i = 0; i < nr; ++i) {
    const float* wg = w + i * cs.cols + b;
    float buf[2];
    const float* summary = nullptr;
    const int64_t len = fit_summary(cs.spec, wg, n, buf, summary);
    for (int64_t k = 0; k < nc; ++k) {
      const GroupParams p = fit_group(cs.spec, summary, len, cs.ratios[k]);
      encode_group(cs.spec, wg, n, p, sc.codes.data());
      decode_group(cs.spec, sc.codes.data(), n, p, sc.rec.data());
      float* d = &sc.delta[(i * nc + k) * n];
      for (int64_t j = 0; j < n; ++j) d[j] = (wg[j] - sc.rec[j]) * cs.inv_s[b + j];
      sc.params[i * nc + k] = p;
    }
  }
}

// C [m, n] = A [m, k] (leading dimension lda) · B [k, n] (ldb), fp32.
void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
          float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), 0.0f,
              c, static_cast<int>(n));
}

// The clip search of nr (<= block_rows) rows w [nr, cols], groups in column order. Candidate
// k of group g scores δ_kᵀ (H_gg δ_k + 2 u) in double, with H_gg δ_k from one gemm for all
// rows and candidates, and (Row metric) u = H[g, 0:b] δ_prev, the coupling with the residuals
// already chosen in the row's earlier groups (one gemm per group), else u = 0. The smallest
// wins; ties keep the earlier (larger) ratio. Parameters into out [nr, groups].
void search_clip_rows(const ClipSearch& cs, const float* w, int64_t nr, GroupParams* out,
                      ClipScratch& sc) {
  const int64_t nc = cs.n_cand(), cols = cs.cols;
  for (int64_t g = 0; g < cs.groups; ++g) {
    const int64_t b = g * cs.glen, n = std::min(cs.glen, cols - b);
    candidate_residuals(cs, w, nr, g, sc);
    gemm(nr * nc, n, n, sc.delta.data(), n, cs.h + b * cols + b, cols, sc.prod.data());
    const bool coupled = cs.cross && b > 0;
    if (coupled) gemm(nr, n, b, sc.chosen.data(), cols, cs.h + b, cols, sc.cross.data());
    for (int64_t i = 0; i < nr; ++i) {
      const float* u = &sc.cross[i * n];
      double best = INFINITY;
      int64_t best_k = 0;
      for (int64_t k = 0; k < nc; ++k) {
        const float* d = &sc.delta[(i * nc + k) * n];
        const float* q = &sc.prod[(i * nc + k) * n];
        double e = 0.0;
        if (coupled)
          for (int64_t j = 0; j < n; ++j) e += static_cast<double>(d[j]) * (q[j] + 2.0f * u[j]);
        else
          for (int64_t j = 0; j < n; ++j) e += static_cast<double>(d[j]) * q[j];
        if (e < best) {  // strict: ties keep the larger ratio
          best = e;
          best_k = k;
        }
      }
      out[i * cs.groups + g] = sc.params[i * nc + best_k];
      if (cs.cross) std::copy_n(&sc.delta[(i * nc + best_k) * n], n, &sc.chosen[i * cols + b]);
    }
  }
}

// The matrix of w [rows, cols] with the chosen group parameters params [rows, groups] (fp32
// scales for double-quantized specs, which are then double-quantized and the codes encoded
// against the decoded scales, as quantize_rtn does).
QuantizedMatrix build_matrix(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                             const std::vector<GroupParams>& params) {
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  const int64_t groups = m.groups_per_row(), glen = m.group_len();
  if (spec.double_quant) {
    std::vector<float> s(params.size());
    for (size_t i = 0; i < params.size(); ++i) s[i] = params[i].scale;
    set_double_quant_scales(m, s.data());
  } else {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < groups; ++g) set_group_params(m, r, g, params[r * groups + g]);
  }
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t b = g * glen, n = std::min(glen, cols - b);
        encode_group(spec, w + r * cols + b, n, group_params(m, r, g), &codes[b]);
      }
      set_row_codes(m, r, codes.data());
    }
  });
  return m;
}

// The clip-searched quantization of w [rows, cols] (Block or Row metric), row blocks of
// cs.block_rows in parallel (fixed blocks: the result does not depend on the thread count).
QuantizedMatrix quantize_clip_searched(const float* w, int64_t rows, int64_t cols, const float* h,
                                       const float* scales, const QuantSpec& spec,
                                       const AwqOptions& opt) {
  const int64_t bad = first_non_finite(w, rows * cols);
  if (bad >= 0)
    throw Error("algo",
                "awq: non-finite weight at (" + idx(bad / cols) + ", " + idx(bad % cols) + ")");
  const ClipSearch cs(spec, cols, h, scales, opt);
  std::vector<GroupParams> params(static_cast<size_t>(rows * cs.groups));
  const int64_t blocks = (rows + cs.block_rows - 1) / cs.block_rows;
  parallel_for(blocks, [&](int64_t begin, int64_t end) {
    ClipScratch scratch(cs);
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t r0 = blk * cs.block_rows;
      search_clip_rows(cs, w + r0 * cols, std::min(cs.block_rows, rows - r0),
                       &params[r0 * cs.groups], scratch);
    }
  });
  return build_matrix(w, rows, cols, spec, params);
}

}  // namespace

AwqSearchResult awq_search_scales(std::span<const AwqLinearRef> linears, int64_t cols,
                                  const float* x_mean_abs, const float* h, const QuantSpec& spec,
                                  const AwqOptions& opt) {
  check_options(opt);
  check_linears(linears, cols);
  check_stats(cols, x_mean_abs, h);
  check_quant_spec(spec);
  check_vector_shape(spec, cols, "algo");
  const std::vector<SampledRow> rows = sample_rows(linears, cols, opt.max_rows);
  const std::vector<float> w_mean =
      opt.duo_scaling ? column_w_mean(linears, cols, spec) : std::vector<float>{};

  AwqSearchResult res;
  res.scales.assign(static_cast<size_t>(cols), 1.0f);
  res.loss_plain = res.loss_best = candidate_loss(rows, cols, res.scales, h, spec);
  // Without duo scaling alpha = 0 is s = 1, already scored.
  for (int k = opt.duo_scaling ? 0 : 1; k < opt.grid; ++k) {
    const double alpha = static_cast<double>(k) / opt.grid;
    std::vector<float> s = candidate_scales(x_mean_abs, w_mean, cols, alpha);
    const double loss = candidate_loss(rows, cols, s, h, spec);
    if (loss < res.loss_best) {  // strict: ties keep the earlier candidate (s = 1 first)
      res = {std::move(s), alpha, true, res.loss_plain, loss};
    }
  }
  return res;
}

QuantizedMatrix awq_quantize(const float* w_scaled, int64_t rows, int64_t cols, const float* h,
                             const float* scales, const QuantSpec& spec, const AwqOptions& opt) {
  check_options(opt);
  if (!w_scaled || !h || !scales)
    throw Error("algo", "awq: quantize needs the weight, H and the scales");
  if (rows < 1 || cols < 1)
    throw Error("algo", "awq: empty matrix [" + idx(rows) + ", " + idx(cols) + "]");
  check_quantize_stats(cols, h, scales);
  check_quant_spec(spec);
  check_vector_shape(spec, cols, "algo");
  if (!opt.clip_search || !spec.quantized() || opt.clip_metric == AwqClipMetric::Diagonal) {
    std::vector<float> importance(static_cast<size_t>(cols));
    for (int64_t c = 0; c < cols; ++c) {
      const double s = scales[c];
      importance[c] = static_cast<float>(h[c * cols + c] / (s * s));
      if (std::isinf(importance[c]))
        throw Error("algo", "awq: H(c, c) / s_c² overflows fp32 at channel " + idx(c));
    }
    RtnOptions rtn;
    rtn.clip_search = opt.clip_search;
    rtn.clip_grid = opt.clip_grid;
    rtn.clip_min = 1.0f - opt.max_shrink;
    rtn.importance = importance.data();
    return quantize_rtn(w_scaled, rows, cols, spec, rtn);
  }
  return quantize_clip_searched(w_scaled, rows, cols, h, scales, spec, opt);
}

double output_sq_error(const float* w, const float* w_hat, int64_t rows, int64_t cols,
                       const float* h) {
  std::vector<float> d(static_cast<size_t>(std::min(rows, kChunkRows) * cols));
  double total = 0.0;
  for (int64_t r0 = 0; r0 < rows; r0 += kChunkRows) {
    const int64_t m = std::min(kChunkRows, rows - r0);
    for (int64_t i = 0; i < m * cols; ++i) d[i] = w[r0 * cols + i] - w_hat[r0 * cols + i];
    total += quad_form_rows(d.data(), m, cols, h);
  }
  return total;
}

void awq_scale_columns(float* w, int64_t rows, int64_t cols, const float* s) {
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c = 0; c < cols; ++c) w[r * cols + c] *= s[c];
  });
}

void awq_divide_rows(float* w, int64_t n, int64_t row_len, const float* s) {
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t j = 0; j < row_len; ++j) w[r * row_len + j] /= s[r];
  });
}

}  // namespace lowbit
