// Loads a llama-architecture GGUF file as a ModelSource (canonical names, see model_source.h).
//
// Contract: general.architecture must be "llama" (anything else throws lowbit::Error naming it).
// The config comes from the llama.* keys (embedding_length, feed_forward_length, block_count,
// attention.head_count[_kv], attention.layer_norm_rms_epsilon, rope.freq_base (default 10000),
// context_length, rope.dimension_count / attention.key_length (default dim / n_heads)), the
// vocab size from tokenizer.ggml.tokens (else llama.vocab_size, else token_embd rows), bos/eos
// from tokenizer.ggml.{bos,eos}_token_id. rope_style is Interleaved: llama.cpp's converter
// permutes the q/k rows of HF checkpoints so that adjacent-pair RoPE is correct.
// GGUF names map as token_embd->embed_tokens, output_norm->norm, output->lm_head (absent means
// tie_embeddings), blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_up,
// ffn_down} -> layers.N.{attn_norm,q_proj,k_proj,v_proj,o_proj,ffn_norm,gate_proj,up_proj,
// down_proj}. Every required tensor must exist with exactly the canonical shape; unknown
// tensors, rope scaling and tensor types lowbit cannot decode are rejected with an Error.
// The result's `gguf` (also in `owners`) keeps the mapping alive and exposes the metadata.
#pragma once

#include <string>

#include "io/model_source.h"

namespace lowbit {

ModelSource load_gguf_model(const std::string& path);

}  // namespace lowbit
