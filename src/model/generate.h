// Autoregressive generation: prefill the prompt as one batch, then decode token by token.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/llama.h"
#include "model/sampler.h"

namespace lowbit {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  bool stop_at_eos = true;
  int32_t eos_id = -1;  // -1: never stop on a token
  SamplerParams sampler;
};

struct GenerateStats {
  int64_t prompt_tokens = 0, generated = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Calls on_token(id) for each new token; returning false stops generation.
GenerateStats generate(const LlamaModel& model, const std::vector<int32_t>& prompt,
                       const GenerateOptions& opt, const std::function<bool(int32_t)>& on_token);

}  // namespace lowbit
