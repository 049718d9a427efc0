// Perplexity over a token stream.
//
// Windowing (the GPTQ-paper convention by default): the stream is cut into windows of `ctx`
// tokens starting every `stride` tokens (stride == ctx: non-overlapping; the incomplete tail is
// dropped). Each window is run from position 0 with a fresh KV cache. A window scores the
// predictions of its tokens that no earlier window scored: the first window every position
// after its first token, later overlapping windows only their last `stride` targets.
// ppl = exp(mean NLL); its standard error follows by the delta method: ppl · sd(NLL)/sqrt(n).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/llama.h"

namespace lowbit {

struct Window {
  int64_t begin = 0, end = 0;  // tokens [begin, end) are fed
  int64_t score_from = 0;      // targets at indices [score_from, end) are scored (> begin)
};

// Throws lowbit::Error("perplexity", ...) if ctx < 2, stride < 1 or stride > ctx, or if there
// are fewer than ctx tokens.
std::vector<Window> plan_windows(int64_t n_tokens, int64_t ctx, int64_t stride);

struct NllStats {
  double sum = 0.0, sum_sq = 0.0;
  int64_t count = 0;
  void add(double nll) { sum += nll; sum_sq += nll * nll; ++count; }
  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
  double ppl() const;
  double ppl_stderr() const;
};

// -log softmax(logits)[target], computed in double with the max subtracted.
double token_nll(std::span<const float> logits, int32_t target);

struct PerplexityResult {
  double ppl = 0, ppl_stderr = 0, nll_mean = 0;
  int64_t tokens_scored = 0, tokens_evaluated = 0, windows = 0;
  double seconds = 0, tok_per_s = 0;  // tok_per_s counts evaluated (fed) tokens
};

using ProgressFn = std::function<void(int64_t done, int64_t total)>;

// `kv_type`: the KV cache format (model/kv_cache.h).
PerplexityResult perplexity(const LlamaModel& model, std::span<const int32_t> ids, int64_t ctx,
                            int64_t stride, const ProgressFn& progress = nullptr,
                            KvType kv_type = KvType::F32);

}  // namespace lowbit
