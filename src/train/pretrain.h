// Training a small LLaMA from scratch (`lowbit train`), in fp32 or with its block linear layers
// quantized during training: quantization-aware training with a straight-through estimator, as
// BitNet b1.58 (ternary weights, absmean scales; Ma et al. 2024) and QuEST-style int4 train it.
//
// Parameters: fp32 master ("latent") weights for every tensor of the model — embeddings, norms,
// the seven projections of every block, lm_head (untied). Initialisation: embeddings and
// projections N(0, 0.02²), o_proj and down_proj N(0, (0.02/√(2L))²) (GPT-2's residual scaling),
// norms 1.
//
// Quantization-aware training (weights = a QuantSpec such as "ternary:g64" or "int4:g32"): each
// step the forward multiplies by Ŵ = dequant(rtn(W)) of every block projection — exactly what
// `lowbit quantize -r rtn:<spec>` stores for W (algo/rtn.h without clip search) — and the
// gradient with respect to Ŵ is applied to W unchanged (straight-through). Embeddings, norms
// and lm_head stay fp32 during training (BitNet keeps them in high precision too).
//
// One step: `batch` windows of the training text (train/dataset.h: non-overlapping windows of
// ctx + 1 tokens, the shuffled stream of train/finetune's data order), the mean cross-entropy
// over their targets, AdamW (train/adamw.h) over all master weights. The forward/backward is
// train/lora_model's (gradient checkpointing per layer) with no adapter and a hook that collects
// the base model's own gradients.
//
// Files in out_dir:
//  * config.json + model.safetensors (F32 master weights) + the tokenizer file: an HF-layout
//    model every lowbit command loads;
//  * model.lowbit (QAT runs): the block projections quantized with rtn:<spec> — the very
//    weights trained — and embeddings/lm_head in f16, with the tokenizer inside;
//  * checkpoint.safetensors — masters and AdamW moments (F32) with the step, the options, the
//    log and the held-out points; written every save_every steps and at the last step run. A run
//    split with stop_after / resume ends with byte-identical weights to one that never stopped
//    (step k's batch and update are functions of the options and k alone; same machine and
//    thread count);
//  * train_log.csv — step, loss, lr, grad_norm, tokens, seconds.
// model.lowbit and the HF copy are written only when the last step is done.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/llama_config.h"
#include "train/adamw.h"
#include "train/dataset.h"
#include "train/finetune.h"

namespace lowbit {

struct TrainShape {
  int64_t dim = 128, layers = 4, heads = 4, kv_heads = 0;  // kv_heads 0 = heads
  int64_t hidden = 0;  // 0 = 8/3·dim rounded up to a multiple of 32 (LLaMA's SwiGLU width)
};

struct PretrainOptions {
  std::string tokenizer_path, data_path, out_dir;
  int32_t vocab_hint = -1;      // vocabulary size for llama2.c tokenizer.bin files
  TrainShape shape;
  std::string weights = "f32";  // "f32", or the QuantSpec the block projections train in
  AdamWOptions adam = [] {
    AdamWOptions o;
    o.lr = 2e-3;
    o.schedule = LrSchedule::Cosine;
    o.warmup_steps = 20;
    return o;
  }();
  DatasetOptions data = [] {
    DatasetOptions d;
    d.ctx = 128;
    d.holdout = 0.1;
    return d;
  }();
  int64_t batch = 8;      // windows per optimizer step
  int64_t steps = 300;    // optimizer steps
  int64_t eval_every = 0; // held-out loss every N steps (0: only at the end)
  uint64_t seed = 0;      // weights' initialisation and data order
  int64_t save_every = 0; // checkpoint every N steps (0: only at the end or at stop_after)
  int64_t stop_after = 0; // stop (with a checkpoint) after this step, to split a run; 0: run to the end
  bool resume = false;    // continue from out_dir/checkpoint.safetensors (same options)
};

// The config a PretrainOptions trains (vocab from the tokenizer).
LlamaConfig pretrain_config(const TrainShape& s, int64_t vocab, int64_t ctx, int64_t bos, int64_t eos);

// The model being trained: master weights, their gradients, the forward weights (Ŵ of the
// quantized projections, else views of the masters) and the inference-side LlamaModel built on
// them.
class TrainableModel {
 public:
  // Throws lowbit::Error("train", ...) for an invalid config or weights spec (a spec must be a
  // quantized format RTN can write: int/nf4/fp4/fp8/ternary/e8p with its options).
  TrainableModel(const LlamaConfig& c, const std::string& weights, uint64_t seed);
  ~TrainableModel();
  TrainableModel(const TrainableModel&) = delete;
  TrainableModel& operator=(const TrainableModel&) = delete;

  const LlamaConfig& config() const;
  bool quantized() const;            // QAT (weights != "f32")
  const std::string& weights() const;
  int64_t parameter_count() const;

  // Canonical tensor name -> master weights (row-major; shapes as io/model_source.h). Change
  // the values in place only: the model views these vectors' storage (never assign, resize or
  // replace them).
  std::map<std::string, std::vector<float>>& masters();
  // Recomputes the forward weights from the masters (call after changing them).
  void refresh();
  // The forward weights of a tensor (Ŵ for a quantized projection, else the master).
  const std::vector<float>& forward_weights(const std::string& name) const;

  // Zeroes the gradients, then runs the batch forward and backward: returns the summed loss and
  // accumulates grad_scale · ∂loss/∂(master) (straight-through for quantized projections).
  LossSum forward_backward(const TrainBatch& b, double grad_scale);
  // Mean held-out loss (no gradients).
  HeldoutLoss heldout(const std::vector<Sequence>& seqs, int64_t batch);
  // Every tensor in AdamW order (canonical-name order) with its gradient.
  std::vector<ParamRef> param_refs();
  // The inference-side model over the forward weights (valid until the next refresh()).
  const class LlamaModel& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct PretrainResult {
  LlamaConfig config;
  int64_t parameters = 0, steps = 0, train_sequences = 0, heldout_sequences = 0;
  std::vector<StepLog> log;
  std::vector<std::pair<int64_t, HeldoutLoss>> heldout;  // (step, held-out loss), step 0 first
  double seconds = 0, tokens_per_s = 0;  // this invocation's training steps (evaluation excluded)
  int64_t resumed_from = 0;        // the checkpoint's step (0: a fresh run)
  bool finished = false;           // all steps done (else stopped at stop_after)
  std::vector<std::string> files;  // written, in out_dir
};

using PretrainProgress = std::function<void(const StepLog&, int64_t total_steps)>;

// Throws lowbit::Error("train", ...) for bad options or data; nothing is left in out_dir on error
// (each file is written atomically).
PretrainResult pretrain(const PretrainOptions& o, const PretrainProgress& progress = nullptr);

}  // namespace lowbit
