// RTN: round-to-nearest quantization of a weight matrix, group by group, with an optional
// search over clipping ratios.
//
// Without clip_search each group takes fit_group(spec, w, n, 1) (formats/codec.h): the plain
// range fit of its kind. With clip_search each group tries the ratios
//   c_k = 1 - k * (1 - clip_min) / clip_grid,   k = 0 .. clip_grid   (1 first, clip_min last)
// and keeps the one with the smallest squared reconstruction error Σ imp[i] (w[i] - ŵ[i])²,
// computed against the scale exactly as it will be stored (fp16/bf16-rounded). Ties keep the
// larger ratio, so the error of every group is never above plain RTN's. For asymmetric Int the
// ratio shrinks both ends of the range jointly (lo·c, hi·c), as GPTQ's and AWQ's grids do.
// Double-quantized specs search with the fp32 scales; the matrix's scales are then
// double-quantized and the codes re-encoded against the decoded scales (so their error can
// differ from the searched one by the 8-bit scale rounding).
//
// `importance` [cols] weights the error per input channel, e.g. mean x² of the calibration
// activations (then the weighted error approximates the layer's output error).
#pragma once

#include <cstdint>

#include "formats/codec.h"
#include "formats/quantized_matrix.h"

namespace lowbit {

struct RtnOptions {
  bool clip_search = false;
  int clip_grid = 20;                 // number of steps between 1 and clip_min (>= 1)
  float clip_min = 0.5f;              // smallest ratio tried, in (0, 1]
  const float* importance = nullptr;  // [cols], >= 0, or nullptr for equal weights
};

// Quantizes w [rows, cols] (row-major; rows = output channels, groups run along a row) into
// `spec`; f32/f16/bf16 specs give plain storage. Multithreaded over rows (lowbit::parallel_for).
// Throws lowbit::Error("algo", ...) on bad options, an invalid spec, an empty shape or a
// non-finite weight.
QuantizedMatrix quantize_rtn(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec,
                             const RtnOptions& opt = {});

// The group parameters RTN picks for one group of n values (with the clip search when
// opt.clip_search). importance points at the group's own n weights (or nullptr); opt.importance
// is ignored here. For use by other algorithms (GPTQ's group starts, AWQ).
GroupParams fit_group_rtn(const QuantSpec& spec, const float* w, const float* importance, int64_t n,
                          const RtnOptions& opt);

// sqrt(Σ (a - b)² / Σ a²) over n values, accumulated in double: the error of b relative to the
// reference a. 0 when both are all zero; +inf when only a is.
double relative_rmse(const float* a, const float* b, int64_t n);

}  // namespace lowbit
