// Row-major GEMM on the process's threads: C[m, n] = alpha · op(A)·op(B) + beta · C with
// op(X) = X or Xᵀ (ta / tb), lda/ldb/ldc the row strides as stored. OpenBLAS runs single-threaded
// inside lowbit (base/parallel.h), so big products are split here into fixed slices of 128 rows
// or columns (along the larger of m and n), each an independent single-threaded cblas call, spread
// over the threads; small ones (under ~64K multiply-adds, or at most 128 wide) run on the calling
// thread. The slices do not depend on the thread count, so results are bit-identical across runs
// and thread counts. Call from outside parallel_for (inside, use the single-threaded gemm_serial).
#pragma once

#include <cstdint>

namespace lowbit {

template <class Real>  // float or double
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Real alpha, const Real* a, int64_t lda, const Real* b,
          int64_t ldb, Real beta, Real* c, int64_t ldc);

template <class Real>
void gemm_serial(bool ta, bool tb, int64_t m, int64_t n, int64_t k, Real alpha, const Real* a, int64_t lda,
                 const Real* b, int64_t ldb, Real beta, Real* c, int64_t ldc);

}  // namespace lowbit
