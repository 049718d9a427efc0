// Prefill and decode throughput of a model on synthetic token ids (fixed seed).
// Prefill: one batch of n_prompt tokens from an empty cache. Decode: n_gen single-token steps
// after it. Each is run `repetitions` times after one warm-up; the mean is reported.
#pragma once

#include <cstdint>

#include "model/llama.h"

namespace lowbit {

struct BenchResult {
  int64_t n_prompt = 0, n_gen = 0, repetitions = 0, threads = 0;
  double prefill_tok_s = 0, decode_tok_s = 0;
  double prefill_tok_s_sd = 0, decode_tok_s_sd = 0;  // standard deviation over repetitions
  int64_t weight_bytes = 0;  // bytes of weights read per decoded token
  int64_t kv_bytes_per_token = 0;  // KV cache bytes one position takes (all layers, K and V)
  double bandwidth_gbs = 0;  // streaming-read bandwidth measured in the same run (0 if skipped)
  // decode_tok_s · weight_bytes / bandwidth: the fraction of the memory roofline decode reaches.
  // Above 1 when the weights fit in the last-level cache (small models).
  double roofline_fraction() const {
    return bandwidth_gbs > 0 ? decode_tok_s * static_cast<double>(weight_bytes) / (bandwidth_gbs * 1e9) : 0.0;
  }
};

BenchResult bench(const LlamaModel& model, int64_t n_prompt, int64_t n_gen, int64_t repetitions,
                  KvType kv_type = KvType::F32);

}  // namespace lowbit
