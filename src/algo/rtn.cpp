#include "algo/rtn.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/parallel.h"
#include "formats/plain.h"
#include "formats/registry.h"

namespace lowbit {

namespace {

void check_inputs(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                  const RtnOptions& opt) {
  if (rows < 1 || cols < 1)
    throw Error("algo",
                "rtn: empty matrix [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  check_quant_spec(spec);
  check_vector_shape(spec, cols, "algo");
  if (opt.clip_search && (opt.clip_grid < 1 || !(opt.clip_min > 0.0f && opt.clip_min <= 1.0f)))
    throw Error("algo", "rtn: clip search needs clip_grid >= 1 and clip_min in (0, 1]");
  for (int64_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i]))
      throw Error("algo", "rtn: non-finite weight at (" + std::to_string(i / cols) + ", " +
                              std::to_string(i % cols) + ")");
  if (opt.importance)
    for (int64_t c = 0; c < cols; ++c)
      if (!(opt.importance[c] >= 0.0f) || std::isinf(opt.importance[c]))
        throw Error("algo", "rtn: importance of column " + std::to_string(c) +
                                " is not a finite value >= 0");
}

// Pass 1 for one row: the parameters of each group, stored unless the spec double-quantizes
// (then only collected in fp32 into row_scales).
void fit_row(QuantizedMatrix& m, const float* w, int64_t row, const RtnOptions& opt,
             float* row_scales) {
  const int64_t glen = m.group_len();
  for (int64_t g = 0; g < m.groups_per_row(); ++g) {
    const int64_t begin = g * glen, n = std::min(glen, m.cols - begin);
    const float* imp = opt.importance ? opt.importance + begin : nullptr;
    const GroupParams p = fit_group_rtn(m.spec, w + begin, imp, n, opt);
    if (m.spec.double_quant)
      row_scales[g] = p.scale;
    else
      set_group_params(m, row, g, p);
  }
}

// Pass 2 for one row: codes against the parameters as stored.
void encode_row(QuantizedMatrix& m, const float* w, int64_t row, std::vector<uint8_t>& codes) {
  const int64_t glen = m.group_len();
  for (int64_t g = 0; g < m.groups_per_row(); ++g) {
    const int64_t begin = g * glen, n = std::min(glen, m.cols - begin);
    encode_group(m.spec, w + begin, n, group_params(m, row, g), &codes[begin]);
  }
  set_row_codes(m, row, codes.data());
}

}  // namespace

GroupParams fit_group_rtn(const QuantSpec& spec, const float* w, const float* importance, int64_t n,
                          const RtnOptions& opt) {
  GroupParams best = fit_group(spec, w, n, 1.0f);
  if (!opt.clip_search) return best;
  double best_err = group_sq_error(spec, w, importance, n, best);
  for (int k = 1; k <= opt.clip_grid; ++k) {
    const float c = 1.0f - static_cast<float>(k) * (1.0f - opt.clip_min) / opt.clip_grid;
    const GroupParams p = fit_group(spec, w, n, c);
    const double err = group_sq_error(spec, w, importance, n, p);
    if (err < best_err) {  // strict: ties keep the larger ratio
      best_err = err;
      best = p;
    }
  }
  return best;
}

QuantizedMatrix quantize_rtn(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                             const RtnOptions& opt) {
  check_inputs(w, rows, cols, spec, opt);
  if (!spec.quantized()) return store_plain(w, rows, cols, spec);
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  const int64_t groups = m.groups_per_row();
  std::vector<float> scales(spec.double_quant ? static_cast<size_t>(rows * groups) : 0);
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      fit_row(m, w + r * cols, r, opt, spec.double_quant ? &scales[r * groups] : nullptr);
  });
  if (spec.double_quant) set_double_quant_scales(m, scales.data());
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    std::vector<uint8_t> codes(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end; ++r) encode_row(m, w + r * cols, r, codes);
  });
  return m;
}

double relative_rmse(const float* a, const float* b, int64_t n) {
  double err = 0.0, ref = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    err += d * d;
    ref += static_cast<double>(a[i]) * a[i];
  }
  if (ref == 0.0) return err == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(err / ref);
}

}  // namespace lowbit
