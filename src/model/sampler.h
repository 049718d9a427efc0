// Next-token selection from logits, with the usual controls applied in this order:
//   repeat penalty (over the last `repeat_last_n` tokens: positive logits divided by R,
//   negative multiplied, as llama.cpp does) -> temperature 0 = greedy argmax ->
//   top-k -> softmax(logits / T) -> top-p (smallest set with mass >= p) -> min-p (drop tokens
//   with prob < min_p * max prob) -> renormalise and draw with a seeded mt19937_64.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace lowbit {

struct SamplerParams {
  float temperature = 0.8f;  // 0 = greedy
  int32_t top_k = 40;        // <= 0 = off
  float top_p = 0.95f;       // >= 1 = off
  float min_p = 0.05f;       // <= 0 = off
  float repeat_penalty = 1.0f;  // 1 = off
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
};

// Throws lowbit::Error("sampler", ...) for out-of-range values (negative temperature, top_p
// outside (0, 1], min_p outside [0, 1], repeat_penalty <= 0).
void validate_sampler_params(const SamplerParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // `history` holds the tokens so far (prompt + generated), for the repeat penalty.
  // Throws lowbit::Error("generate", ...) when a logit is NaN or infinite (a model whose
  // weights overflow fp32 activations) instead of sampling garbage.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
};

int32_t argmax(std::span<const float> v);

}  // namespace lowbit
