// The weight of one linear layer, [n_out, n_in]: either dense fp32 (viewed in place from an F32
// file or decoded at load) or a low-bit matrix packed for this CPU's kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <memory>
#include <span>
#include <vector>

#include "formats/low_rank_factors.h"
#include "kernels/packed_matrix.h"
#include "kernels/rotation.h"
#include "model/act_quant.h"
#include "model/matrix.h"

namespace lowbit {

// A low-rank update of a linear layer (a LoRA adapter): W' = W + scale · B·A, so the layer adds
// scale · (x·Aᵀ)·Bᵀ to its output.
struct LowRankDelta {
  int64_t rank = 0, rows = 0, cols = 0;
  std::vector<float> a;  // [rank, cols]
  std::vector<float> b;  // [rows, rank]
  float scale = 1.0f;
};

// A sequence's use of a switchable adapter (LlamaModel::add_switchable_adapter): index and the
// factor its update is multiplied by.
struct AdapterUse {
  int32_t index = 0;
  float scale = 1.0f;
};

// Rows [begin, begin + count) of a batched product that add switchable adapter `use`.
struct RowAdapter {
  int64_t begin = 0, count = 0;
  AdapterUse use;
};

class Linear {
 public:
  Linear() = default;
  static Linear dense(Matrix m);
  static Linear packed(PackedMatrix p);

  int64_t rows() const { return is_packed_ ? packed_.rows() : dense_.rows; }
  int64_t cols() const { return is_packed_ ? packed_.cols() : dense_.cols; }
  bool is_packed() const { return is_packed_; }
  // The stored weight is W·H: every input row is multiplied by H (an orthogonal rotation, see
  // kernels/rotation.h) before the product, so matmul computes x·Wᵀ.
  void set_input_rotation(std::shared_ptr<const Rotation> h) { input_rotation_ = std::move(h); }
  bool has_input_rotation() const { return input_rotation_ != nullptr; }
  // Evaluation mode: matmul rounds its (rotated) input to `a` first (model/act_quant.h).
  void set_input_quant(ActQuant a) { input_quant_ = a; }
  // The layer's weight is the stored one plus c's B·A: a low-rank correction of its quantization
  // error (":lr<r>" recipes, algo/error_compensation.h), in the stored weight's basis (it reads
  // the input after any input rotation). Unlike an adapter (add_delta) it is part of the weight:
  // matmul, forward_decoded and backward_input all include it. Inference computes (x·Aᵀ)·Bᵀ on
  // the process threads: A as an fp16 PackedMatrix (values rounded to fp16, as .lowbit files
  // store them; r dot products of length cols per token), then Bᵀ [r, rows] kept in fp16 and
  // added as r scaled rows over the output, stored in blocks of 8 outputs (kernels/f16_axpy.h: one
  // contiguous stream per range of outputs; a row-dot form of B,
  // r = 8..64 long, costs more per row than it streams). Per token it reads 2·r·(cols + rows)
  // bytes. Throws lowbit::Error if the shape is not the layer's.
  void set_correction(const LowRankFactors& c, Isa isa = best_isa());
  bool has_correction() const { return correction_ != nullptr; }
  const Matrix& dense_matrix() const { return dense_; }
  // Adds a low-rank update to every later matmul (several add up); rows/cols must match.
  void add_delta(std::shared_ptr<const LowRankDelta> d) { deltas_.push_back(std::move(d)); }
  size_t delta_count() const { return deltas_.size(); }

  // Switchable adapter `index` of this layer (null: that adapter does not touch it).
  void set_switchable(int32_t index, std::shared_ptr<const LowRankDelta> d);
  // Y[T, rows] = X[T, cols] · Wᵀ (+ bias[rows] if non-null), plus, for each entry of
  // row_adapters, that switchable adapter's update on its rows (a server batch mixing requests
  // with different adapters).
  void matmul(const float* x, int64_t T, const float* bias, float* y,
              std::span<const RowAdapter> row_adapters = {}) const;
  // Y[T, rows] = X[T, cols] · Wᵀ (+ bias) with the decoded fp32 weights (PackedMatrix::
  // dequantize_rows, plus the correction) and fp32 activations: no activation quantization and
  // no deltas, so Y is
  // smooth in X and backward_input is its exact transpose (training's forward; packed weights are
  // decoded kRowTile rows at a time). The layer must not have an input rotation (asserted).
  void forward_decoded(const float* x, int64_t T, const float* bias, float* y) const;
  // The base weight's input gradient dX[T, cols] = dY[T, rows] · W (W with its correction; no
  // deltas, no bias): one
  // sgemm when dense; packed weights are decoded kRowTile rows at a time (never a full fp32
  // copy). The layer must not have an input rotation (asserted).
  // With accumulate, dX += dY · W instead.
  void backward_input(const float* dy, int64_t T, float* dx, bool accumulate = false) const;
  // Packed layers only: g[rows, groups_per_row] += ∂L/∂(log|scale|) of every group's scale,
  // i.e. Σ over the group's columns j of (dYᵀ·X)[r, j] · Ŵ[r, j] (Ŵ is linear in its group's
  // scale, so this is exact for the decoded forward), for dY[T, rows] the output gradient of
  // y = x·Ŵᵀ and X[T, cols] its input. Row tiles of Ŵ and of dYᵀ·X are formed one at a time
  // (never a full fp32 copy). The layer must not have an input rotation (asserted).
  void scale_gradient(const float* x, const float* dy, int64_t T, float* g) const;
  // Packed layers only: the weight gradient dW = dYᵀ·X [rows, cols] of y = x·Ŵᵀ, handed out one
  // row tile at a time with the decoded weights of the same rows: f(r0, n, dw[n, cols],
  // w[n, cols]) for consecutive tiles (the buffers are reused after f returns). Never a full
  // fp32 copy of either. The layer must not have an input rotation (asserted).
  void weight_gradient_tiles(const float* x, const float* dy, int64_t T,
                             const std::function<void(int64_t, int64_t, const float*, const float*)>& f) const;
  // Packed layers only: groups per row of the stored matrix.
  int64_t groups_per_row() const;
  // Replaces a packed layer's matrix by one of the same shape (scale tuning writes back its
  // scales this way). Throws lowbit::Error if the layer is not packed or the shape differs.
  void replace_packed(PackedMatrix p);
  // Bytes of weight data one matvec reads.
  int64_t weight_bytes() const;
  std::string format() const;  // "f32" or the packed spec, e.g. "int4:g128"

 private:
  bool is_packed_ = false;
  Matrix dense_;
  PackedMatrix packed_;
  std::shared_ptr<const Rotation> input_rotation_;
  ActQuant input_quant_;
  struct Correction {
    PackedMatrix a;         // A [r, cols], fp16
    std::vector<uint16_t> bt;  // Bᵀ [r, rows], fp16 bits in kernels/f16_axpy.h's blocked layout
  };
  std::shared_ptr<const Correction> correction_;
  std::vector<std::shared_ptr<const LowRankDelta>> deltas_;
  std::vector<std::shared_ptr<const LowRankDelta>> switchable_;  // by adapter index
};

// g[n, groups] += Σ over each group of group_len columns of dw ⊙ w, for n rows of `cols`
// (dw, w [n, cols]; the last group may be short): the reduction scale_gradient applies to each row
// tile. Rows are split over the threads; sums in double.
void add_group_products(const float* dw, const float* w, int64_t n, int64_t cols, int64_t group_len, float* g);

// y[T, d.rows] += factor · d.scale · (x[T, d.cols] · Aᵀ) · Bᵀ
void add_low_rank(const LowRankDelta& d, const float* x, int64_t T, float* y, float factor = 1.0f);

// dx[T, d.cols] += d.scale · (dy[T, d.rows] · B) · A: the input gradient of add_low_rank.
void add_low_rank_backward(const LowRankDelta& d, const float* dy, int64_t T, float* dx);

}  // namespace lowbit
