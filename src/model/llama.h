// A LLaMA-family decoder in fp32: weights plus the forward pass.
//
//   x = embed[tokens]
//   per layer:  x += o( attn( rope(q(rms(x))), rope(k(rms(x))), v(rms(x)) ) )      (GQA, causal)
//               x += down( silu(gate(rms(x))) * up(rms(x)) )                       (SwiGLU)
//   logits = lm_head( rms(x) )
//
// Numerics: matrix products accumulate in fp32; RMSNorm sums squares in double; RoPE angles and
// cos/sin are computed in double per position; softmax subtracts the row max.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/llama_config.h"
#include "io/model_source.h"
#include "model/embedding_table.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/matrix.h"

namespace lowbit {

struct LayerWeights {
  Matrix attn_norm;                   // [1, D]
  Linear q_proj, k_proj, v_proj;      // [Dq, D], [Dkv, D], [Dkv, D]
  Matrix q_bias, k_bias, v_bias;      // [1, Dq], [1, Dkv], [1, Dkv]; empty unless attention_bias
  Linear o_proj;                      // [D, Dq]
  Matrix ffn_norm;                    // [1, D]
  Linear gate_proj, up_proj;          // [H, D]
  Linear down_proj;                   // [D, H]
};

struct LlamaWeights {
  EmbeddingTable embed_tokens;  // [V, D] in its stored form, rows decoded on lookup
  Matrix norm;                  // [1, D]
  Linear lm_head;               // [V, D]; when tied, fp32, and embed_tokens reads its rows
  std::vector<LayerWeights> layers;
};

// One sequence's share of a batched forward pass: its new tokens (at positions cache->n_past ...),
// its own KV cache, and whether it wants logits for every new token or only the last.
struct BatchSequence {
  std::span<const int32_t> tokens;
  KvCache* cache = nullptr;
  bool all_logits = false;
  std::span<const AdapterUse> adapters = {};  // switchable adapters this sequence runs with
};

class LlamaModel {
 public:
  // Builds the weights from a validated source (keeps source's mappings alive): plain tensors
  // become fp32 matrices, quantized ones are packed for `isa`'s kernels.
  explicit LlamaModel(const ModelSource& src, Isa isa = best_isa());

  const LlamaConfig& config() const { return config_; }
  const LlamaWeights& weights() const { return weights_; }
  // Bytes of weights one decoded token reads (every linear layer, lm_head and the norms).
  int64_t decode_weight_bytes() const;

  // An empty cache for `capacity` tokens stored as `type` (model/kv_cache.h). Throws
  // lowbit::Error("model", ...) when capacity < 1 or its size (layers x capacity x row bytes,
  // twice) would pass 2^42 bytes.
  KvCache new_cache(int64_t capacity, KvType type = KvType::F32) const;
  // An empty paged cache: the caller appends blocks of `block_rows` positions (new_kv_block, or
  // full blocks shared with another cache of the same model and type) before each forward.
  // Throws lowbit::Error("model", ...) for block_rows outside [1, 2^20].
  KvCache new_paged_cache(int64_t block_rows, KvType type = KvType::F32) const;

  // The linear layer of a canonical tensor name ("layers.3.q_proj", "lm_head"); nullptr if
  // there is none (norms, embeddings, unknown names, a tied lm_head).
  const Linear* find_linear(const std::string& name) const;
  // Adds a low-rank update (LoRA adapter) to that layer's matmuls. Throws lowbit::Error if the
  // name is not a linear layer or the shapes differ.
  void add_delta(const std::string& name, std::shared_ptr<const LowRankDelta> d);
  // Replaces a packed linear layer's matrix by one of the same shape and spec family (scale
  // tuning writes its scales back this way). Throws lowbit::Error if there is no such packed
  // layer or the shape differs.
  void replace_packed(const std::string& name, PackedMatrix p);
  // Registers an adapter that sequences switch on one by one (BatchSequence::adapters: a server's
  // per-request LoRA) and returns its index. Each entry names a block linear layer as add_delta
  // does (lm_head is refused). Throws lowbit::Error("model", ...) for a bad name or shape.
  int32_t add_switchable_adapter(const std::vector<std::pair<std::string, std::shared_ptr<const LowRankDelta>>>& deltas);
  int32_t switchable_adapters() const { return n_switchable_; }
  // Evaluation mode: every linear layer of the blocks (not lm_head) rounds its input to `a`
  // (model/act_quant.h); ActQuant{} turns it off.
  void set_activation_quant(const ActQuant& a);

  // Runs `tokens` at positions cache.n_past ... and appends them to the cache. Writes logits
  // [tokens.size(), V] into `logits` if all_logits, else only the last position's [V].
  // Throws lowbit::Error if a token id is out of range or the cache would overflow.
  void forward(std::span<const int32_t> tokens, KvCache& cache, bool all_logits,
               std::vector<float>& logits) const;
  // Several sequences in one pass (a server's continuous batch): the linear layers multiply the
  // rows of all sequences at once, so each weight is read once per step; RoPE and attention run
  // per sequence on its own cache. `logits` gets, sequence after sequence, [tokens.size(), V]
  // rows for all_logits sequences and one [V] row for the others. Every row is computed exactly
  // as forward() would compute it for that sequence alone as long as the layers' kernels are
  // row-independent (packed kernels are; dense fp32 uses a different summation order for one row
  // than for several). Checks everything before changing any cache: throws lowbit::Error for an
  // empty batch or sequence, a null or repeated cache, a token id out of range or a cache overflow.
  void forward_batch(std::span<const BatchSequence> seqs, std::vector<float>& logits) const;

  // For measurements that change one layer at a time (the bit allocation's KLD probes): the
  // hidden states entering each layer for `tokens` at positions 0, 1, ... of a fresh cache,
  // [n_layers + 1][T·D] (the last: the final norm's input), and the logits [T, V] of every
  // position computed from layer first_layer's input x on (layers before it are not run; a model
  // that differs from the one that made x only in layers >= first_layer gives what its own
  // forward gives). Both throw lowbit::Error as forward does; forward_from_layer also for a
  // layer outside [0, n_layers] or an x that is not [T, D].
  std::vector<std::vector<float>> layer_inputs(std::span<const int32_t> tokens) const;
  void forward_from_layer(int64_t first_layer, std::span<const int32_t> tokens, std::vector<float> x,
                          std::vector<float>& logits) const;

 private:
  void attention_block(const LayerWeights& lw, int64_t layer, float* x, std::span<const BatchSequence> seqs,
                       int64_t T, std::span<const RowAdapter> ra) const;
  void mlp_block(const LayerWeights& lw, float* x, int64_t T, std::span<const RowAdapter> ra) const;
  // Blocks [first, last) over the rows x [T, D] in place.
  void run_layers(int64_t first, int64_t last, float* x, std::span<const BatchSequence> seqs, int64_t T,
                  std::span<const RowAdapter> ra) const;
  // The final norm and lm_head over x [T, D] for the rows each sequence wants; advances the
  // sequences' caches past their tokens.
  void head(std::span<const BatchSequence> seqs, const std::vector<float>& x, std::vector<float>& logits) const;

  LlamaConfig config_;
  LlamaWeights weights_;
  std::vector<std::shared_ptr<const void>> owners_;
  std::vector<double> inv_freq_;  // [head_dim/2]: theta^(-2i/head_dim)
  int32_t n_switchable_ = 0;
};

// out[i] = x[i] / sqrt(mean(x²) + eps) * w[i]   (Real: float, or double for gradient checks)
template <class Real>
void rms_norm(const Real* x, const Real* w, int64_t n, float eps, Real* out);

}  // namespace lowbit
