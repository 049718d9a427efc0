#include "train/grad_ops.h"

#include <algorithm>
#include <cmath>

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

// One query row's softmax over keys 0..t into p (double), as causal_attention computes it.
template <class Real>
void attention_probs(const Real* qv, const Real* k, int64_t dkv, int64_t off, int64_t hd, int64_t n_keys,
                     Real scale, std::vector<double>& p) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < n_keys; ++j) {
    Real s = 0;
    for (int64_t d = 0; d < hd; ++d) s += qv[d] * k[j * dkv + off + d];
    p[j] = static_cast<double>(s * scale);
    mx = std::max(mx, p[j]);
  }
  double sum = 0.0;
  for (int64_t j = 0; j < n_keys; ++j) sum += (p[j] = std::exp(p[j] - mx));
  for (int64_t j = 0; j < n_keys; ++j) p[j] /= sum;
}

}  // namespace

template <class Real>
void causal_attention_backward(const LlamaConfig& c, const Real* q, const Real* k, const Real* v,
                               int64_t T, const Real* dout, Real* dq, Real* dk, Real* dv) {
  const int64_t hd = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int64_t dqw = nh * hd, dkv = nkv * hd, group = nh / nkv;
  const Real scale = Real(1) / std::sqrt(static_cast<Real>(hd));
  parallel_for(nkv, [&](int64_t kv0, int64_t kv1) {
    std::vector<double> p(static_cast<size_t>(T)), dp(static_cast<size_t>(T));
    for (int64_t kvh = kv0; kvh < kv1; ++kvh) {
      const int64_t off = kvh * hd;
      for (int64_t j = 0; j < T; ++j) {
        std::fill(dk + j * dkv + off, dk + j * dkv + off + hd, Real(0));
        std::fill(dv + j * dkv + off, dv + j * dkv + off + hd, Real(0));
      }
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t t = 0; t < T; ++t) {
          const Real* qv = q + t * dqw + h * hd;
          const Real* go = dout + t * dqw + h * hd;
          Real* gq = dq + t * dqw + h * hd;
          attention_probs(qv, k, dkv, off, hd, t + 1, scale, p);
          double pdp = 0.0;  // Σ_j p_j · dP_j, dP_j = dout · v_j
          for (int64_t j = 0; j <= t; ++j) {
            double s = 0.0;
            for (int64_t d = 0; d < hd; ++d) s += static_cast<double>(go[d]) * v[j * dkv + off + d];
            dp[j] = s;
            pdp += p[j] * s;
          }
          std::fill(gq, gq + hd, Real(0));
          for (int64_t j = 0; j <= t; ++j) {
            const Real ds = static_cast<Real>(p[j] * (dp[j] - pdp)) * scale;  // ∂/∂(q·k_j)
            const Real pj = static_cast<Real>(p[j]);
            Real* gk = dk + j * dkv + off;
            Real* gv = dv + j * dkv + off;
            const Real* kj = k + j * dkv + off;
            for (int64_t d = 0; d < hd; ++d) {
              gq[d] += ds * kj[d];
              gk[d] += ds * qv[d];
              gv[d] += pj * go[d];
            }
          }
        }
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
    const double mx = static_cast<double>(*std::max_element(z, z + V));
    double sum = 0.0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(z[i]) - mx);
    const double lse = mx + std::log(sum);
    loss += lse - static_cast<double>(z[targets[t]]);
    if (!dz) continue;
    for (int64_t i = 0; i < V; ++i)
      dz[i] = static_cast<Real>(grad_scale * std::exp(static_cast<double>(z[i]) - lse));
    dz[targets[t]] -= static_cast<Real>(grad_scale);
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
  template double cross_entropy<Real>(const Real*, int64_t, int64_t, const int32_t*, double, Real*);
LOWBIT_INSTANTIATE(float)
LOWBIT_INSTANTIATE(double)
#undef LOWBIT_INSTANTIATE

}  // namespace lowbit
