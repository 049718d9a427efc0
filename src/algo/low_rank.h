// Best rank-r approximation of a matrix (Eckart–Young: the truncated SVD), split into two factors
// the way LoRA stores a low-rank update: M ≈ B·A with B = U_r·√Σ_r [rows, r] and
// A = √Σ_r·V_rᵀ [r, cols]. For LoftQ-style adapter initialisation (train/loftq.h) and low-rank
// error compensation.
//
// Numerics: the SVD runs in double (LAPACK dgesdd) on a double copy of M; the factors are rounded
// to fp32 at the end. Cost O(rows·cols·min(rows, cols)) and 8·rows·cols bytes of scratch (plus
// U and Vᵀ of min(rows, cols) columns): seconds for 4096 × 11008.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

struct LowRankFactors {
  int64_t rank = 0, rows = 0, cols = 0;
  std::vector<float> b;  // [rows, rank]
  std::vector<float> a;  // [rank, cols]
  std::vector<double> singular_values;  // all min(rows, cols) of them, descending
};

// m [rows, cols] row-major. Throws lowbit::Error("algo", ...) for a rank outside
// [1, min(rows, cols)] or when LAPACK does not converge.
LowRankFactors truncated_svd(const float* m, int64_t rows, int64_t cols, int64_t rank);

}  // namespace lowbit
