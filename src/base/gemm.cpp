#include "base/gemm.h"

#include <cblas.h>

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

template <class Real>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Real alpha, const Real* a, int64_t lda, const Real* b,
          int64_t ldb, Real beta, Real* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const int threads = num_threads();
  if (threads == 1 || m * n * k < (int64_t{1} << 16)) {
    blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (m >= n) {  // slices of op(A)'s rows: A's rows, or A's columns when transposed
    parallel_for(m, [&](int64_t m0, int64_t m1) {
      blas(ta, tb, m1 - m0, n, k, alpha, ta ? a + m0 : a + m0 * lda, lda, b, ldb, beta, c + m0 * ldc, ldc);
    });
  } else {  // slices of op(B)'s columns: B's columns, or B's rows when transposed
    parallel_for(n, [&](int64_t n0, int64_t n1) {
      blas(ta, tb, m, n1 - n0, k, alpha, a, lda, tb ? b + n0 * ldb : b + n0, ldb, beta, c + n0, ldc);
    });
  }
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
