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
// Quantization (awq_quantize): each group of each row of the scaled weight picks its clip ratio
// from 1, 1 - max_shrink/clip_grid, ..., 1 - max_shrink (fit_group's clip, formats/codec.h) by
// the output error it causes, measured with the full H of the scaled input (AwqClipMetric):
// by default the whole row's error ‖Δw x‖² summed over the calibration tokens, groups chosen
// greedily left to right, each given the residuals already chosen left of it. AutoAWQ's
// auto_clip scores each group on its own (Block); the diagonal of H alone (Diagonal, the old
// metric) ignores the strong correlation between input channels (the mean component of LLM
// activations), under which the clipped weights' errors add up coherently in the output.
// Measured on ref-m, awq:int3:g128, KLD vs fp32 on wikitext-2 (rtn 0.0203): Row 0.0157,
// Block 0.0168, Diagonal 0.0183, no clip search 0.0197 (int4: rtn 0.0051, Row 0.0039, Block
// 0.0042, Diagonal 0.0045); ref-s int3: rtn 0.0362, Row 0.0276, Block 0.0274, Diagonal 0.0349,
// no clip 0.0362. Not clipping q/k (AutoAWQ) was worse (0.0161); for asymmetric Int,
// AutoAWQ's clamp to ±r·max|w| instead of shrinking both ends scored the same within noise.
//
// Threads: the search's gemms run in lowbit::parallel_for slices over the columns of H, the
// clip search in fixed blocks of rows (OpenBLAS single-threaded inside both, see
// base/parallel.h). Results do not depend on the thread count.
// Cost: the scale search's 20 candidates of a 7B q/k/v group (3 x 4096 x 4096) take ~5 s on 2
// cores with the default max_rows; down_proj (cols 11008) ~12 s. awq_quantize's Row clip search
// costs 2·n_cand·g·cols (candidates' block errors) + cols² (coupling) flops per row, Block the
// first term only, Diagonal no gemm. Measured int3:g128 on 2 shared cores, 4096 x 4096 /
// 11008 x 4096 / 4096 x 11008: Row 1.2-1.7 / 3.2-3.5 / 5.4-5.7 s, Block 0.7-0.8 / 1.9-2.1 /
// 2.0 s with OpenBLAS's AVX-512 kernels; with the SSE3 "Prescott" kernels that OpenBLAS 0.3.21
// falls back to when it does not recognise the CPU (check openblas_get_corename()), Row 3.3-4.6
// / 9 / 16-17.5 s, Block 1.9-2.4 / 5.4 / 5.8 s. Diagonal: 0.9 / 2.4 / 2.4 s.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "formats/quant_spec.h"
#include "formats/quantized_matrix.h"

namespace lowbit {

// How awq_quantize scores the clip candidates of group g (columns b .. b+n) of one row, with
// δ = (w_g - deq(Q(w_g))) / s_g the candidate's residual in the original basis (so δᵀ H δ with
// the unscaled H is the error in the scaled basis, H_s = diag(1/s) H diag(1/s)):
enum class AwqClipMetric : uint8_t {
  Row,    // δᵀ H_gg δ + 2 δᵀ H[g, 0:b] δ_prev: the row's output error given the residuals
          // δ_prev already chosen for its earlier groups (groups in column order), so a
          // group can offset its predecessors' error; cross terms with later groups ignored
  Block,  // δᵀ H_gg δ: the group's own output error (AutoAWQ's auto_clip on real inputs)
  Diagonal,  // Σ_c H_cc δ_c²: quantize_rtn's importance-weighted search (cross-channel terms
             // ignored; it can make a model worse than plain RTN, e.g. ref-s at int3)
};

struct AwqOptions {
  int grid = 20;           // alpha in {0, 1/grid, ..., (grid-1)/grid} (AutoAWQ's n_grid); >= 1
  int64_t max_rows = 256;  // rows per linear scored in the search (evenly spaced); 0 = all
  // AutoAWQ's duo_scaling: t_c = max(mean|x_c|^alpha / (w_mean_c^(1-alpha) + 1e-4), 1e-4), where
  // w_mean_c is the mean over all rows of all linears of |w| / (its group's max |w| + 1e-6) in
  // column c (groups of spec.group_len(cols)). alpha = 0 is then not s = 1, so s = 1 is scored
  // first as an extra candidate (result alpha 0, scaled false). AutoAWQ's default; on ref-m
  // awq:int3:g128 (Row clip) it gave KLD 0.0151 vs 0.0156 (mean of 4 calibration seeds), the
  // same at int4 and on ref-s.
  bool duo_scaling = false;
  // awq_quantize: per-group clip search over the ratios r_k = 1 - k·max_shrink/clip_grid,
  // k = 0..clip_grid (AutoAWQ: max_shrink 0.5 in 20 steps, of which it tries the first 10; here
  // all 21 down to 1 - max_shrink), scored by clip_metric (see awq_quantize). On ref-m int3,
  // grids of 10 or 40 steps and max_shrink 0.3 or 0.7 scored within ±3% of the default.
  bool clip_search = true;
  float max_shrink = 0.5f;  // in [0, 1)
  int clip_grid = 20;       // >= 1
  AwqClipMetric clip_metric = AwqClipMetric::Row;
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
// h [cols, cols] = Σ x xᵀ of the UNSCALED input x (symmetric with both triangles filled, finite,
// non-negative diagonal) and scales [cols] (finite, > 0). A caller holding the scaled input's
// statistics passes them with scales all 1. Dequantized values are in the scaled basis; divide
// column c by scales[c] for the original one.
// With opt.clip_search each group takes the candidate of least error under opt.clip_metric
// (ties keep the larger ratio, so s = 1 and max_shrink = 0 give exactly quantize_rtn). Block and
// Row: the candidates' residuals of a block of rows (<= 64; fewer for long groups) go through
// one fp32 gemm with H_gg per group, Row adds one gemm of the block's chosen residuals with
// H[0:b, g]; errors are summed in double. Double-quantized specs search with fp32 scales, then
// double-quantize them and encode against the decoded ones (as quantize_rtn). Diagonal, and
// clip_search false: quantize_rtn (with importance H_cc / s_c²). Plain specs (f16 ...): stored.
// Throws lowbit::Error("algo", ...) on null pointers, an empty shape, a bad option, a
// non-finite weight, H or scale, a negative diagonal, or an invalid spec.
QuantizedMatrix awq_quantize(const float* w_scaled, int64_t rows, int64_t cols, const float* h,
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
