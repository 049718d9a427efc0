// What every model loader (HF safetensors dir, GGUF, llama2.c .bin) produces: the config and
// views of the stored tensors under canonical names, plus whatever keeps those views alive.
//
// Canonical tensor names (shapes row-major, outermost first; D = dim, H = hidden_dim,
// Dq = n_heads * head_dim, Dkv = n_kv_heads * head_dim, V = vocab_size):
//   embed_tokens            [V, D]
//   norm                    [D]        final RMSNorm weight
//   lm_head                 [V, D]     absent when config.tie_embeddings
//   layers.{i}.attn_norm    [D]
//   layers.{i}.q_proj       [Dq, D]    q_bias [Dq]   (biases only when config.attention_bias)
//   layers.{i}.k_proj       [Dkv, D]   k_bias [Dkv]
//   layers.{i}.v_proj       [Dkv, D]   v_bias [Dkv]
//   layers.{i}.o_proj       [D, Dq]
//   layers.{i}.ffn_norm     [D]
//   layers.{i}.gate_proj    [H, D]
//   layers.{i}.up_proj      [H, D]
//   layers.{i}.down_proj    [D, H]
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/low_rank_factors.h"
#include "formats/quantized_matrix.h"
#include "io/llama_config.h"
#include "io/tensor.h"

namespace lowbit {

class GgufFile;

// A tokenizer stored inside a model container (.lowbit): its kind and serialized bytes, as
// Tokenizer::to_blob() produced them.
struct EmbeddedTokenizer {
  std::string kind, bytes;
};

struct ModelSource {
  std::string format;  // "safetensors", "gguf", "llama2c", "lowbit"
  std::string path;    // what the user named
  LlamaConfig config;
  std::map<std::string, TensorView> tensors;  // canonical name -> view (unquantized tensors)
  // Canonical name -> low-bit matrix (.lowbit files). A name is in `tensors` or here, not both.
  std::map<std::string, QuantizedMatrix> quantized;
  std::map<std::string, std::string> recipes;  // canonical name -> recipe that produced it
  std::string recipe;                          // the whole-model recipe (.lowbit files)
  std::string rotation;  // .lowbit files: JSON of the rotation folded into the weights, or empty
  // .lowbit files: matrices stored as W·H whose input must be rotated by
  // Rotation::random_hadamard(cols, seed) at run time (canonical name -> seed).
  std::map<std::string, uint64_t> input_hadamard;
  // .lowbit files: quantized matrices whose weight is Ŵ + B·A, a stored low-rank correction of
  // their quantization error (":lr<r>" recipes; canonical name -> factors, fp16 values as fp32).
  std::map<std::string, LowRankFactors> corrections;
  EmbeddedTokenizer embedded_tokenizer;        // kind empty when none
  std::vector<std::shared_ptr<const void>> owners;  // keep mappings alive
  std::shared_ptr<const GgufFile> gguf;  // set for GGUF sources (its metadata holds the vocab)

  const TensorView& tensor(const std::string& name) const;  // throws lowbit::Error if missing
  bool has(const std::string& name) const { return tensors.count(name) || quantized.count(name); }
  // [rows, cols] (or [n]) of a tensor in either map; throws lowbit::Error if missing.
  std::vector<int64_t> shape(const std::string& name) const;
};

}  // namespace lowbit

namespace lowbit {
// Canonical name -> expected shape for every tensor a model with config `c` must have:
// embed_tokens, per layer its weights (+ q/k/v biases when attention_bias), norm, and lm_head
// unless tie_embeddings.
std::vector<std::pair<std::string, std::vector<int64_t>>> canonical_tensor_shapes(
    const LlamaConfig& c);

// "[64, 512]"
std::string shape_to_string(const std::vector<int64_t>& shape);

// Checks that every canonical tensor the config implies is present with exactly the expected
// shape and a supported dtype; throws lowbit::Error naming the tensor, expected and found shape.
void check_canonical_tensors(const ModelSource& src);
}  // namespace lowbit
