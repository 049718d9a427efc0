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
  KvType kv_type = KvType::F32;
};

struct GenerateStats {
  int64_t prompt_tokens = 0, generated = 0;
  bool hit_context = false;  // stopped because prompt + generated reached the model's context
  double prefill_seconds = 0, decode_seconds = 0;
};

// Calls on_token(id) for each new token; returning false stops generation. Generation also stops
// when the prompt plus the new tokens fill the model's context (config().max_seq_len), as
// llama.cpp does. Throws lowbit::Error("generate", ...) for an empty prompt, a negative
// max_new_tokens or a prompt longer than the context (whose prefill would also cost quadratic
// time).
GenerateStats generate(const LlamaModel& model, const std::vector<int32_t>& prompt,
                       const GenerateOptions& opt, const std::function<bool(int32_t)>& on_token);

}  // namespace lowbit
