// AdamW (decoupled weight decay, Loshchilov & Hutter) over the LoRA adapters, with the learning-
// rate schedules and global-norm gradient clipping users know from PyTorch / HF Trainer.
//
// One step t (1-based) on every tensor w with gradient g, in fp32 with the bias corrections in
// double, exactly torch.optim.AdamW's default (non-fused, amsgrad off) order of operations:
//   w ← w − lr·wd·w
//   m ← β1·m + (1−β1)·g        v ← β2·v + (1−β2)·g²
//   w ← w − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)
// Clipping (before the step, when clip > 0): ‖g‖ = √Σg² over every tensor; if ‖g‖ > clip all
// gradients are multiplied by clip / (‖g‖ + 1e-6) (torch.nn.utils.clip_grad_norm_).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/lora.h"

namespace lowbit {

enum class LrSchedule { Constant, Linear, Cosine };

// "constant", "linear", "cosine"; throws lowbit::Error("finetune", ...) for anything else.
LrSchedule parse_lr_schedule(const std::string& s);
const char* lr_schedule_name(LrSchedule s);

struct AdamWOptions {
  double lr = 2e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  double clip = 1.0;  // max global gradient norm; 0 = no clipping
  LrSchedule schedule = LrSchedule::Constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
};

// Throws lowbit::Error("finetune", ...) for a non-positive lr, betas outside [0, 1), eps <= 0,
// negative weight decay / clip / warmup, or total_steps < 1.
void validate_adamw(const AdamWOptions& o);

// The learning rate of optimizer step `step` (0-based), as HF's get_*_schedule_with_warmup:
// lr·step/warmup during warmup, then constant, linear to 0 at total_steps, or half a cosine.
double lr_at(const AdamWOptions& o, int64_t step);

struct StepStats {
  double lr = 0;
  double grad_norm = 0;  // before clipping
};

// One trainable tensor and its accumulated gradient (same size); its learning rate (and so its
// weight decay) is lr_mult times the schedule's.
struct ParamRef {
  std::vector<float>* value;
  std::vector<float>* grad;
  double lr_mult = 1.0;
};

// The adapter's tensors in optimizer order: for each LoraParam its A then its B.
std::vector<ParamRef> adapter_param_refs(LoraAdapter& adapter);

class AdamW {
 public:
  AdamW(const LoraAdapter& adapter, AdamWOptions o);
  // Over any tensors: `params` fixes their order and sizes for every later step.
  AdamW(const std::vector<ParamRef>& params, AdamWOptions o);

  // One step on the adapter's accumulated gradients (clipped in place first).
  StepStats step(LoraAdapter& adapter);
  // One step on `params` (the same tensors, in the same order, as at construction).
  StepStats step(const std::vector<ParamRef>& params);

  int64_t steps_done() const { return t_; }
  const AdamWOptions& options() const { return opt_; }
  // Moments in tensor order (for an adapter: each LoraParam's A then its B; checkpointing).
  std::vector<std::vector<float>>& first_moments() { return m_; }
  std::vector<std::vector<float>>& second_moments() { return v_; }
  void set_steps_done(int64_t t) { t_ = t; }

 private:
  AdamWOptions opt_;
  int64_t t_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

}  // namespace lowbit
