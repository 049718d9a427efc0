// Backward passes of the llama block's ops, for training (train/). Each is the exact derivative
// of the forward op model/ runs (rms_norm, apply_rope, causal_attention, SwiGLU) or of the
// training loss (cross-entropy). Real is float (training) or double (finite-difference checks).
//
// Numerics: reductions (RMS statistics, softmax sums, the Σ p·dP term) accumulate in double;
// attention probabilities are recomputed from q and k (nothing of size T² is stored).
#pragma once

#include <cstdint>
#include <vector>

#include "io/llama_config.h"

namespace lowbit {

// y = x · s · w with s = 1/sqrt(mean(x²) + eps):
//   dx_i = s·w_i·dy_i − x_i · s³/n · Σ_j dy_j·w_j·x_j      (written to dx)
//   dw_i += dy_i · x_i · s                                   (if dw is non-null)
template <class Real>
void rms_norm_backward(const Real* x, const Real* w, int64_t n, float eps, const Real* dy, Real* dx,
                       Real* dw);

// The transposed RoPE rotation, in place: the gradient of apply_rope(v) at positions pos0 ...
template <class Real>
void rope_backward(const LlamaConfig& c, const std::vector<double>& inv_freq, Real* dv, int64_t T,
                   int64_t n_heads, int64_t pos0);

// The gradient of causal_attention(c, q, T, k, v, pos0 = 0, out) for one sequence of T
// positions: q [T, n_heads·hd], k and v [T, n_kv_heads·hd] (k already rotated), dout like q.
// Writes (overwrites) dq, dk, dv. Threads split the kv heads (each owns its dk/dv columns).
template <class Real>
void causal_attention_backward(const LlamaConfig& c, const Real* q, const Real* k, const Real* v,
                               int64_t T, const Real* dout, Real* dq, Real* dk, Real* dv);

// h = silu(g) · u elementwise (n values): dg = dh·u·σ(g)·(1 + g·(1 − σ(g))), du = dh·silu(g).
template <class Real>
void swiglu_backward(const Real* g, const Real* u, const Real* dh, int64_t n, Real* dg, Real* du);

// Σ over rows t with targets[t] >= 0 of −log softmax(logits[t])[targets[t]]; rows with a
// negative target carry no loss. If dlogits is non-null it receives grad_scale · ∂loss/∂logits
// (zero rows where masked). logits [T, V].
template <class Real>
double cross_entropy(const Real* logits, int64_t T, int64_t V, const int32_t* targets,
                     double grad_scale, Real* dlogits);

// Distillation loss: Σ over rows t with mask[t] >= 0 of KL(P_t ‖ Q_t) = Σ_v P(v)·(log P(v) −
// log Q(v)), P = softmax(teacher[t]), Q = softmax(student[t]); masked rows carry no loss. If
// dstudent is non-null it receives grad_scale · (Q − P) (the exact gradient; zero rows where
// masked). teacher and student [T, V]. 0·log 0 counts as 0.
template <class Real>
double kl_divergence(const float* teacher, const Real* student, int64_t T, int64_t V, const int32_t* mask,
                     double grad_scale, Real* dstudent);

}  // namespace lowbit
