// Quality recovery after post-training quantization by distillation from the float model, in
// EfficientQAT's two stages: `lowbit quantize --tune kd`.
//
// What is trained: every group scale of every quantized linear layer (lm_head included), as
// s = s₀·exp(θ) with θ from 0 — Ŵ is linear in its group's scale, so ∂L/∂θ = Σ_group ∂L/∂Ŵ ⊙ Ŵ
// exactly and the learning rate is a relative step (1e-2 ≈ 1 % per step) whatever a layer's
// magnitude; and, for Int (sym/asym) and Ternary formats, every weight's code, through a latent
// coordinate v on the code axis (Ŵ = s·(round(v) − zero)) started at the quantizer's code, so
// training starts exactly from its solution (GPTQ's, say); ∂L/∂v = s·∂L/∂Ŵ (straight through the
// rounding) and v stays within half a step of the code range. Zero-points stay as they were.
//
// 1. Block-wise reconstruction (Block-AP; with train_codes and block_steps > 0): block by block,
//    scales and codes are trained so that the quantized block, fed the quantized model's own
//    hidden states, reproduces the float block's output on the float model's hidden states
//    (squared error relative to the output's energy); the tuned block's outputs feed the next.
// 2. End-to-end (E2E-QP): the scales alone against the float teacher's next-token distribution,
//    the mean over positions of KL(teacher ‖ student).
// Formats, kernels and the file's size are unchanged: only code and scale bytes differ. The
// forward always uses what will be stored (scales rounded to fp16/bf16 or double-quantized again,
// codes rounded), with fp32 θ and v as master copies: what is trained is what is written.
//
// Memory: θ, v and their AdamW moments — 12 bytes per weight with train_codes (12 bytes per group
// scale without), plus three [train windows · len, dim] fp32 hidden-state arrays in stage 1.
//
// The held-out windows (the last `holdout` windows) measure KL before and after; if tuning did
// not lower it, the quantizer's codes and scales are kept (never worse than the input). Train on
// text like the model's use: on ref-m, distilling on Wikipedia text lowered wikitext-2 KLD by
// half, on the default calibration mix (mostly text ref-m was trained on) by a fifth
// (docs/BENCHMARKS.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "formats/quantized_matrix.h"
#include "model/llama.h"
#include "train/adamw.h"

namespace lowbit {

struct KdTuneOptions {
  int64_t steps = 200;      // stage 2 optimizer steps
  int64_t batch = 4;        // windows per step
  int64_t holdout = 16;     // windows held out of training (KL before/after); >= 1
  bool train_codes = true;    // stage 1 with the codes of Int/Ternary matrices (else stage 2 only)
  int64_t block_steps = 200;  // stage 1 steps per block (0: none)
  double block_lr = 1e-2;     // stage 1 peak learning rate (scales; codes × code_lr_mult), after
                              // a warmup of block_steps / 10, then adam.schedule
  double code_lr_mult = 5.0;  // the codes' learning rate relative to block_lr (code steps)
  AdamWOptions adam = [] {
    AdamWOptions o;
    o.lr = 1e-2;
    o.clip = 0.0;
    o.schedule = LrSchedule::Cosine;
    o.warmup_steps = 10;
    return o;
  }();
  uint64_t seed = 0;        // window order
  // After each block-wise step: (block, step done, total, relative squared error, learning rate).
  std::function<void(int64_t, int64_t, int64_t, double, double)> block_progress;
  // After each end-to-end step: (step done, total, mean KL of the step's batch, learning rate).
  std::function<void(int64_t, int64_t, double, double)> progress;
};

struct KdTuneReport {
  int64_t tensors = 0, scales = 0;    // tuned matrices and group scales
  int64_t trained_codes = 0;          // weights whose code was trained
  int64_t codes_changed = 0;          // of those, codes that differ from the quantizer's at the end
  int64_t train_windows = 0, holdout_windows = 0, window_len = 0, steps = 0;
  double kl_before = 0, kl_after = 0;  // mean KL(teacher ‖ student) per position, held out
  bool improved = true;  // false: held-out KL did not fall, so the input scales were restored
  double seconds = 0, tokens_per_second = 0;
};

// Tunes the scales (and codes) of `quantized` (canonical name -> matrix, the student's quantized
// linear layers, as loaded from its .lowbit) in place. `student` is the model built from them (its
// packed layers are replaced as the scales change; on return they match `quantized`), `teacher`
// the float model it was quantized from (same config). `windows` are token windows of one
// length (calibration). Throws lowbit::Error on mismatched models, fewer than holdout + 1
// windows, a student with run-time input rotations (:had) or no quantized linear layer.
KdTuneReport tune_kd(const LlamaModel& teacher, LlamaModel& student,
                               std::map<std::string, QuantizedMatrix>& quantized,
                               const std::vector<std::vector<int32_t>>& windows, const KdTuneOptions& opt);

}  // namespace lowbit
