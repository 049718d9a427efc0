#include "eval/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/parallel.h"

namespace lowbit {

namespace {

// Row max and log-sum-exp in double: log p(v) = logits[v] − lse.
struct RowStats {
  double lse = 0;
  int64_t argmax = 0;
};

RowStats row_stats(std::span<const float> logits) {
  RowStats s;
  double mx = logits[0];
  for (size_t v = 1; v < logits.size(); ++v) {
    if (logits[v] > mx) {
      mx = logits[v];
      s.argmax = static_cast<int64_t>(v);
    }
  }
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - mx);
  s.lse = std::log(sum) + mx;
  return s;
}

// Σ p_ref (log p_ref − log p_model), each log-probability formed as (logit − lse) in double.
double kl_from_stats(std::span<const float> ref_logits, const RowStats& r,
                     std::span<const float> logits, const RowStats& m) {
  double kl = 0.0;
  for (size_t v = 0; v < ref_logits.size(); ++v) {
    const double lr = static_cast<double>(ref_logits[v]) - r.lse;
    const double lm = static_cast<double>(logits[v]) - m.lse;
    kl += std::exp(lr) * (lr - lm);
  }
  return kl < 0.0 ? 0.0 : kl;  // rounding only; a NaN (broken logits) stays NaN
}

struct Accumulated {
  NllStats nll, ref_nll;
  double ln_ratio_sum = 0, kld_sum = 0, kld_sq = 0;
  int64_t agree = 0;
  std::vector<double> klds;
};

// Scores targets [w.score_from, w.end) of one window from both models' all-position logits.
void score_window(const Window& w, std::span<const int32_t> ids, int64_t V,
                  const std::vector<float>& ref_logits, const std::vector<float>& logits,
                  Accumulated& acc) {
  const int64_t n = w.end - w.score_from;
  std::vector<TokenComparison> tc(static_cast<size_t>(n));
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t target = w.score_from + i;
      const int64_t r = target - 1 - w.begin;  // row r predicts token begin + r + 1
      tc[i] = compare_token(std::span<const float>(ref_logits).subspan(r * V, V),
                            std::span<const float>(logits).subspan(r * V, V), ids[target]);
    }
  });
  // Summed in target order, so the NLL sums are perplexity()'s exactly.
  for (size_t i = 0; i < tc.size(); ++i) {
    const TokenComparison& t = tc[i];
    if (!std::isfinite(t.nll) || !std::isfinite(t.kld))
      throw Error("eval", "non-finite logits at token " + std::to_string(w.score_from + static_cast<int64_t>(i)) +
                              ": a model's weights overflow fp32 activations");
    acc.nll.add(t.nll);
    acc.ref_nll.add(t.ref_nll);
    acc.ln_ratio_sum += t.nll - t.ref_nll;
    acc.kld_sum += t.kld;
    acc.kld_sq += t.kld * t.kld;
    acc.agree += t.top1_agree;
    acc.klds.push_back(t.kld);
  }
}

CompareResult summarize(Accumulated& acc) {
  CompareResult r;
  const int64_t n = acc.nll.count;
  const double dn = static_cast<double>(n);
  r.tokens_scored = n;
  r.ppl = acc.nll.ppl();
  r.ppl_stderr = acc.nll.ppl_stderr();
  r.ref_ppl = acc.ref_nll.ppl();
  r.ref_ppl_stderr = acc.ref_nll.ppl_stderr();
  r.delta_ppl = r.ppl - r.ref_ppl;
  if (n == 0) return r;
  r.ln_ratio_mean = acc.ln_ratio_sum / dn;
  r.kld_mean = acc.kld_sum / dn;
  if (n >= 2) {
    const double var = std::max(0.0, (acc.kld_sq - dn * r.kld_mean * r.kld_mean) / (dn - 1.0));
    r.kld_stderr = std::sqrt(var / dn);
  }
  // NaNs (broken logits) sort last, so that the order stays strict-weak and kld_max shows them.
  std::sort(acc.klds.begin(), acc.klds.end(),
            [](double a, double b) { return a < b || (!std::isnan(a) && std::isnan(b)); });
  r.kld_median = percentile_nearest_rank(acc.klds, 0.5);
  r.kld_p90 = percentile_nearest_rank(acc.klds, 0.9);
  r.kld_p99 = percentile_nearest_rank(acc.klds, 0.99);
  r.kld_max = acc.klds.back();
  r.top1_agree = static_cast<double>(acc.agree) / dn;
  return r;
}

}  // namespace

TokenComparison compare_token(std::span<const float> ref_logits, std::span<const float> logits,
                              int32_t target) {
  LOWBIT_ASSERT(ref_logits.size() == logits.size() && !logits.empty());
  LOWBIT_ASSERT(target >= 0 && static_cast<size_t>(target) < logits.size());
  const RowStats r = row_stats(ref_logits), m = row_stats(logits);
  TokenComparison t;
  t.kld = kl_from_stats(ref_logits, r, logits, m);
  t.nll = token_nll(logits, target);  // perplexity()'s own scoring, so the ppls match it exactly
  t.ref_nll = token_nll(ref_logits, target);
  t.top1_agree = r.argmax == m.argmax;
  return t;
}

double kl_divergence(std::span<const float> ref_logits, std::span<const float> logits) {
  LOWBIT_ASSERT(ref_logits.size() == logits.size() && !logits.empty());
  return kl_from_stats(ref_logits, row_stats(ref_logits), logits, row_stats(logits));
}

double percentile_nearest_rank(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0.0;
  const double n = static_cast<double>(sorted.size());
  // The tiny shave keeps p·n that should be an integer (0.9 · 10) from rounding up a rank.
  const double rank = std::ceil(p * n * (1.0 - 1e-12));
  const int64_t i = std::clamp<int64_t>(static_cast<int64_t>(rank) - 1, 0,
                                        static_cast<int64_t>(sorted.size()) - 1);
  return sorted[static_cast<size_t>(i)];
}

void check_same_vocab(const LlamaModel& model, const LlamaModel& reference) {
  const int64_t v = model.config().vocab_size, ref_v = reference.config().vocab_size;
  if (v != ref_v)
    throw Error("eval", "the model's vocabulary has " + std::to_string(v) +
                            " tokens, the reference's " + std::to_string(ref_v) +
                            ": not comparable");
}

CompareResult compare_models(const LlamaModel& model, const LlamaModel& reference,
                             std::span<const int32_t> ids, int64_t ctx, int64_t stride,
                             const ProgressFn& progress, KvType kv_type) {
  check_same_vocab(model, reference);
  const int64_t V = model.config().vocab_size;
  const std::vector<Window> windows = plan_windows(static_cast<int64_t>(ids.size()), ctx, stride);
  const auto t0 = std::chrono::steady_clock::now();
  Accumulated acc;
  std::vector<float> logits, ref_logits;
  KvCache cache = model.new_cache(ctx, kv_type), ref_cache = reference.new_cache(ctx);
  for (size_t wi = 0; wi < windows.size(); ++wi) {
    const Window& w = windows[wi];
    const std::span<const int32_t> fed = ids.subspan(w.begin, w.end - w.begin);
    cache.n_past = 0;
    ref_cache.n_past = 0;
    model.forward(fed, cache, /*all_logits=*/true, logits);
    reference.forward(fed, ref_cache, /*all_logits=*/true, ref_logits);
    score_window(w, ids, V, ref_logits, logits, acc);
    if (progress) progress(static_cast<int64_t>(wi) + 1, static_cast<int64_t>(windows.size()));
  }
  CompareResult r = summarize(acc);
  r.windows = static_cast<int64_t>(windows.size());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace lowbit
