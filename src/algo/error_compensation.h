// Low-rank compensation of a quantization error (LQER / EoRA, ZeroQuant-V2's LoRC): after W is
// quantized to Ŵ, a rank-r correction B·A [rows, cols] is fitted to the error E = W − Ŵ so that
// the layer computes (Ŵ + B·A)·x. With calibration statistics H = Σ x xᵀ of the layer's inputs
// the fit minimises the output error on those inputs,
//     ‖(E − B·A)·X‖²_F = tr((E − B·A)·H·(E − B·A)ᵀ),
// whose minimiser among rank-r matrices is, with H = L·Lᵀ (Cholesky), B·A = [E·L]_r·L⁻¹ where
// [·]_r is the truncated SVD (Eckart–Young in the metric of H): directions the inputs actually
// use get the rank, as EoRA's eigenspace projection does. H is damped by its mean diagonal,
// H + mean(diag H)·I: an equal mix of the activation metric and the plain Frobenius one, so
// that directions the calibration text barely visits still count (the fit inverts L, and a
// correction tuned to a near-empty direction of H is noise on other text). On ref-m, damping by
// 1 % (GPTQ's), 100 % and 10,000 % gave held-out KLD within ±8 % of each other with no
// consistent winner over three recipes (docs/BENCHMARKS.md); the middle one is the default.
// Without H the fit is the plain truncated SVD of E (minimum Frobenius error).
//
// The factors are in LoRA/PEFT orientation, B [rows, r] and A [r, cols]: B = U_r·D and
// A = D⁻¹·Σ_r·V_rᵀ·L⁻¹ with the diagonal D giving each column of B the RMS of the matching row of
// A, then rounded to fp16 (how .lowbit files store them), so the values returned are exactly
// what a reader applies. singular_values holds the leading `rank` of E·L (of E without H).
//
// Cost: for ranks below a quarter of min(rows, cols) (and matrices over 256 wide) the SVD is a
// randomized one (range finder with 16 extra columns and 4 power iterations, fixed seed; Halko,
// Martinsson & Tropp 2011), O(rows·cols·r); otherwise LAPACK's dgesdd. Plus the Cholesky factor
// (cols³/3) and two products with it, all in double.
#pragma once

#include <cstdint>

#include "algo/low_rank.h"

namespace lowbit {

// w, w_hat [rows, cols]; h [cols, cols] or null. Throws lowbit::Error("algo", ...) for a rank
// outside [1, min(rows, cols)] or a Cholesky/SVD failure.
LowRankFactors fit_error_correction(const float* w, const float* w_hat, int64_t rows, int64_t cols, const float* h,
                                    int64_t rank);

// y [rows, cols] += B·A (what a reader's weight is: Ŵ + B·A).
void add_correction(const LowRankFactors& f, float* y);

}  // namespace lowbit
