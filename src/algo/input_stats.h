// Statistics of one linear layer's inputs over calibration tokens, as the calibrated quantizers
// use them: H = Σ_t x_t x_tᵀ (GPTQ's Hessian up to a factor 2, AWQ's output-error metric) and the
// per-channel mean |x| and mean x² (AWQ's salience, activation-weighted RTN's importance) and
// max |x| (SmoothQuant's migration scales).
//
// Numerics: H accumulates in fp32 through BLAS ssyrk, one call per add() (so a window of a few
// hundred tokens is summed at BLAS precision, windows are summed in fp32); the per-channel sums
// accumulate in double.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

class InputStats {
 public:
  explicit InputStats(int64_t dim);

  // Adds the T input rows x[T, dim].
  void add(const float* x, int64_t T);

  int64_t dim() const { return dim_; }
  int64_t count() const { return count_; }
  // Σ x xᵀ [dim, dim], both triangles filled.
  std::vector<float> hessian() const;
  std::vector<float> hessian_diagonal() const;
  std::vector<float> mean_abs() const;  // [dim]
  std::vector<float> mean_sq() const;   // [dim]
  std::vector<float> max_abs() const;   // [dim]; 0 before any add; NaN where an input was NaN

 private:
  int64_t dim_, count_ = 0;
  std::vector<float> upper_;  // the upper triangle of Σ x xᵀ (row-major [dim, dim])
  std::vector<double> sum_abs_, sum_sq_;
  std::vector<float> max_abs_;
};

}  // namespace lowbit
