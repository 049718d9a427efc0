#include "eval/perplexity.h"

#include <chrono>
#include <cmath>
#include <string>

#include "base/error.h"

namespace lowbit {

std::vector<Window> plan_windows(int64_t n_tokens, int64_t ctx, int64_t stride) {
  if (ctx < 2) throw Error("perplexity", "--ctx must be at least 2");
  if (stride < 1 || stride > ctx) throw Error("perplexity", "--stride must be in [1, ctx]");
  if (n_tokens < ctx)
    throw Error("perplexity", "text has " + std::to_string(n_tokens) + " tokens, fewer than --ctx " +
                                  std::to_string(ctx));
  std::vector<Window> w;
  for (int64_t begin = 0; begin + ctx <= n_tokens; begin += stride) {
    const int64_t end = begin + ctx;
    const int64_t score_from = w.empty() ? begin + 1 : std::max(begin + 1, w.back().end);
    w.push_back({begin, end, score_from});
  }
  return w;
}

double NllStats::ppl() const { return std::exp(mean()); }

double NllStats::ppl_stderr() const {
  if (count < 2) return 0.0;
  const double n = static_cast<double>(count), m = mean();
  const double var = std::max(0.0, (sum_sq - n * m * m) / (n - 1.0));
  return ppl() * std::sqrt(var / n);
}

double token_nll(std::span<const float> logits, int32_t target) {
  double mx = logits[0];
  for (float v : logits) mx = std::max(mx, static_cast<double>(v));
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  return std::log(sum) + mx - static_cast<double>(logits[target]);
}

PerplexityResult perplexity(const LlamaModel& model, std::span<const int32_t> ids, int64_t ctx,
                            int64_t stride, const ProgressFn& progress, KvType kv_type) {
  const std::vector<Window> windows = plan_windows(static_cast<int64_t>(ids.size()), ctx, stride);
  const int64_t V = model.config().vocab_size;
  const auto t0 = std::chrono::steady_clock::now();
  NllStats stats;
  std::vector<float> logits;
  KvCache cache = model.new_cache(ctx, kv_type);
  for (size_t wi = 0; wi < windows.size(); ++wi) {
    const Window& w = windows[wi];
    cache.n_past = 0;
    model.forward(ids.subspan(w.begin, w.end - w.begin), cache, /*all_logits=*/true, logits);
    // Row r of logits predicts token begin + r + 1.
    for (int64_t target = w.score_from; target < w.end; ++target) {
      const int64_t r = target - 1 - w.begin;
      const double nll = token_nll(std::span<const float>(logits).subspan(r * V, V), ids[target]);
      if (!std::isfinite(nll))
        throw Error("perplexity", "non-finite logits at token " + std::to_string(target) +
                                      ": the model's weights overflow fp32 activations");
      stats.add(nll);
    }
    if (progress) progress(static_cast<int64_t>(wi) + 1, static_cast<int64_t>(windows.size()));
  }
  PerplexityResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.ppl = stats.ppl();
  r.ppl_stderr = stats.ppl_stderr();
  r.nll_mean = stats.mean();
  r.tokens_scored = stats.count;
  r.windows = static_cast<int64_t>(windows.size());
  r.tokens_evaluated = r.windows * ctx;
  r.tok_per_s = r.seconds > 0 ? static_cast<double>(r.tokens_evaluated) / r.seconds : 0.0;
  return r;
}

}  // namespace lowbit
