#include "kernels/rotation.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "base/error.h"
#include "base/parallel.h"

namespace lowbit {

namespace {

// Standard normal deviates by Box–Muller in double (std::normal_distribution's algorithm is
// implementation-defined; this keeps matrices identical across standard libraries).
double gaussian(std::mt19937_64& rng) {
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  double u1 = 0;
  while (u1 <= 0) u1 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

// A Haar-random orthogonal m×m matrix (row-major): Gram–Schmidt (two passes, in double) on the
// columns of a Gaussian matrix; the positive diagonal of the implied R makes it Haar.
std::vector<double> haar_orthogonal(int64_t m, std::mt19937_64& rng) {
  std::vector<double> col(static_cast<size_t>(m * m));  // column-major: col[j*m + i]
  for (double& v : col) v = gaussian(rng);
  for (int64_t j = 0; j < m; ++j) {
    double* cj = &col[j * m];
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t k = 0; k < j; ++k) {
        const double* ck = &col[k * m];
        double dot = 0;
        for (int64_t i = 0; i < m; ++i) dot += ck[i] * cj[i];
        for (int64_t i = 0; i < m; ++i) cj[i] -= dot * ck[i];
      }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += cj[i] * cj[i];
    norm = std::sqrt(norm);
    LOWBIT_ASSERT(norm > 0);
    for (int64_t i = 0; i < m; ++i) cj[i] /= norm;
  }
  std::vector<double> q(static_cast<size_t>(m * m));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) q[i * m + j] = col[j * m + i];
  return q;
}

}  // namespace

void walsh_hadamard(double* x, int64_t p, int64_t stride) {
  for (int64_t h = 1; h < p; h *= 2)
    for (int64_t i = 0; i < p; i += 2 * h)
      for (int64_t j = i; j < i + h; ++j) {
        const double a = x[j * stride], b = x[(j + h) * stride];
        x[j * stride] = a + b;
        x[(j + h) * stride] = a - b;
      }
}

Rotation Rotation::random_hadamard(int64_t n, uint64_t seed) {
  if (n < 1) throw Error("rotation", "size must be >= 1, got " + std::to_string(n));
  Rotation r;
  r.n_ = n;
  r.p_ = n & -n;  // largest power of two dividing n
  r.m_ = n / r.p_;
  std::mt19937_64 rng(seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(n)));
  r.signs_.resize(static_cast<size_t>(n));
  for (double& s : r.signs_) s = (rng() >> 63) ? -1.0 : 1.0;
  r.r_ = r.m_ == 1 ? std::vector<double>{1.0} : haar_orthogonal(r.m_, rng);
  r.signs_f_.assign(r.signs_.begin(), r.signs_.end());
  r.r_f_.assign(r.r_.begin(), r.r_.end());
  return r;
}

void Rotation::rotate_row(double* x, bool transposed) const {
  if (!transposed)
    for (int64_t i = 0; i < n_; ++i) x[i] *= signs_[i];
  if (m_ > 1) {
    std::vector<double> y(static_cast<size_t>(m_));
    for (int64_t a = 0; a < p_; ++a) {
      double* xa = x + a * m_;
      for (int64_t c = 0; c < m_; ++c) {
        double acc = 0;
        // x·R: y[c] = Σ_b x[b] R[b, c];  x·Rᵀ: y[c] = Σ_b x[b] R[c, b]
        if (transposed)
          for (int64_t b = 0; b < m_; ++b) acc += xa[b] * r_[c * m_ + b];
        else
          for (int64_t b = 0; b < m_; ++b) acc += xa[b] * r_[b * m_ + c];
        y[c] = acc;
      }
      for (int64_t c = 0; c < m_; ++c) xa[c] = y[c];
    }
  }
  for (int64_t b = 0; b < m_; ++b) walsh_hadamard(x + b, p_, m_);
  const double scale = 1.0 / std::sqrt(static_cast<double>(p_));
  for (int64_t i = 0; i < n_; ++i) x[i] *= transposed ? scale * signs_[i] : scale;
}

void Rotation::rotate_rows(float* rows, int64_t n_rows, bool transposed) const {
  parallel_for(n_rows, [&](int64_t lo, int64_t hi) {
    std::vector<double> x(static_cast<size_t>(n_));
    for (int64_t r = lo; r < hi; ++r) {
      float* row = rows + r * n_;
      for (int64_t i = 0; i < n_; ++i) x[i] = row[i];
      rotate_row(x.data(), transposed);
      for (int64_t i = 0; i < n_; ++i) row[i] = static_cast<float>(x[i]);
    }
  });
}

void Rotation::apply_right(float* rows, int64_t n_rows) const { rotate_rows(rows, n_rows, false); }

void Rotation::apply_right_transposed(float* rows, int64_t n_rows) const { rotate_rows(rows, n_rows, true); }

void Rotation::apply_right_f32(float* rows, int64_t n_rows, float* scratch) const {
  LOWBIT_ASSERT(m_ == 1 || scratch != nullptr);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p_)));
  parallel_for(n_rows, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      float* x = rows + r * n_;
      for (int64_t i = 0; i < n_; ++i) x[i] *= signs_f_[i];
    }
  });
  if (m_ > 1) {  // every row's [p, m] blocks times R: one [n_rows·p, m] x [m, m] product
    const int M = static_cast<int>(n_rows * p_), m = static_cast<int>(m_);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, m, m, 1.0f, rows, m, r_f_.data(), m, 0.0f, scratch, m);
    std::copy(scratch, scratch + n_rows * n_, rows);
  }
  parallel_for(n_rows, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      float* x = rows + r * n_;
      for (int64_t h = 1; h < p_; h *= 2)
        for (int64_t i = 0; i < p_; i += 2 * h)
          for (int64_t j = i; j < i + h; ++j) {
            float* a = x + j * m_;
            float* b = x + (j + h) * m_;
            for (int64_t k = 0; k < m_; ++k) {
              const float u = a[k], v = b[k];
              a[k] = u + v;
              b[k] = u - v;
            }
          }
      for (int64_t i = 0; i < n_; ++i) x[i] *= scale;
    }
  });
}

void Rotation::apply_left_transposed(float* mat, int64_t cols) const {
  // (Qᵀ M)ᵀ = Mᵀ Q: rotate the rows of the transpose.
  std::vector<float> t(static_cast<size_t>(n_ * cols));
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t c = 0; c < cols; ++c) t[c * n_ + i] = mat[i * cols + c];
  apply_right(t.data(), cols);
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t c = 0; c < cols; ++c) mat[i * cols + c] = t[c * n_ + i];
}

std::vector<double> Rotation::dense() const {
  std::vector<double> q(static_cast<size_t>(n_ * n_), 0.0);
  for (int64_t i = 0; i < n_; ++i) {  // row i of Q = e_i · Q
    double* row = &q[i * n_];
    row[i] = 1.0;
    rotate_row(row, false);
  }
  return q;
}

}  // namespace lowbit
