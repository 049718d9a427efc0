#include "eval/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/parallel.h"

namespace lowbit {

namespace {

struct MeanSd {
  double mean = 0, sd = 0;
};

MeanSd mean_sd(const std::vector<double>& v) {
  MeanSd r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  for (double x : v) r.sd += (x - r.mean) * (x - r.mean);
  r.sd = v.size() > 1 ? std::sqrt(r.sd / static_cast<double>(v.size() - 1)) : 0.0;
  return r;
}

// Returns {prefill seconds, decode seconds} for one run.
std::pair<double, double> run_once(const LlamaModel& m, const std::vector<int32_t>& prompt, int64_t n_gen,
                                   KvType kv_type) {
  KvCache cache = m.new_cache(static_cast<int64_t>(prompt.size()) + n_gen, kv_type);
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  m.forward(prompt, cache, false, logits);
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n_gen; ++i) {
    const int32_t tok = static_cast<int32_t>((prompt[i % prompt.size()] + i) % m.config().vocab_size);
    m.forward({&tok, 1}, cache, false, logits);
  }
  auto t2 = std::chrono::steady_clock::now();
  return {std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count()};
}

}  // namespace

BenchResult bench(const LlamaModel& model, int64_t n_prompt, int64_t n_gen, int64_t repetitions, KvType kv_type) {
  if (n_prompt < 1 || n_gen < 1 || repetitions < 1)
    throw Error("bench", "-p, -n and --reps must be positive");
  if (n_gen > model.config().max_seq_len - std::min(n_prompt, model.config().max_seq_len))
    throw Error("bench", "-p " + std::to_string(n_prompt) + " plus -n " + std::to_string(n_gen) +
                             " tokens exceed the model's context of " + std::to_string(model.config().max_seq_len));
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(model.config().vocab_size - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(n_prompt));
  for (auto& t : prompt) t = pick(rng);
  run_once(model, prompt, 2, kv_type);  // warm-up at full size: buffers, caches and pages settle
  std::vector<double> pre, dec;
  for (int64_t r = 0; r < repetitions; ++r) {
    auto [p, d] = run_once(model, prompt, n_gen, kv_type);
    pre.push_back(static_cast<double>(n_prompt) / p);
    dec.push_back(static_cast<double>(n_gen) / d);
  }
  BenchResult res;
  res.n_prompt = n_prompt;
  res.n_gen = n_gen;
  res.repetitions = repetitions;
  res.threads = num_threads();
  const MeanSd p = mean_sd(pre), d = mean_sd(dec);
  res.prefill_tok_s = p.mean;
  res.prefill_tok_s_sd = p.sd;
  res.decode_tok_s = d.mean;
  res.decode_tok_s_sd = d.sd;
  res.weight_bytes = model.decode_weight_bytes();
  res.kv_bytes_per_token = model.new_cache(1, kv_type).bytes();
  return res;
}

}  // namespace lowbit
