// A quantized model measured against its full-precision reference on the same token stream, the
// way llama.cpp's `llama-perplexity --kl-divergence` compares quants.
//
// Windowing and scoring are perplexity()'s (plan_windows, token_nll): the same targets are
// scored, so `ppl` equals perplexity(model, ...) and `ref_ppl` perplexity(reference, ...) bit for
// bit. For every scored target t (predicted from row t-1 of its window) both models' logits give
//   KL(P_ref ‖ P_model) = Σ_v p_ref(v) · (log p_ref(v) − log p_model(v))        (nats, ≥ 0)
// computed in double from log-softmax with the row max subtracted (clamped at 0: rounding can
// leave −1e-17), whether the two argmaxes agree (the first index wins a tie), and both NLLs.
//
// Statistics over the n scored targets:
//   kld_mean, kld_stderr = sd(KLD)/sqrt(n) (sample sd, n−1);
//   kld_median, kld_p90, kld_p99: nearest-rank percentiles of the sorted per-target KLDs, i.e.
//     the value of rank ceil(p·n) (1-based; p = 0.5, 0.9, 0.99) — always an observed value, and
//     the lower middle value for an even n (no interpolation); kld_max = rank n;
//   top1_agree = fraction of targets whose argmaxes agree;
//   ln_ratio_mean = mean(nll − ref_nll) = ln(ppl / ref_ppl).
#pragma once

#include <cstdint>
#include <span>

#include "eval/perplexity.h"
#include "model/llama.h"

namespace lowbit {

struct CompareResult {
  double ppl = 0, ppl_stderr = 0;          // the model's
  double ref_ppl = 0, ref_ppl_stderr = 0;  // the reference's
  double delta_ppl = 0;                    // ppl − ref_ppl
  double ln_ratio_mean = 0;                // mean(nll − ref_nll)
  double kld_mean = 0, kld_stderr = 0;
  double kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_max = 0;
  double top1_agree = 0;  // fraction in [0, 1]
  int64_t tokens_scored = 0, windows = 0;
  double seconds = 0;
};

// Runs both models over the windows of `ids` (see perplexity.h) and compares them per target.
// Throws lowbit::Error("eval", ...) if the vocab sizes differ, and plan_windows' errors for a bad
// ctx/stride or too short a stream. `progress` is called after each window. `kv_type` is the KV
// cache format of the model under test (the reference keeps fp32).
CompareResult compare_models(const LlamaModel& model, const LlamaModel& reference,
                             std::span<const int32_t> ids, int64_t ctx, int64_t stride,
                             const ProgressFn& progress = nullptr, KvType kv_type = KvType::F32);

// Throws lowbit::Error("eval", ...) naming both sizes if the two models' vocabularies differ.
void check_same_vocab(const LlamaModel& model, const LlamaModel& reference);

// The per-target comparison of two logit rows of equal length V (ref first).
struct TokenComparison {
  double kld = 0;               // KL(P_ref ‖ P_model), nats
  double nll = 0, ref_nll = 0;  // −log p(target) under the model / the reference
  bool top1_agree = false;      // argmax(logits) == argmax(ref_logits)
};
TokenComparison compare_token(std::span<const float> ref_logits, std::span<const float> logits,
                              int32_t target);

// KL(softmax(ref_logits) ‖ softmax(logits)) in nats (as compare_token's kld).
double kl_divergence(std::span<const float> ref_logits, std::span<const float> logits);

// Nearest-rank percentile of ascending `sorted` values: sorted[ceil(p·n) − 1] for p in (0, 1],
// sorted[0] for p ≤ 0; 0 for an empty span.
double percentile_nearest_rank(std::span<const double> sorted, double p);

}  // namespace lowbit
