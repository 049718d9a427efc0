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

#include "formats/low_rank_factors.h"

namespace lowbit {

// m [rows, cols] row-major. Throws lowbit::Error("algo", ...) for a rank outside
// [1, min(rows, cols)] or when LAPACK does not converge.
LowRankFactors truncated_svd(const float* m, int64_t rows, int64_t cols, int64_t rank);

// The leading `rank` singular triplets of a double matrix: m ≈ U·diag(s)·Vᵀ.
struct PartialSvd {
  int64_t rank = 0, rows = 0, cols = 0;
  std::vector<double> u, s, vt;  // [rows, rank], [rank], [rank, cols]
};

// Exact (dgesdd) when `randomized` is false. Randomized: a Gaussian-free range finder (random
// ±1 test matrix from a fixed seed, rank + 16 columns, 4 power iterations with re-orthonormalised
// QR between products; Halko, Martinsson & Tropp 2011, algorithms 4.4 and 5.1), then the exact
// SVD of the small projected matrix: O(rows·cols·rank) instead of O(rows·cols·min(rows, cols)),
// and for matrices whose spectrum decays (quantization errors weighted by activations do) the
// leading triplets agree with the exact ones to a few digits. Deterministic. Throws like
// truncated_svd.
PartialSvd partial_svd(const double* m, int64_t rows, int64_t cols, int64_t rank, bool randomized);

}  // namespace lowbit
