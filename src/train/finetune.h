// The fine-tuning loop: LoRA adapters trained on a frozen base model of any lowbit format
// (QLoRA when the base is quantized), with AdamW, gradient accumulation, held-out evaluation
// and resumable checkpoints.
//
// Determinism: everything a step does is a function of (options, step): sequence k of the
// training stream (k = (step·grad_accum + micro)·batch + i) is epoch_order(n, seed, k / n)[k % n],
// and micro-batch j of step s draws its dropout masks from seed mix(seed, s, j). A run resumed
// from a checkpoint therefore ends with bit-identical adapters to one that never stopped (same
// machine and thread count: the BLAS sums in the same order).
//
// Files in out_dir:
//  * adapter_config.json + adapter_model.safetensors — the final adapter (PEFT layout, peft.h);
//  * checkpoint.safetensors — written every save_every steps and at the end (and at stop_after):
//    tensors "lora.<module>.A/B" and "adam.<module>.mA/vA/mB/vB" (F32, <module> =
//    "layers.L.proj"), metadata "lowbit.finetune" = JSON {"step", "options", "heldout_before",
//    "log"}; resuming needs the same options (checked, except steps-independent save_every /
//    stop_after);
//  * train_log.csv — step, loss (mean nats/target), lr, grad_norm, tokens, seconds.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/dataset.h"
#include "train/lora.h"
#include "train/train_log.h"

namespace lowbit {

struct FinetuneOptions {
  std::string model_path, tokenizer_path, data_path, out_dir;
  LoraConfig lora;
  std::string init_adapter;  // PEFT directory to start from (e.g. LoftQ's), else the PEFT init
  AdamWOptions adam;      // total_steps is filled in from steps / epochs
  DatasetOptions data;
  int64_t batch = 4;      // sequences per micro-batch
  int64_t grad_accum = 1; // micro-batches per optimizer step
  int64_t steps = 0;      // optimizer steps; 0 = from epochs
  double epochs = 1.0;
  uint64_t seed = 42;
  int64_t save_every = 0; // checkpoint every N steps (0 = only at the end)
  int64_t stop_after = 0; // stop (with a checkpoint) after this step, to split a run; 0 = run to the end
  bool resume = false;    // continue from out_dir/checkpoint.safetensors
  // Gradient checkpointing: "on" recomputes each layer's intermediates in the backward pass,
  // "off" keeps them, "auto" keeps them when that takes at most kAutoKeepBytes.
  std::string checkpointing = "auto";
};

inline constexpr int64_t kAutoKeepBytes = int64_t{1} << 30;


struct HeldoutLoss {
  double loss = 0;  // mean nats per target
  double ppl = 0;
  int64_t targets = 0;
};

struct FinetuneResult {
  int64_t total_steps = 0, steps_done = 0, resumed_from = 0;
  int64_t train_sequences = 0, heldout_sequences = 0, train_targets = 0;
  int64_t trainable_params = 0;
  HeldoutLoss before, after;  // after is measured only when the run reaches total_steps
  bool finished = false;
  double seconds = 0, tokens_per_s = 0;  // this run's training steps
  std::vector<StepLog> log;              // every step, resumed ones included
  std::string base_format;               // e.g. "nf4:g64:dq" or "f32"
  bool recompute = true;                 // gradient checkpointing was used
};

using FinetuneProgress = std::function<void(const StepLog&, int64_t total_steps)>;

// Throws lowbit::Error("finetune" / "lora" / ...) for bad options, data or checkpoints.
FinetuneResult finetune(FinetuneOptions o, const FinetuneProgress& progress = nullptr);

// Mean held-out loss of the adapted model (training forward; no dropout).
HeldoutLoss heldout_loss(class LoraModel& m, const std::vector<Sequence>& seqs, int64_t batch);

// The loss curve (train loss per step, held-out losses as points at their steps) as a gnuplot
// script writing `png_path`.
std::string loss_curve_gnuplot(const std::vector<StepLog>& log,
                               const std::vector<std::pair<int64_t, double>>& heldout, const std::string& title,
                               const std::string& png_path);
// The same for a fine-tuning run (held-out before and, when finished, after).
std::string loss_curve_gnuplot(const FinetuneResult& r, const std::string& title, const std::string& png_path);

}  // namespace lowbit
