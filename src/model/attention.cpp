#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "base/gemm.h"
#include "base/parallel.h"

namespace lowbit {

std::vector<double> rope_inv_freq(const LlamaConfig& c) {
  std::vector<double> f;
  for (int64_t i = 0; i < c.head_dim / 2; ++i)
    f.push_back(std::pow(static_cast<double>(c.rope_theta),
                         -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim)));
  return f;
}

template <class Real>
void apply_rope(const LlamaConfig& c, const std::vector<double>& inv_freq, Real* v, int64_t T,
                int64_t n_heads, int64_t pos0) {
  const int64_t hd = c.head_dim, half = hd / 2;
  const bool interleaved = c.rope_style == RopeStyle::Interleaved;
  std::vector<Real> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
  for (int64_t t = 0; t < T; ++t) {
    const double pos = static_cast<double>(pos0 + t);
    for (int64_t i = 0; i < half; ++i) {
      cs[i] = static_cast<Real>(std::cos(pos * inv_freq[i]));
      sn[i] = static_cast<Real>(std::sin(pos * inv_freq[i]));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      Real* x = v + (t * n_heads + h) * hd;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
        const Real x0 = x[a], x1 = x[b];
        x[a] = x0 * cs[i] - x1 * sn[i];
        x[b] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

namespace {

// e^x for x <= 0 in fp32 without a libm call, so that the loop over a row vectorises:
// x = n·ln2 + r with |r| <= ln2/2 (Cody–Waite split of ln2), e^r by its degree-6 Taylor
// polynomial (truncation < 1.2e-7 relative there), times 2^n built in the exponent bits. Relative
// error <= 2.5e-7 (tested against std::exp); x below −87 (e^x < 1.7e-38) returns e^−87.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  const float n = std::floor(x * 1.44269504f + 0.5f);
  float r = std::fma(n, -0.693145752f, x);
  r = std::fma(n, -1.42860677e-6f, r);
  float p = 1.0f / 720.0f;
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace

float exp_nonpositive_f32(float x) { return exp_nonpositive(x); }

template <class Real>
void causal_softmax(Real* s, int64_t T, int64_t ld, int64_t n_cols, int64_t pos0, Real scale) {
  for (int64_t t = 0; t < T; ++t) {
    Real* row = s + t * ld;
    const int64_t n = pos0 + t + 1;
    Real mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j] *= scale);
    if constexpr (std::is_same_v<Real, float>) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) row[j] = exp_nonpositive(row[j] - mx);
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] = std::exp(row[j] - mx);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) sum += row[j];
    const Real inv = static_cast<Real>(1.0 / sum);
    for (int64_t j = 0; j < n; ++j) row[j] *= inv;
    std::fill(row + n, row + n_cols, Real(0));
  }
}

// Per head, S = Q_h·K_gᵀ [T, pos0+T], P = causal_softmax(S), O_h = P·V_g.
template <class Real>
void causal_attention_gemm(const LlamaConfig& c, const Real* q, int64_t T, const Real* k, const Real* v, int64_t pos0,
                    Real* out) {
  const int64_t hd = c.head_dim, nh = c.n_heads, dq = nh * hd, dkv = c.n_kv_heads * hd;
  const int64_t group = nh / c.n_kv_heads, n_keys = pos0 + T;
  const Real scale = Real(1) / std::sqrt(static_cast<Real>(hd));
  parallel_for(nh, [&](int64_t h0, int64_t h1) {
    thread_local std::vector<Real> s;  // [T, n_keys], kept per thread across calls
    s.resize(static_cast<size_t>(T * n_keys));
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t off = (h / group) * hd;
      gemm_serial<Real>(false, true, T, n_keys, hd, Real(1), q + h * hd, dq, k + off, dkv, Real(0), s.data(), n_keys);
      causal_softmax(s.data(), T, n_keys, n_keys, pos0, scale);
      gemm_serial<Real>(false, false, T, hd, n_keys, Real(1), s.data(), n_keys, v + off, dkv, Real(0), out + h * hd, dq);
    }
  });
}

template <class Real>
void causal_attention(const LlamaConfig& c, const Real* q, int64_t T, const Real* k,
                      const Real* v, int64_t pos0, Real* out) {
  const int64_t hd = c.head_dim, nh = c.n_heads, dkv = c.n_kv_heads * hd;
  const int64_t group = nh / c.n_kv_heads;
  const Real scale = Real(1) / std::sqrt(static_cast<Real>(hd));
  parallel_for(T * nh, [&](int64_t begin, int64_t end) {
    std::vector<Real> scores(static_cast<size_t>(pos0 + T));
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / nh, h = job % nh, kvh = h / group, n_keys = pos0 + t + 1;
      const Real* qv = q + (t * nh + h) * hd;
      Real mx = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        const Real* kv = k + j * dkv + kvh * hd;
        Real s = 0;
        for (int64_t d = 0; d < hd; ++d) s += qv[d] * kv[d];
        scores[j] = s * scale;
        mx = std::max(mx, scores[j]);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < n_keys; ++j) sum += (scores[j] = std::exp(scores[j] - mx));
      const Real inv = static_cast<Real>(1.0 / sum);
      Real* o = out + (t * nh + h) * hd;
      std::fill(o, o + hd, Real(0));
      for (int64_t j = 0; j < n_keys; ++j) {
        const Real p = scores[j] * inv;
        const Real* vv = v + j * dkv + kvh * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] += p * vv[d];
      }
    }
  });
}

template void apply_rope<float>(const LlamaConfig&, const std::vector<double>&, float*, int64_t, int64_t, int64_t);
template void apply_rope<double>(const LlamaConfig&, const std::vector<double>&, double*, int64_t, int64_t, int64_t);
template void causal_softmax<float>(float*, int64_t, int64_t, int64_t, int64_t, float);
template void causal_softmax<double>(double*, int64_t, int64_t, int64_t, int64_t, double);
template void causal_attention<float>(const LlamaConfig&, const float*, int64_t, const float*, const float*, int64_t, float*);
template void causal_attention_gemm<float>(const LlamaConfig&, const float*, int64_t, const float*, const float*, int64_t, float*);
template void causal_attention_gemm<double>(const LlamaConfig&, const double*, int64_t, const double*, const double*, int64_t, double*);
template void causal_attention<double>(const LlamaConfig&, const double*, int64_t, const double*, const double*, int64_t, double*);

}  // namespace lowbit
