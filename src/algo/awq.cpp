#include "algo/awq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "algo/rtn.h"
#include "base/error.h"
#include "base/parallel.h"

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

void check_stats(int64_t cols, const float* x_mean_abs, const float* h) {
  if (!x_mean_abs || !h) throw Error("algo", "awq: missing input statistics (mean |x| or H)");
  for (int64_t c = 0; c < cols; ++c)
    if (!(x_mean_abs[c] >= 0.0f) || std::isinf(x_mean_abs[c]))
      throw Error("algo", "awq: mean |x| of channel " + idx(c) + " is not a finite value >= 0");
  const int64_t bad = first_non_finite(h, cols * cols);
  if (bad >= 0)
    throw Error("algo", "awq: H(" + idx(bad / cols) + ", " + idx(bad % cols) + ") is not finite");
  for (int64_t c = 0; c < cols; ++c)
    if (h[c * cols + c] < 0.0f)
      throw Error("algo", "awq: H(" + idx(c) + ", " + idx(c) + ") < 0: not a sum of x xᵀ");
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

}  // namespace

AwqSearchResult awq_search_scales(std::span<const AwqLinearRef> linears, int64_t cols,
                                  const float* x_mean_abs, const float* h, const QuantSpec& spec,
                                  const AwqOptions& opt) {
  check_options(opt);
  check_linears(linears, cols);
  check_stats(cols, x_mean_abs, h);
  check_quant_spec(spec);
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

QuantizedMatrix awq_quantize(const float* w_scaled, int64_t rows, int64_t cols, const float* h_diag,
                             const float* scales, const QuantSpec& spec, const AwqOptions& opt) {
  check_options(opt);
  if (!w_scaled || !h_diag || !scales)
    throw Error("algo", "awq: quantize needs the weight, diag(H) and the scales");
  if (cols < 1) throw Error("algo", "awq: cols must be >= 1, got " + idx(cols));
  std::vector<float> importance(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    if (!(scales[c] > 0.0f) || std::isinf(scales[c]))
      throw Error("algo", "awq: scale of channel " + idx(c) + " is not a finite value > 0");
    if (!(h_diag[c] >= 0.0f) || std::isinf(h_diag[c]))
      throw Error("algo", "awq: H(" + idx(c) + ", " + idx(c) + ") is not a finite value >= 0");
    const double s = scales[c];
    importance[c] = static_cast<float>(h_diag[c] / (s * s));
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
