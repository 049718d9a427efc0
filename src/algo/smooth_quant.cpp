#include "algo/smooth_quant.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace lowbit {

std::vector<float> column_max_abs(std::span<const SmoothLinearRef> linears, int64_t cols) {
  if (linears.empty()) throw Error("algo", "smooth_scales: no linears");
  if (cols < 1) throw Error("algo", "smooth_scales: empty input");
  std::vector<float> w_max(static_cast<size_t>(cols), 0.0f);
  for (const SmoothLinearRef& l : linears) {
    if (l.w == nullptr || l.rows < 1) throw Error("algo", "smooth_scales: empty linear");
    for (int64_t r = 0; r < l.rows; ++r) {
      const float* row = l.w + r * cols;
      for (int64_t c = 0; c < cols; ++c) w_max[c] = std::max(w_max[c], std::fabs(row[c]));
    }
  }
  return w_max;
}

std::vector<float> smooth_scales_from_maxima(const float* x_max_abs, const float* w_max_abs, int64_t n,
                                             double alpha) {
  if (n < 1 || x_max_abs == nullptr || w_max_abs == nullptr) throw Error("algo", "smooth_scales: empty input");
  if (!(alpha > 0.0 && alpha <= 1.0)) throw Error("algo", "smooth_scales: alpha must be in (0, 1]");
  constexpr double kFloor = 1e-5;
  std::vector<float> s(static_cast<size_t>(n), 1.0f);
  for (int64_t c = 0; c < n; ++c) {
    const double a = x_max_abs[c], w = w_max_abs[c];
    if (!std::isfinite(a) || a < 0) throw Error("algo", "smooth_scales: activation maxima must be finite and >= 0");
    if (a == 0 || w == 0 || !std::isfinite(w)) continue;
    const double v = std::pow(std::max(a, kFloor), alpha) / std::pow(std::max(w, kFloor), 1.0 - alpha);
    if (std::isfinite(v) && v > 0) s[c] = static_cast<float>(v);
  }
  return s;
}

std::vector<float> smooth_scales(std::span<const SmoothLinearRef> linears, int64_t cols,
                                 const float* x_max_abs, double alpha) {
  const std::vector<float> w_max = column_max_abs(linears, cols);
  return smooth_scales_from_maxima(x_max_abs, w_max.data(), cols, alpha);
}

}  // namespace lowbit
