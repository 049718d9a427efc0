// SmoothQuant (Xiao et al. 2023): per-input-channel scales that move the activations' outlier
// magnitude into the weights, so that a per-token int8 (or lower) activation grid loses less.
//
// For the linears W_i [rows_i, cols] that read the same input x [cols], with
//   a_c = max over the calibration tokens of |x_c|,   w_c = max over all rows of all W_i of |W_ic|,
// the scale of channel c is
//   s_c = a_c^alpha / w_c^(1 - alpha)                  (alpha in (0, 1]; the paper's default 0.5)
// and the layer is rewritten x -> x / s, W_i -> W_i·diag(s): the float function is unchanged
// (the 1/s goes into whatever produced x: a norm weight or the predecessor linear's output rows,
// algo/awq.h's fold helpers), and after it channel c's activation maximum is a_c^(1-alpha)·w_c^alpha,
// the same as its weights' column maximum: alpha = 0.5 equalises them. A channel with a_c = 0 or
// w_c = 0 (dead, or never seen) keeps s_c = 1; the scales are finite and > 0 otherwise
// (computed in double, each factor floored at 1e-5 as the reference implementation clamps).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

struct SmoothLinearRef {
  const float* w = nullptr;  // [rows, cols] row-major fp32
  int64_t rows = 0;
};

// Throws lowbit::Error("algo", ...) on an empty list, a null pointer, rows < 1, cols < 1,
// alpha outside (0, 1], or a non-finite or negative x_max_abs.
std::vector<float> smooth_scales(std::span<const SmoothLinearRef> linears, int64_t cols,
                                 const float* x_max_abs, double alpha);

// The two steps of smooth_scales, for callers that tie channels together first (o_proj under
// grouped-query attention: the query heads that read one key/value head share its channels):
// w_c = max over every row of every linear of |W_ic| [cols], and the scales from the maxima
// a_c = x_max_abs[c], w_c = w_max_abs[c] (n of each). Same errors as smooth_scales.
std::vector<float> column_max_abs(std::span<const SmoothLinearRef> linears, int64_t cols);
std::vector<float> smooth_scales_from_maxima(const float* x_max_abs, const float* w_max_abs, int64_t n,
                                             double alpha);

}  // namespace lowbit
