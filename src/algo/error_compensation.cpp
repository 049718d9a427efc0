#include "algo/error_compensation.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/gemm.h"
#include "base/half.h"

namespace lowbit {

namespace {

constexpr double kDamp = 1.0;             // of H's mean diagonal (see the header)
constexpr int64_t kRandomizedMinDim = 256;  // smaller matrices: exact SVD (cheap anyway)

float round_f16(double v) { return f16_to_f32(f32_to_f16(static_cast<float>(v))); }

// The lower Cholesky factor L of h + damp·I [n, n] (upper triangle zeroed), or empty when h is
// all zero (no inputs: nothing to weight by).
std::vector<double> damped_cholesky(const float* h, int64_t n) {
  double mean_diag = 0;
  for (int64_t i = 0; i < n; ++i) mean_diag += h[i * n + i];
  mean_diag /= static_cast<double>(n);
  if (!(mean_diag > 0)) return {};
  std::vector<double> l(h, h + n * n);
  for (int64_t i = 0; i < n; ++i) l[i * n + i] += kDamp * mean_diag;
  const lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', static_cast<lapack_int>(n), l.data(), static_cast<lapack_int>(n));
  if (info != 0)
    throw Error("algo", "error correction: the damped input statistics are not positive definite (LAPACK dpotrf info " +
                            std::to_string(info) + ")");
  for (int64_t i = 0; i < n; ++i) std::fill(l.begin() + i * n + i + 1, l.begin() + (i + 1) * n, 0.0);
  return l;
}

}  // namespace

LowRankFactors fit_error_correction(const float* w, const float* w_hat, int64_t rows, int64_t cols, const float* h,
                                    int64_t rank) {
  if (rank < 1 || rank > std::min(rows, cols))
    throw Error("algo", "error correction of rank " + std::to_string(rank) + " for a [" + std::to_string(rows) + ", " +
                            std::to_string(cols) + "] matrix (rank must be in [1, " +
                            std::to_string(std::min(rows, cols)) + "])");
  std::vector<double> e(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) e[i] = static_cast<double>(w[i]) - static_cast<double>(w_hat[i]);
  const std::vector<double> l = h ? damped_cholesky(h, cols) : std::vector<double>{};
  if (!l.empty()) {  // E·L: the error in the metric of the inputs
    std::vector<double> el(e.size());
    gemm<double>(false, false, rows, cols, cols, 1.0, e.data(), cols, l.data(), cols, 0.0, el.data(), cols);
    e.swap(el);
  }
  const bool randomized = std::min(rows, cols) > kRandomizedMinDim && 4 * rank < std::min(rows, cols);
  PartialSvd svd = partial_svd(e.data(), rows, cols, rank, randomized);
  std::vector<double> a(static_cast<size_t>(rank * cols));  // Σ·Vᵀ, then ·L⁻¹ (B = U for now)
  for (int64_t j = 0; j < rank; ++j)
    for (int64_t c = 0; c < cols; ++c) a[j * cols + c] = svd.s[j] * svd.vt[j * cols + c];
  if (!l.empty())  // A·L = A' solved for A
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, static_cast<int>(rank),
                static_cast<int>(cols), 1.0, l.data(), static_cast<int>(cols), a.data(), static_cast<int>(cols));
  // Column j of B is u_j·β_j and row j of A is a_j / β_j·..., with β_j chosen so both have the
  // same RMS (the product is unchanged): fp16 keeps the most digits when neither factor is
  // tiny or huge, whatever the scale of the inputs.
  std::vector<double> beta(static_cast<size_t>(rank));
  for (int64_t j = 0; j < rank; ++j) {
    double a2 = 0;
    for (int64_t c = 0; c < cols; ++c) a2 += a[j * cols + c] * a[j * cols + c];
    const double a_rms = std::sqrt(a2 / static_cast<double>(cols)), u_rms = 1.0 / std::sqrt(static_cast<double>(rows));
    beta[j] = a_rms > 0 ? std::sqrt(a_rms / u_rms) : 0.0;  // B's column RMS = A's row RMS = √(a_rms·u_rms)
    for (int64_t c = 0; c < cols; ++c) a[j * cols + c] = beta[j] > 0 ? a[j * cols + c] / beta[j] : 0.0;
  }
  LowRankFactors f;
  f.rank = rank, f.rows = rows, f.cols = cols;
  f.b.resize(static_cast<size_t>(rows * rank));
  f.a.resize(a.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < rank; ++j) f.b[r * rank + j] = round_f16(svd.u[r * rank + j] * beta[j]);
  for (size_t i = 0; i < a.size(); ++i) f.a[i] = round_f16(a[i]);
  for (const float v : f.a)
    if (!std::isfinite(v)) throw Error("algo", "error correction: a factor exceeds fp16's range");
  for (const float v : f.b)
    if (!std::isfinite(v)) throw Error("algo", "error correction: a factor exceeds fp16's range");
  f.singular_values = std::move(svd.s);
  return f;
}

void add_correction(const LowRankFactors& f, float* y) {
  gemm<float>(false, false, f.rows, f.cols, f.rank, 1.0f, f.b.data(), f.rank, f.a.data(), f.cols, 1.0f, y, f.cols);
}

}  // namespace lowbit
