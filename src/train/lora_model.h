// A frozen base model (any lowbit format) plus trainable LoRA adapters: the training forward
// and backward pass. The forward reuses model/'s ops (rms_norm, apply_rope, causal_attention) and
// Linear::forward_decoded — the packed weights decoded a row tile at a time and multiplied in
// fp32 (as QLoRA's dequantize-then-matmul), not the inference kernels' int8-activation path, so
// the loss is smooth in the adapters and the gradient exact; it differs from the inference
// forward's loss only by that activation rounding. The backward uses train/grad_ops.h and
// Linear::backward_input (the same decoded tiles).
//
// Memory: with recompute on (the default), gradient checkpointing per layer — only each layer's
// input [N, D] is kept from the forward (N = sequences × positions) and a layer's intermediates
// are recomputed in the backward pass, one layer at a time. With recompute off every layer's
// intermediates are kept (stored_activation_bytes more memory, one forward less). Logits are
// computed in row chunks of ~64 MiB and never held whole.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/llama.h"
#include "train/lora.h"

namespace lowbit {

// n_seq sequences of len positions each (shorter ones padded with targets −1).
struct TrainBatch {
  int64_t n_seq = 0, len = 0;
  std::vector<int32_t> tokens;   // [n_seq, len] input ids
  std::vector<int32_t> targets;  // [n_seq, len] the id to predict at each position; −1 = no loss
  int64_t n_targets() const;
};

struct LossSum {
  double loss = 0.0;  // Σ −log p(target) over the targets
  int64_t n_targets = 0;
};

// Receives what the backward pass knows about the base model's own parameters: each linear
// layer's input and output gradient (scale tuning turns them into gradients of the quantization
// scales: Linear::scale_gradient; full training into dW = dyᵀ·x), and, when asked for, the
// gradients of the RMSNorm gains and of the embedding rows (training from scratch).
class LinearGradHook {
 public:
  virtual ~LinearGradHook() = default;
  // y = x·Wᵀ (+ ...) with x [N, w.cols()] and ∂loss/∂y = dy [N, w.rows()] (already scaled).
  virtual void on_backward(const Linear& w, const float* x, const float* dy, int64_t N) = 0;
  // Where ∂loss/∂gain of the RMSNorm whose gain is `gain` ([1, D]) is accumulated (+=), or
  // nullptr to skip it (the default).
  virtual float* norm_grad(const Matrix& /*gain*/) { return nullptr; }
  // ∂loss/∂(embedding output) = dx [n_seq·len, dim] for the batch's tokens, once per backward
  // pass (the embedding rows' gradient is its scatter-add by token id).
  virtual void on_embedding_backward(const TrainBatch& /*b*/, const float* /*dx*/) {}
};

class LoraModel {
 public:
  // Throws lowbit::Error if the base has run-time input rotations (:had) or attached adapters,
  // or an adapter's shape differs from its layer.
  LoraModel(const LlamaModel& base, LoraAdapter& adapter);
  ~LoraModel();
  LoraModel(const LoraModel&) = delete;
  LoraModel& operator=(const LoraModel&) = delete;

  // The batch's summed loss; accumulates grad_scale · ∂loss/∂(A, B) into the adapter's grads.
  // Dropout masks are a pure function of (dropout_seed, adapter, element), so a step can be
  // replayed exactly (checkpoint resume).
  LossSum forward_backward(const TrainBatch& batch, double grad_scale, uint64_t dropout_seed);
  // The summed loss without gradients or dropout.
  LossSum loss(const TrainBatch& batch);
  // Distillation: as forward_backward/loss with the loss Σ KL(softmax(teacher) ‖ softmax(model))
  // (grad_ops.h kl_divergence) over the positions whose target is >= 0, teacher_logits
  // [n_seq·len, vocab] row-major (no dropout).
  LossSum forward_backward_distill(const TrainBatch& batch, const float* teacher_logits, double grad_scale);
  LossSum distill_loss(const TrainBatch& batch, const float* teacher_logits);
  // One block on its own (block-wise reconstruction). x [N, dim] is layer `layer`'s input for the
  // batch's n_seq sequences of len positions (the tokens are not read); its output goes to y.
  void block_forward(int64_t layer, const TrainBatch& batch, const float* x, float* y);
  // Σ (block(x) − target)² over all N·dim outputs; accumulates grad_scale · its gradient into
  // the adapters' grads and through the hook (no dropout).
  double block_mse_backward(int64_t layer, const TrainBatch& batch, const float* x, const float* target,
                            double grad_scale);
  // Called for every base linear layer (lm_head included) in each backward pass; may be null.
  void set_linear_grad_hook(LinearGradHook* hook) { hook_ = hook; }

  // Recompute each layer's intermediates in the backward pass (default) or keep them all.
  void set_recompute(bool on) { recompute_ = on; }
  // The memory keeping every layer's intermediates takes for a batch of n_tokens positions.
  int64_t stored_activation_bytes(int64_t n_tokens) const;

 private:
  struct Dropout {
    double p = 0.0;
    uint64_t seed = 0;
  };
  struct LayerActs;
  struct Scratch;
  void embed(const TrainBatch& b, float* x) const;
  void layer_forward(int64_t l, const float* x, const TrainBatch& b, LayerActs& a, float* x_out,
                     const Dropout& d) const;
  void layer_backward(int64_t l, const float* x, const TrainBatch& b, LayerActs& a, float* dx,
                      const Dropout& d);
  LossSum head(const float* x, const TrainBatch& b, double grad_scale, float* dx) const;
  LossSum run(const TrainBatch& b, double grad_scale, const Dropout* d);
  LossSum run_distill(const TrainBatch& b, const float* teacher_logits, double grad_scale, bool backward);

  // y = x·Wᵀ (+ bias) + scale · (drop(x)·Aᵀ)·Bᵀ for the adapter p (may be null).
  void lora_forward(const Linear& w, const float* bias, const LoraParam* p, const float* x,
                    int64_t N, float* y, const Dropout& d) const;
  // dx (+)= dy·W + scale · (dy·B·A ⊙ dropout mask); accumulates p's grads.
  void lora_backward(const Linear& w, LoraParam* p, const float* x, const float* dy, int64_t N,
                     float* dx, bool accumulate, const Dropout& d);

  const LlamaModel& base_;
  LoraAdapter& adapter_;
  std::vector<double> inv_freq_;
  bool recompute_ = true;
  LinearGradHook* hook_ = nullptr;
  const float* teacher_ = nullptr;  // [N, V] during a distillation pass, else null
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace lowbit
