#include "train/grad_ops.h"

#include <algorithm>
#include <cmath>

#include "base/gemm.h"
#include "base/parallel.h"
#include "model/attention.h"

namespace lowbit {

template <class Real>
void rms_norm_backward(const Real* x, const Real* w, int64_t n, float eps, const Real* dy, Real* dx,
                       Real* dw) {
  double ss = 0.0, dot = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    ss += static_cast<double>(x[i]) * x[i];
    dot += static_cast<double>(dy[i]) * w[i] * x[i];
  }
  const double s = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  const double k = s * s * s * dot / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    dx[i] = static_cast<Real>(s * w[i] * dy[i] - x[i] * k);
    if (dw) dw[i] += static_cast<Real>(dy[i] * x[i] * s);
  }
}

template <class Real>
void rope_backward(const LlamaConfig& c, const std::vector<double>& inv_freq, Real* dv, int64_t T,
                   int64_t n_heads, int64_t pos0) {
  // The rotation by −θ is the transpose of the rotation by θ: negate every frequency.
  std::vector<double> neg(inv_freq.size());
  std::transform(inv_freq.begin(), inv_freq.end(), neg.begin(), [](double f) { return -f; });
  apply_rope(c, neg, dv, T, n_heads, pos0);
}

namespace {

// dS = P ∘ (dP − rowsum(P ∘ dP)) · scale in place of dP (the softmax's backward, times the
// logits' scale); entries above the diagonal become 0.
template <class Real>
void softmax_backward_rows(const Real* p, Real* dp, int64_t T, Real scale) {
  for (int64_t t = 0; t < T; ++t) {
    const Real* pr = p + t * T;
    Real* dr = dp + t * T;
    double pdp = 0.0;
    for (int64_t j = 0; j <= t; ++j) pdp += static_cast<double>(pr[j]) * dr[j];
    for (int64_t j = 0; j <= t; ++j) dr[j] = static_cast<Real>(pr[j] * (dr[j] - pdp)) * scale;
    std::fill(dr + t + 1, dr + T, Real(0));
  }
}

}  // namespace

// Per query head h (kv head g): P = softmax(scale·Q_h·K_gᵀ) recomputed, dV_g += Pᵀ·dO_h,
// dP = dO_h·V_gᵀ, dS = softmax backward, dQ_h = dS·K_g, dK_g += dSᵀ·Q_h — five GEMMs on
// strided views of the [T, heads·hd] buffers, threads split over kv heads.
template <class Real>
void causal_attention_backward(const LlamaConfig& c, const Real* q, const Real* k, const Real* v,
                               int64_t T, const Real* dout, Real* dq, Real* dk, Real* dv) {
  const int64_t hd = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int64_t dqw = nh * hd, dkv = nkv * hd, group = nh / nkv;
  const Real scale = Real(1) / std::sqrt(static_cast<Real>(hd));
  parallel_for(nkv, [&](int64_t kv0, int64_t kv1) {
    thread_local std::vector<Real> p, ds;  // [T, T] each, kept per thread across calls
    p.resize(static_cast<size_t>(T * T));
    ds.resize(static_cast<size_t>(T * T));
    for (int64_t g = kv0; g < kv1; ++g) {
      const int64_t off = g * hd;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const Real beta = h == g * group ? Real(0) : Real(1);  // the group's first head overwrites dK, dV
        gemm_serial<Real>(false, true, T, T, hd, Real(1), q + h * hd, dqw, k + off, dkv, Real(0), p.data(), T);
        causal_softmax(p.data(), T, T, T, 0, scale);
        gemm_serial<Real>(true, false, T, hd, T, Real(1), p.data(), T, dout + h * hd, dqw, beta, dv + off, dkv);
        gemm_serial<Real>(false, true, T, T, hd, Real(1), dout + h * hd, dqw, v + off, dkv, Real(0), ds.data(), T);
        softmax_backward_rows(p.data(), ds.data(), T, scale);
        gemm_serial<Real>(false, false, T, hd, T, Real(1), ds.data(), T, k + off, dkv, Real(0), dq + h * hd, dqw);
        gemm_serial<Real>(true, false, T, hd, T, Real(1), ds.data(), T, q + h * hd, dqw, beta, dk + off, dkv);
      }
    }
  });
}

template <class Real>
void swiglu_backward(const Real* g, const Real* u, const Real* dh, int64_t n, Real* dg, Real* du) {
  for (int64_t i = 0; i < n; ++i) {
    const Real sig = Real(1) / (Real(1) + std::exp(-g[i]));
    dg[i] = dh[i] * u[i] * sig * (Real(1) + g[i] * (Real(1) - sig));
    du[i] = dh[i] * g[i] * sig;
  }
}

namespace {

// log Σ exp(z[i]) in double.
template <class Real>
double log_sum_exp(const Real* z, int64_t V) {
  const double mx = static_cast<double>(*std::max_element(z, z + V));
  double sum = 0.0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(z[i]) - mx);
  return mx + std::log(sum);
}

}  // namespace

template <class Real>
double cross_entropy(const Real* logits, int64_t T, int64_t V, const int32_t* targets,
                     double grad_scale, Real* dlogits) {
  double loss = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const Real* z = logits + t * V;
    Real* dz = dlogits ? dlogits + t * V : nullptr;
    if (targets[t] < 0) {
      if (dz) std::fill(dz, dz + V, Real(0));
      continue;
    }
    const double lse = log_sum_exp(z, V);
    loss += lse - static_cast<double>(z[targets[t]]);
    if (!dz) continue;
    for (int64_t i = 0; i < V; ++i)
      dz[i] = static_cast<Real>(grad_scale * std::exp(static_cast<double>(z[i]) - lse));
    dz[targets[t]] -= static_cast<Real>(grad_scale);
  }
  return loss;
}

template <class Real>
double kl_divergence(const float* teacher, const Real* student, int64_t T, int64_t V, const int32_t* mask,
                     double grad_scale, Real* dstudent) {
  double loss = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const float* p = teacher + t * V;
    const Real* z = student + t * V;
    Real* dz = dstudent ? dstudent + t * V : nullptr;
    if (mask[t] < 0) {
      if (dz) std::fill(dz, dz + V, Real(0));
      continue;
    }
    const double lse_p = log_sum_exp(p, V), lse_q = log_sum_exp(z, V);
    for (int64_t i = 0; i < V; ++i) {
      const double log_p = static_cast<double>(p[i]) - lse_p, log_q = static_cast<double>(z[i]) - lse_q;
      const double pi = std::exp(log_p);
      if (pi > 0) loss += pi * (log_p - log_q);
      if (dz) dz[i] = static_cast<Real>(grad_scale * (std::exp(log_q) - pi));
    }
  }
  return loss;
}

#define LOWBIT_INSTANTIATE(Real)                                                                  \
  template void rms_norm_backward<Real>(const Real*, const Real*, int64_t, float, const Real*,   \
                                        Real*, Real*);                                            \
  template void rope_backward<Real>(const LlamaConfig&, const std::vector<double>&, Real*, int64_t, \
                                    int64_t, int64_t);                                            \
  template void causal_attention_backward<Real>(const LlamaConfig&, const Real*, const Real*,     \
                                                const Real*, int64_t, const Real*, Real*, Real*,  \
                                                Real*);                                           \
  template void swiglu_backward<Real>(const Real*, const Real*, const Real*, int64_t, Real*, Real*); \
  template double cross_entropy<Real>(const Real*, int64_t, int64_t, const int32_t*, double, Real*); \
  template double kl_divergence<Real>(const float*, const Real*, int64_t, int64_t, const int32_t*, double, Real*);
LOWBIT_INSTANTIATE(float)
LOWBIT_INSTANTIATE(double)
#undef LOWBIT_INSTANTIATE

}  // namespace lowbit
