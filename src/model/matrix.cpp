#include "model/matrix.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "base/parallel.h"

namespace lowbit {

Matrix matrix_from(const TensorView& t) {
  Matrix m;
  if (t.shape.size() == 1) {
    m.rows = 1;
    m.cols = t.shape[0];
  } else if (t.shape.size() == 2) {
    m.rows = t.shape[0];
    m.cols = t.shape[1];
  } else {
    throw Error("model", "tensor '" + t.name + "' is not 1-D or 2-D");
  }
  const bool aligned = reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0;
  if (t.dtype == DType::F32 && aligned && t.nbytes == static_cast<size_t>(m.rows * m.cols) * 4) {
    m.data = reinterpret_cast<const float*>(t.data);
  } else {
    m.owned = to_f32(t);
    m.data = m.owned.data();
  }
  return m;
}

namespace {

// Dot product of two fp32 rows with 4 independent AVX2 FMA accumulators; the tail is scalar.
float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8)
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float sum = _mm_cvtss_f32(s);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace

void matmul(const float* x, int64_t T, const Matrix& w, const float* bias, float* y) {
  const int64_t n_out = w.rows, n_in = w.cols;
  if (T <= kRowDotMaxRows) {
    // Every output is one dot_f32, whatever T: a row of a small batch (a server's decode step)
    // gets the same bits as when it is multiplied alone. Threads take blocks of W's rows and
    // run all T inputs over each block while it is in cache.
    constexpr int64_t kRowBlock = 16;
    const int64_t blocks = (n_out + kRowBlock - 1) / kRowBlock;
    parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t r0 = b0 * kRowBlock; r0 < std::min(n_out, b1 * kRowBlock); r0 += kRowBlock) {
        const int64_t r1 = std::min(n_out, r0 + kRowBlock);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t r = r0; r < r1; ++r)
            y[t * n_out + r] = dot_f32(x + t * n_in, w.row(r), n_in) + (bias ? bias[r] : 0.f);
      }
    });
    return;
  }
  // Each thread multiplies all of X by its blocks of 64 of W's rows (columns of Y), one
  // single-threaded sgemm per block: the calls have the same shapes whatever the thread count,
  // so the result is bit-identical across thread counts (OpenBLAS picks kernels by size).
  constexpr int64_t kRowBlock = 64;
  const int64_t blocks = (n_out + kRowBlock - 1) / kRowBlock;
  parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kRowBlock, r1 = std::min(n_out, r0 + kRowBlock);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T),
                  static_cast<int>(r1 - r0), static_cast<int>(n_in), 1.0f, x, static_cast<int>(n_in),
                  w.row(r0), static_cast<int>(n_in), 0.0f, y + r0, static_cast<int>(n_out));
      if (bias)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t r = r0; r < r1; ++r) y[t * n_out + r] += bias[r];
    }
  });
}

}  // namespace lowbit
