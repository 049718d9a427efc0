// GPTQ: quantization with second-order error feedback (Frantar et al. 2022, "GPTQ: Accurate
// Post-Training Quantization for Generative Pre-trained Transformers", Algorithm 1).
//
// For a layer y = W x with calibration inputs x_t, H = Σ_t x_t x_tᵀ. GPTQ quantizes W column by
// column (input channel by input channel) and, after each column, spreads that column's
// quantization error over the columns not yet quantized so as to minimise the proxy loss
//   tr(ΔW H ΔWᵀ) = Σ_t ‖(W - Ŵ) x_t‖².
// Every row (output channel) is independent; all share H.
//
// Steps and numerics:
//  1. H is symmetrized, (H + Hᵀ)/2, in double. Dead columns (H_ii == 0: the input channel never
//     fires) get H_ii = 1 and their weights are set to 0 before anything is fitted (as the
//     reference implementation does); they are counted in GptqReport::dead_columns.
//  2. Column order: natural, or with act_order by descending diag(H) (ties: lower index first).
//  3. Damping: H += damp · mean(diag(H)) · I.
//  4. One Cholesky factorization in double (LAPACK dpotrf): H = V Vᵀ with V upper triangular
//     (dpotrf of the order-reversed matrix, J H J = L Lᵀ, V = J L J). The paper uses U, the
//     upper Cholesky factor of H⁻¹ (H⁻¹ = UᵀU); U = V⁻¹ = J L⁻¹ J (dtrtri), the same factor the
//     reference gets from cholesky → cholesky_inverse → cholesky(upper), without forming H⁻¹.
//  5. Column loop in lazy blocks of `block` columns: column k's current value w̃_k is coded
//     against its group's parameters (encode/decode of codec.h: any quantized kind), giving ŵ_k
//     and an error e_k; the block's remaining columns get w̃_j += e_k · F_kj at once, and the
//     columns after the block get the block's errors in one fp32 gemm:
//     W̃[:, e:] += E · F[b:e, e:].
//     U form (the paper): e_k = w̃_k - ŵ_k, F_kj = -U_kj / U_kk.
//     V form: e_k = w_k - ŵ_k (the ORIGINAL weight), F_kj = V_kj / V_jj. As the paper's
//     Q = W - E·U with E_k = (w̃_k - ŵ_k) / U_kk means E = (W - Q)·V, the value quantized at
//     column k is w̃_k = w_k + Σ_{j<k} (w_j - ŵ_j) · V_jk / V_kk: the same codes in exact
//     arithmetic, and no dtrtri (n³/3 flops instead of 2n³/3). But the intermediate w̃_j of
//     columns not reached yet differ between the forms; only the U form's are the paper's
//     optimal updates. So static groups use the V form, dynamic groups (fitted from the
//     intermediate weights) the U form. F is computed in double and used in fp32.
//
// Group parameters (the stored matrix is always in natural column order, no g_idx):
//  - act_order or double-quantized spec: STATIC groups. Every group is fitted before the loop
//    from the (dead-zeroed) original weights in natural order. Double-quantized specs then
//    double-quantize all scales and run GPTQ against the decoded scales, so codes match the
//    stored scales exactly.
//  - otherwise: DYNAMIC groups, as in the paper. A group is fitted when the loop reaches its first
//    column, from the error-updated weights. To make "updated" exact, a lazy block never runs
//    past the start of a group that would end after the block (the block is cut there instead;
//    the reference code fits such groups from stale weights). Per-channel: one group per row.
//  - fitting uses fit_group_rtn (rtn.h): the plain fit of the kind, or with clip_search RTN's
//    clip grid with diag(H) of the group's columns as importance.
//
// Vector code books (e8p: 8 weights per code): natural column order whatever act_order says,
// static groups, V form, and the feedback of QuIP#'s block LDLQ: each chunk of 8 columns is coded
// jointly to the point nearest its updated weights, which take the errors of earlier chunks
// through F_iB·F_BB⁻¹ instead of F_iB (see chunk_feedback in gptq.cpp).
//
// Threads: rows are cut into fixed tiles of 128 and tiles run in parallel (lowbit::parallel_for)
// with single-threaded BLAS, so the result does not depend on the thread count. The H
// factorization (O(cols³)) runs once, on the calling thread.
// Memory: 12·cols² bytes while H is factored (double work + fp32 F), then 4·cols² (F), plus
// 5·128·cols bytes of tile buffers per thread and 12 bytes per group, besides the result.
#pragma once

#include <cstdint>
#include <vector>

#include "formats/codec.h"
#include "formats/quantized_matrix.h"

namespace lowbit {

struct GptqOptions {
  double damp = 0.01;        // >= 0: added to diag(H) as damp * mean(diag(H)) (GPTQ's percdamp)
  int block = 128;           // >= 1: lazy-batch block size (columns)
  bool act_order = true;     // descending diag(H) order, with static groups (see above)
  bool clip_search = false;  // fit groups with RTN's clip search (importance diag(H))
};

struct GptqReport {
  double proxy_loss_rtn = 0;  // tr(ΔW H ΔWᵀ) of quantize_rtn (same spec and clip setting)
  double proxy_loss = 0;      // tr(ΔW H ΔWᵀ) of the GPTQ result
  int dead_columns = 0;       // columns with H_ii == 0
  double seconds = 0;         // wall time of the quantization (without the proxy losses)
};

// Quantizes w [rows, cols] (row-major, rows = output channels) into `spec` with GPTQ, given
// h [cols, cols] = Σ_t x_t x_tᵀ over calibration tokens (symmetric positive semi-definite; its
// scale does not matter). Returns the matrix in the layout quantize_rtn produces (passes
// validate()). Plain f32/f16/bf16 specs are delegated to quantize_rtn (plain storage; GPTQ has
// nothing to feed back) after the same input checks, except that H is then not factored.
// When `report` is given, the proxy losses are computed on the undamped H with an extra RTN run
// (importance diag(H) when clip_search): each loss costs 2·rows·cols² flops, as much as GPTQ's
// own gemms, so leave `report` null where the numbers are not needed.
// Throws lowbit::Error("algo", ...) on an empty shape, bad options (damp < 0 or not finite,
// block < 1), a non-finite weight or H entry, or H + damp·mean(diag(H))·I not positive definite;
// an invalid spec gives check_quant_spec's Error("format", ...), as in quantize_rtn.
QuantizedMatrix quantize_gptq(const float* w, int64_t rows, int64_t cols, const float* h,
                              const QuantSpec& spec, const GptqOptions& opt = {},
                              GptqReport* report = nullptr);

// A fixed grid of representable values per weight, for GPTQ against formats whose parameters
// the caller fits beforehand (static groups; e.g. the GGUF block types, export/gguf_calibrated.h).
// Implementations must be safe to call from several threads at once.
class WeightGrid {
 public:
  virtual ~WeightGrid() = default;
  // The code of the grid point of weight (row, col) nearest to v.
  virtual uint8_t nearest(int64_t row, int64_t col, float v) const = 0;
  // The value of code q at weight (row, col).
  virtual float value(int64_t row, int64_t col, uint8_t q) const = 0;
};

// GPTQ (steps 1-5 above, static-group V form) choosing each weight's code on `grid` instead of a
// QuantSpec's. Returns the codes [rows, cols] in natural column order. opt.clip_search is
// ignored (the grid is fixed). Same input checks and errors as quantize_gptq (no spec check).
std::vector<uint8_t> gptq_grid_codes(const float* w, int64_t rows, int64_t cols, const float* h,
                                     const WeightGrid& grid, const GptqOptions& opt = {});

}  // namespace lowbit
