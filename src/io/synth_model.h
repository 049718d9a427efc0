// Synthetic models: an HF-layout directory (config.json + model.safetensors) with random
// weights of any LLaMA shape, for speed and memory tests at real sizes (e.g. Llama-2-7B layer
// shapes with a few layers). Linear weights ~ N(0, 0.02²), norm weights 1. No tokenizer is
// written (bench needs none; pass --tokenizer to generate text with one of a matching vocab).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/llama_config.h"

namespace lowbit {

struct SynthOptions {
  int64_t hidden = 4096, intermediate = 11008, layers = 2, heads = 32, kv_heads = 32;
  int64_t vocab = 32000, context = 4096;
  std::string dtype = "F16";  // F32, F16 or BF16
  uint64_t seed = 0;
};

// Throws lowbit::Error("synth", ...) for inconsistent shapes; writes atomically.
void write_synthetic_model(const std::string& dir, const SynthOptions& opt);

// An HF-layout directory (config.json + model.safetensors, F32) holding `tensors` (canonical
// name -> row-major values, every tensor canonical_tensor_shapes(c) names) for a model with
// config c (no biases, untied). Writes atomically; throws lowbit::Error("model", ...) when a
// tensor is missing or its size differs.
void write_hf_f32_model(const std::string& dir, const LlamaConfig& c,
                        const std::map<std::string, std::vector<float>>& tensors);

}  // namespace lowbit
