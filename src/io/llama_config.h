// The hyper-parameters of a LLaMA-family decoder (Llama 1/2/3, Mistral, Qwen2, llama2.c),
// filled by whichever loader read the model. Plain data; model/ validates it before use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

// How RoPE pairs the dimensions of a head.
//  RotateHalf:  dimension i pairs with i + head_dim/2 (HF transformers, GPT-NeoX).
//  Interleaved: dimension 2i pairs with 2i + 1 (llama2.c, Meta's original code, and GGUF llama
//               files, whose converter permuted the q/k rows so that this pairing is correct).
enum class RopeStyle : uint8_t { RotateHalf, Interleaved };

struct LlamaConfig {
  std::string architecture = "llama";  // "llama", "mistral", "qwen2" (informational)
  int64_t dim = 0;                     // hidden size
  int64_t hidden_dim = 0;              // MLP intermediate size
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;  // usually dim / n_heads
  int64_t vocab_size = 0;
  int64_t max_seq_len = 2048;  // training context (informational; the KV cache may be larger)
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeStyle rope_style = RopeStyle::RotateHalf;
  bool tie_embeddings = false;  // lm_head shares embed_tokens
  bool attention_bias = false;  // q/k/v projections have biases (Qwen2)
  int64_t bos_id = 1;
  int64_t eos_id = 2;
};

}  // namespace lowbit

namespace lowbit {
// Throws lowbit::Error("config", where + ": ...") unless every size is positive and consistent
// (dim == n_heads * head_dim is NOT required: some models use a different head_dim; but
// n_heads % n_kv_heads == 0 is, and head_dim must be even for RoPE).
void validate_llama_config(const LlamaConfig& c, const std::string& where);

// The row order GGUF and llama2.c store a q/k projection in for interleaved RoPE, relative to HF's
// rotate-half order: order[dst] = HF row, within each head dst 2i <- i and 2i+1 <- i + head_dim/2.
std::vector<int64_t> rope_interleave_order(int64_t n_heads, int64_t head_dim);
}  // namespace lowbit
