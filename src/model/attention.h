// The position-dependent parts of a LLaMA attention block, shared by the model's forward pass
// and by the calibration pipeline (which runs layers one at a time on calibration windows).
//
// Numerics: RoPE angles pos·θ^(-2i/head_dim) and their cos/sin are computed in double per
// position, then rounded to fp32; attention scores accumulate in fp32, softmax subtracts the row
// max and sums the exponentials in double.
#pragma once

#include <cstdint>
#include <vector>

#include "io/llama_config.h"

namespace lowbit {

// θ^(-2i/head_dim) for i in [0, head_dim/2).
std::vector<double> rope_inv_freq(const LlamaConfig& c);

// Rotates each head of v[T, n_heads * head_dim] by its position's angles (positions pos0 ...).
// RotateHalf pairs (i, i + half); Interleaved pairs (2i, 2i + 1). With inv_freq negated it
// applies the transposed rotation (training's backward pass).
// Real is float (inference) or double (gradient checks); both instantiated in attention.cpp.
template <class Real>
void apply_rope(const LlamaConfig& c, const std::vector<double>& inv_freq, Real* v, int64_t T,
                int64_t n_heads, int64_t pos0);

// out[T, n_heads * head_dim]: for query t (position pos0 + t) and head h, the softmax-weighted sum
// over keys 0 .. pos0 + t of kv head h / (n_heads / n_kv_heads), scores scaled by
// 1/sqrt(head_dim). k and v hold at least pos0 + T rows of n_kv_heads * head_dim floats
// (already rotated keys). Loops over (t, h) on the threads: the inference path, and the oracle
// of causal_attention_gemm.
template <class Real>
void causal_attention(const LlamaConfig& c, const Real* q, int64_t T, const Real* k,
                      const Real* v, int64_t pos0, Real* out);

// The same result computed per head as S = Q·Kᵀ, P = causal_softmax(S), O = P·V with
// single-threaded GEMMs, threads split over heads: training's forward (long T, many
// sequences). Scores are summed in the BLAS kernel's order, so outputs differ from
// causal_attention by fp32 rounding (~1e-6 relative). Inference keeps causal_attention: its
// int8-activation kernels can turn such rounding into visible logit changes between models
// that are equal in exact arithmetic (a GGUF/llama2.c model and its HF export).
template <class Real>
void causal_attention_gemm(const LlamaConfig& c, const Real* q, int64_t T, const Real* k,
                           const Real* v, int64_t pos0, Real* out);

// Row t of s[T, ld] (query position pos0 + t) ← softmax over columns 0 .. pos0 + t of
// scale · s (max subtracted, exponentials summed in double); later columns up to n_cols become 0.
// fp32 rows use exp_nonpositive_f32 (vectorised, ≤ 2.5e-7 relative), double rows std::exp.
float exp_nonpositive_f32(float x);  // e^x for x <= 0, see causal_softmax
template <class Real>
void causal_softmax(Real* s, int64_t T, int64_t ld, int64_t n_cols, int64_t pos0, Real scale);

}  // namespace lowbit
