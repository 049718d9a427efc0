// Loads a llama2.c fp32 checkpoint (Karpathy's run.c format) as a ModelSource.
//
// Legacy (version 0) layout: 7 x int32 header {dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, seq_len} (vocab_size < 0 means an unshared classifier of |vocab_size| rows), then
// fp32 arrays: token_embedding [V,D], rms_att [L,D], wq [L,D,D], wk [L,Dkv,D], wv [L,Dkv,D],
// wo [L,D,D], rms_ffn [L,D], w1 [L,H,D], w2 [L,D,H], w3 [L,H,D], rms_final [D],
// freq_cis_real [seq_len, head_size/2], freq_cis_imag [same] (skipped), wcls [V,D] if unshared.
// Version 1 ("ak42" magic 0x616b3432, int32 version 1, the same 7 ints, u8 shared flag, zero
// padding to 256 bytes) stores fp32 rms_att[L], rms_ffn[L], rms_final, token_embedding, wq, wk,
// wv, wo, w1, w2, w3, then wcls if unshared; it is supported too. Version 2 (Q8_0) is rejected.
//
// Contract: the file size must equal exactly what the header implies, header fields must be
// positive and sane, dim % n_heads == 0, n_heads % n_kv_heads == 0; otherwise throws
// lowbit::Error("llama2c", path + ": ..."). Views are F32 into the mapping (kept in `owners`),
// named canonically (w1 = gate_proj, w3 = up_proj, w2 = down_proj, rms_att = attn_norm,
// rms_ffn = ffn_norm, wcls = lm_head). Config: rope Interleaved, tie_embeddings = shared
// classifier, norm_eps 1e-5, rope_theta 10000, bos 1, eos 2, max_seq_len = seq_len.
#pragma once

#include <string>

#include "io/model_source.h"

namespace lowbit {

ModelSource load_llama2c_model(const std::string& path);

}  // namespace lowbit
