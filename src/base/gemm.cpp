#include "base/gemm.h"

#include <cblas.h>

#include <algorithm>

#include "base/parallel.h"

namespace lowbit {

namespace {

CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, tr(ta), tr(tb), static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void blas(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, tr(ta), tr(tb), static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

}  // namespace

template <class Real>
void gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Real alpha, const Real* a, int64_t lda,
                 const Real* b, int64_t ldb, Real beta, Real* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Slices are a fixed 128 rows (or columns) wide whatever the thread count, so every BLAS call
// has the same shape on 1, 2 or 3 threads and the result is bit-identical across thread counts
// (OpenBLAS picks kernels and blocking by size, so slicing per thread changed the last bits).
constexpr int64_t kSlice = 128;

template <class Real>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Real alpha, const Real* a, int64_t lda, const Real* b,
          int64_t ldb, Real beta, Real* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (m * n * k < (int64_t{1} << 16) || std::max(m, n) <= kSlice) {
    blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool by_rows = m >= n;  // slices of op(A)'s rows, else of op(B)'s columns
  const int64_t len = by_rows ? m : n, slices = (len + kSlice - 1) / kSlice;
  parallel_for(slices, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t i0 = s * kSlice, w = std::min(kSlice, len - i0);
      if (by_rows)
        blas(ta, tb, w, n, k, alpha, ta ? a + i0 : a + i0 * lda, lda, b, ldb, beta, c + i0 * ldc, ldc);
      else
        blas(ta, tb, m, w, k, alpha, a, lda, tb ? b + i0 * ldb : b + i0, ldb, beta, c + i0, ldc);
    }
  });
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t);
template void gemm_serial<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                 int64_t, float, float*, int64_t);
template void gemm_serial<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                  const double*, int64_t, double, double*, int64_t);

}  // namespace lowbit
