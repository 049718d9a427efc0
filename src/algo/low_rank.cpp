#include "algo/low_rank.h"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"
#include "base/gemm.h"
#include "base/splitmix.h"

namespace lowbit {

namespace {

void check_rank(int64_t rows, int64_t cols, int64_t rank) {
  if (rank < 1 || rank > std::min(rows, cols))
    throw Error("algo", "low-rank approximation of rank " + std::to_string(rank) + " for a [" + std::to_string(rows) +
                            ", " + std::to_string(cols) + "] matrix");
}

// Full thin SVD of a [rows, cols] double matrix (overwritten): u [rows, k], s [k], vt [k, cols].
void thin_svd(std::vector<double>& work, int64_t rows, int64_t cols, std::vector<double>& u, std::vector<double>& s,
              std::vector<double>& vt) {
  const int64_t k = std::min(rows, cols);
  s.resize(static_cast<size_t>(k));
  u.resize(static_cast<size_t>(rows * k));
  vt.resize(static_cast<size_t>(k * cols));
  const lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', static_cast<lapack_int>(rows), static_cast<lapack_int>(cols),
                                         work.data(), static_cast<lapack_int>(cols), s.data(), u.data(),
                                         static_cast<lapack_int>(k), vt.data(), static_cast<lapack_int>(cols));
  if (info != 0) throw Error("algo", "SVD did not converge (LAPACK dgesdd info " + std::to_string(info) + ")");
}

// The leading `rank` triplets of a thin SVD u [rows, k], s [k], vt [k, cols].
PartialSvd leading(const std::vector<double>& u, const std::vector<double>& s, const std::vector<double>& vt,
                   int64_t rows, int64_t cols, int64_t rank) {
  const int64_t k = static_cast<int64_t>(s.size());
  PartialSvd out;
  out.rank = rank, out.rows = rows, out.cols = cols;
  out.u.resize(static_cast<size_t>(rows * rank));
  for (int64_t r = 0; r < rows; ++r) std::copy_n(&u[r * k], rank, &out.u[r * rank]);
  out.s.assign(s.begin(), s.begin() + rank);
  out.vt.assign(vt.begin(), vt.begin() + rank * cols);
  return out;
}

// Replaces y [n, k] (n >= k) by an orthonormal basis of its column space (Householder QR).
void orthonormalize(std::vector<double>& y, int64_t n, int64_t k) {
  std::vector<double> tau(static_cast<size_t>(k));
  lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(k), y.data(),
                                   static_cast<lapack_int>(k), tau.data());
  if (info == 0)
    info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, static_cast<lapack_int>(n), static_cast<lapack_int>(k),
                          static_cast<lapack_int>(k), y.data(), static_cast<lapack_int>(k), tau.data());
  if (info != 0) throw Error("algo", "QR failed in the randomized SVD (LAPACK info " + std::to_string(info) + ")");
}

PartialSvd randomized_svd(const double* m, int64_t rows, int64_t cols, int64_t rank) {
  constexpr int64_t kOversample = 16;
  constexpr int kPowerIterations = 4;
  const int64_t k = std::min(rank + kOversample, std::min(rows, cols));
  std::vector<double> omega(static_cast<size_t>(cols * k));
  uint64_t state = 0x5eed'1234'abcdULL;
  for (double& v : omega) v = (splitmix64(state++) >> 63) ? 1.0 : -1.0;
  std::vector<double> y(static_cast<size_t>(rows * k)), z(static_cast<size_t>(cols * k));
  gemm<double>(false, false, rows, k, cols, 1.0, m, cols, omega.data(), k, 0.0, y.data(), k);  // Y = M·Ω
  orthonormalize(y, rows, k);
  for (int it = 0; it < kPowerIterations; ++it) {
    gemm<double>(true, false, cols, k, rows, 1.0, m, cols, y.data(), k, 0.0, z.data(), k);  // Z = Mᵀ·Y
    orthonormalize(z, cols, k);
    gemm<double>(false, false, rows, k, cols, 1.0, m, cols, z.data(), k, 0.0, y.data(), k);  // Y = M·Z
    orthonormalize(y, rows, k);
  }
  std::vector<double> small(static_cast<size_t>(k * cols));  // Yᵀ·M [k, cols]
  gemm<double>(true, false, k, cols, rows, 1.0, y.data(), k, m, cols, 0.0, small.data(), cols);
  std::vector<double> us, s, vt;
  thin_svd(small, k, cols, us, s, vt);  // us [k, k]
  std::vector<double> u(static_cast<size_t>(rows * k));
  gemm<double>(false, false, rows, k, k, 1.0, y.data(), k, us.data(), k, 0.0, u.data(), k);  // U = Y·Ũ
  return leading(u, s, vt, rows, cols, rank);
}

}  // namespace

PartialSvd partial_svd(const double* m, int64_t rows, int64_t cols, int64_t rank, bool randomized) {
  check_rank(rows, cols, rank);
  if (randomized) return randomized_svd(m, rows, cols, rank);
  std::vector<double> work(m, m + rows * cols), u, s, vt;
  thin_svd(work, rows, cols, u, s, vt);
  return leading(u, s, vt, rows, cols, rank);
}

LowRankFactors truncated_svd(const float* m, int64_t rows, int64_t cols, int64_t rank) {
  check_rank(rows, cols, rank);
  std::vector<double> work(m, m + rows * cols), u, s, vt;
  thin_svd(work, rows, cols, u, s, vt);
  const PartialSvd p = leading(u, s, vt, rows, cols, rank);
  LowRankFactors f;
  f.rank = rank;
  f.rows = rows;
  f.cols = cols;
  f.b.resize(static_cast<size_t>(rows * rank));
  f.a.resize(static_cast<size_t>(rank * cols));
  for (int64_t j = 0; j < rank; ++j) {
    const double root = std::sqrt(p.s[j]);
    for (int64_t r = 0; r < rows; ++r) f.b[r * rank + j] = static_cast<float>(p.u[r * rank + j] * root);
    for (int64_t c = 0; c < cols; ++c) f.a[j * cols + c] = static_cast<float>(p.vt[j * cols + c] * root);
  }
  f.singular_values = std::move(s);
  return f;
}

}  // namespace lowbit
