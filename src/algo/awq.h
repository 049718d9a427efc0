// AWQ: activation-aware weight quantization (Lin et al. 2023, as AutoAWQ implements it), on
// plain matrices plus input statistics.
//
// For a group of linear layers W_i [rows_i, cols] that read the same input x [cols] (q/k/v after
// the attention norm, gate/up after the FFN norm, o_proj or down_proj alone), AWQ picks one
// positive scale s_c per input channel, folds it into the weights (W_i <- W_i·diag(s), column c
// times s_c) and its inverse into whatever produced x (the norm weight or the predecessor
// linear's output row c divided by s_c), so the float model is unchanged, and then quantizes the
// scaled weights. Salient channels (large mean |x|) get s_c > 1: their weights use more of the
// quantization grid, and their error reaches the output divided by s_c.
//
// Search (awq_search_scales). Candidates, in this order:
//   alpha = k / grid, k = 0 .. grid-1:
//     t_c = max(mean|x_c|^alpha, 1e-4)                      (duo_scaling: see AwqOptions)
//     s_c = t_c / sqrt(max_c t · min_c t)                    (AutoAWQ's normalization)
//   alpha = 0 gives s = 1 exactly, i.e. plain RTN.
// Each candidate quantizes every W_i·diag(s) with quantize_rtn (no clip search; the spec's own
// double quantization included), unscales Ŵ_i = deq(Q(W_i·diag(s)))·diag(1/s) and scores
//   loss(s) = Σ_i tr((W_i - Ŵ_i) H (W_i - Ŵ_i)ᵀ),   H = Σ_t x_t x_tᵀ,
// the squared error of the linears' outputs summed over the calibration tokens (fp32 BLAS gemm of
// ΔW with H, row dot products accumulated in double). The smallest loss wins; ties keep the
// earlier candidate, so s = 1 wins unless scaling strictly helps: loss_best <= loss_plain.
//
// Row sampling (AwqOptions::max_rows). One candidate costs 2·rows·cols² flops; RTN quantizes
// every row independently, so the loss is a sum of per-row terms, and the search scores each
// linear on at most max_rows evenly spaced rows (the same rows for every candidate), scaled by
// rows_i / m_i to estimate the full matrix's loss. loss_plain / loss_best are these estimates
// (exact when max_rows = 0 or >= rows_i). The sampled rows of all linears are quantized together
// as one matrix (up to 1024 rows at a time); RTN treats rows independently, so this is exact
// except for double-quantized specs, whose 8-bit scale blocks then differ slightly from the
// final matrices'.
//
// Quantization (awq_quantize): quantize_rtn of the scaled weight with the clip search weighted by
// importance_c = H_cc / s_c², the mean square (up to the token count) of the scaled input x_c/s_c,
// so each group's clip ratio minimizes its share of the diagonal output error.
//
// Threads: the gemms run in lowbit::parallel_for slices over the columns of H (OpenBLAS
// single-threaded inside them, see base/parallel.h), the quantization in quantize_rtn's. Results
// do not depend on the thread count. Cost: the 20 candidates of a 7B q/k/v group (3 x 4096 x
// 4096) take ~5 s on 2 cores with the default max_rows; down_proj (cols 11008) ~12 s.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/quant_spec.h"
#include "formats/quantized_matrix.h"

namespace lowbit {

struct AwqOptions {
  int grid = 20;           // alpha in {0, 1/grid, ..., (grid-1)/grid} (AutoAWQ's n_grid); >= 1
  int64_t max_rows = 256;  // rows per linear scored in the search (evenly spaced); 0 = all
  // AutoAWQ's duo_scaling: t_c = max(mean|x_c|^alpha / (w_mean_c^(1-alpha) + 1e-4), 1e-4), where
  // w_mean_c is the mean over all rows of all linears of |w| / (its group's max |w| + 1e-6) in
  // column c (groups of spec.group_len(cols)). alpha = 0 is then not s = 1, so s = 1 is scored
  // first as an extra candidate (result alpha 0, scaled false).
  bool duo_scaling = false;
  // awq_quantize: per-group clip search (quantize_rtn) over the ratios
  // 1 - k·max_shrink/clip_grid, k = 0..clip_grid (AutoAWQ: max_shrink 0.5, in 20 steps of which
  // it tries the first 10; here all 21 down to 1 - max_shrink).
  bool clip_search = true;
  float max_shrink = 0.5f;  // in [0, 1)
  int clip_grid = 20;       // >= 1
};

// One linear layer of the group: weight w [rows, cols] row-major fp32, unscaled.
struct AwqLinearRef {
  const float* w = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;  // optional check: when != 0 it must equal the search's cols
};

struct AwqSearchResult {
  std::vector<float> scales;  // [cols], > 0, finite: fold as W·diag(s) and predecessor / s
  double alpha = 0;           // the winning exponent (0 with scales all 1 when RTN won)
  bool scaled = false;        // false when s = 1 (plain RTN) won
  double loss_plain = 0;      // loss of s = 1 (estimate when rows were sampled)
  double loss_best = 0;       // loss of the returned scales, <= loss_plain
};

// Searches the per-input-channel scales for the linears sharing input x: x_mean_abs [cols]
// (mean |x_c| over the calibration tokens, finite, >= 0), h [cols, cols] (Σ x xᵀ, symmetric with
// both triangles filled, finite, non-negative diagonal). Throws lowbit::Error("algo", ...) on an
// empty list, null pointers, a linear without rows, mismatched cols, non-finite weights or
// statistics, a bad option or an invalid spec.
AwqSearchResult awq_search_scales(std::span<const AwqLinearRef> linears, int64_t cols,
                                  const float* x_mean_abs, const float* h, const QuantSpec& spec,
                                  const AwqOptions& opt = {});

// Quantizes an ALREADY SCALED weight w_scaled [rows, cols] (= W·diag(s)) whose input is x/s:
// quantize_rtn with, when opt.clip_search, the clip search weighted by h_diag[c] / scales[c]²
// (h_diag [cols] = diag(H) of the unscaled input, finite >= 0; scales [cols] finite > 0).
// Dequantized values are in the scaled basis; divide column c by scales[c] for the original one.
// Throws lowbit::Error("algo", ...) on bad input (and whatever quantize_rtn throws).
QuantizedMatrix awq_quantize(const float* w_scaled, int64_t rows, int64_t cols, const float* h_diag,
                             const float* scales, const QuantSpec& spec,
                             const AwqOptions& opt = {});

// tr((w - w_hat) h (w - w_hat)ᵀ) for w, w_hat [rows, cols] and h [cols, cols] (symmetric): the
// squared output error Σ_t ‖(w - w_hat) x_t‖² when h = Σ_t x_t x_tᵀ. fp32 gemm, double sums.
double output_sq_error(const float* w, const float* w_hat, int64_t rows, int64_t cols,
                       const float* h);

// Folding helpers (in place). scale_columns: w [rows, cols] <- w·diag(s) (column c times s[c]);
// the caller applies it to every linear of the group. divide_rows: w [n, row_len] <- row c
// divided by s[c]; the predecessor: a norm weight (n = cols, row_len = 1) or the predecessor
// linear's weight [cols, its cols] (its output channel c feeds input channel c).
void awq_scale_columns(float* w, int64_t rows, int64_t cols, const float* s);
void awq_divide_rows(float* w, int64_t n, int64_t row_len, const float* s);

}  // namespace lowbit
