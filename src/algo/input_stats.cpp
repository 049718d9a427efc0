#include "algo/input_stats.h"

#include <cblas.h>

#include <cmath>

#include "base/error.h"

namespace lowbit {

InputStats::InputStats(int64_t dim)
    : dim_(dim), upper_(static_cast<size_t>(dim * dim), 0.0f), sum_abs_(dim, 0.0), sum_sq_(dim, 0.0), max_abs_(dim, 0.0f) {
  LOWBIT_ASSERT(dim >= 1);
}

void InputStats::add(const float* x, int64_t T) {
  if (T <= 0) return;
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(dim_), static_cast<int>(T), 1.0f, x,
              static_cast<int>(dim_), 1.0f, upper_.data(), static_cast<int>(dim_));
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x + t * dim_;
    for (int64_t i = 0; i < dim_; ++i) {
      const float a = std::fabs(row[i]);
      sum_abs_[i] += a;
      if (a > max_abs_[i] || std::isnan(a)) max_abs_[i] = a;  // a NaN sticks
      sum_sq_[i] += static_cast<double>(row[i]) * row[i];
    }
  }
  count_ += T;
}

std::vector<float> InputStats::hessian() const {
  std::vector<float> h(upper_);
  for (int64_t i = 0; i < dim_; ++i)
    for (int64_t j = 0; j < i; ++j) h[i * dim_ + j] = h[j * dim_ + i];
  return h;
}

std::vector<float> InputStats::hessian_diagonal() const {
  std::vector<float> d(dim_);
  for (int64_t i = 0; i < dim_; ++i) d[i] = upper_[i * dim_ + i];
  return d;
}

std::vector<float> InputStats::mean_abs() const {
  std::vector<float> m(dim_, 0.0f);
  if (count_ == 0) return m;
  for (int64_t i = 0; i < dim_; ++i) m[i] = static_cast<float>(sum_abs_[i] / static_cast<double>(count_));
  return m;
}

std::vector<float> InputStats::max_abs() const { return max_abs_; }

std::vector<float> InputStats::mean_sq() const {
  std::vector<float> m(dim_, 0.0f);
  if (count_ == 0) return m;
  for (int64_t i = 0; i < dim_; ++i) m[i] = static_cast<float>(sum_sq_[i] / static_cast<double>(count_));
  return m;
}

}  // namespace lowbit
