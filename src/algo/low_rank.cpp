#include "algo/low_rank.h"

#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace lowbit {

LowRankFactors truncated_svd(const float* m, int64_t rows, int64_t cols, int64_t rank) {
  const int64_t k = std::min(rows, cols);
  if (rank < 1 || rank > k)
    throw Error("algo", "low-rank approximation of rank " + std::to_string(rank) + " for a [" + std::to_string(rows) +
                            ", " + std::to_string(cols) + "] matrix");
  std::vector<double> work(m, m + rows * cols), s(static_cast<size_t>(k)), u(static_cast<size_t>(rows * k)),
      vt(static_cast<size_t>(k * cols));
  const lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', static_cast<lapack_int>(rows), static_cast<lapack_int>(cols),
                                         work.data(), static_cast<lapack_int>(cols), s.data(), u.data(),
                                         static_cast<lapack_int>(k), vt.data(), static_cast<lapack_int>(cols));
  if (info != 0) throw Error("algo", "SVD did not converge (LAPACK dgesdd info " + std::to_string(info) + ")");
  LowRankFactors f;
  f.rank = rank;
  f.rows = rows;
  f.cols = cols;
  f.b.resize(static_cast<size_t>(rows * rank));
  f.a.resize(static_cast<size_t>(rank * cols));
  for (int64_t j = 0; j < rank; ++j) {
    const double root = std::sqrt(s[j]);
    for (int64_t r = 0; r < rows; ++r) f.b[r * rank + j] = static_cast<float>(u[r * k + j] * root);
    for (int64_t c = 0; c < cols; ++c) f.a[j * cols + c] = static_cast<float>(vt[j * cols + c] * root);
  }
  f.singular_values = std::move(s);
  return f;
}

}  // namespace lowbit
