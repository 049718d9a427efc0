#include "model/kv_cache.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/half.h"
#include "base/parallel.h"

namespace lowbit {

KvType parse_kv_type(std::string_view s) {
  if (s == "f32") return KvType::F32;
  if (s == "f16") return KvType::F16;
  if (s == "q8") return KvType::Q8;
  if (s == "q4") return KvType::Q4;
  throw Error("model", "unknown KV cache type '" + std::string(s) + "' (f32, f16, q8 or q4)");
}

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Q8: return "q8";
    case KvType::Q4: return "q4";
  }
  return "?";
}

KvRowLayout kv_row_layout(KvType t, int64_t n_kv_heads, int64_t head_dim) {
  KvRowLayout L;
  L.type = t;
  L.n_heads = n_kv_heads;
  L.head_dim = head_dim;
  L.group = head_dim % 32 == 0 ? 32 : head_dim;
  const int64_t groups = head_dim / L.group;
  switch (t) {
    case KvType::F32: L.head_bytes = head_dim * 4; break;
    case KvType::F16: L.head_bytes = head_dim * 2; break;
    case KvType::Q8: L.head_bytes = groups * (2 + L.group); break;
    case KvType::Q4: L.head_bytes = groups * (4 + L.group / 2); break;
  }
  return L;
}

namespace {

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

void store_f16(uint8_t* p, float f) {
  const uint16_t h = f32_to_f16(f);
  std::memcpy(p, &h, 2);
}

// One group of g numbers -> bytes at dst (q8: d, codes; q4: d, m, nibbles). The scale is rounded
// to fp16 first and the codes are chosen for the rounded scale.
void store_group(KvType t, const float* x, int64_t g, uint8_t* dst) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < g; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  if (t == KvType::Q8) {
    const float amax = std::max(std::fabs(lo), std::fabs(hi));
    if (!std::isfinite(amax)) {  // poisoned activations stay poisoned (NaN), never UB casts
      store_f16(dst, NAN);
      std::memset(dst + 2, 0, static_cast<size_t>(g));
      return;
    }
    store_f16(dst, amax / 127.0f);
    const float d = load_f16(dst);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    for (int64_t i = 0; i < g; ++i)
      dst[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f)));
    return;
  }
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    store_f16(dst, NAN);
    store_f16(dst + 2, NAN);
    std::memset(dst + 4, 0, static_cast<size_t>(g / 2));
    return;
  }
  store_f16(dst, (hi - lo) / 15.0f);
  store_f16(dst + 2, lo);
  const float d = load_f16(dst), m = load_f16(dst + 2);
  const float inv = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < g; i += 2) {
    const auto code = [&](float v) { return static_cast<uint8_t>(std::clamp(std::nearbyint((v - m) * inv), 0.0f, 15.0f)); };
    dst[4 + i / 2] = static_cast<uint8_t>(code(x[i]) | (code(x[i + 1]) << 4));
  }
}

// Σ q[i] · x[i] over one stored head.
float head_dot(const KvRowLayout& L, const uint8_t* h, const float* q) {
  const int64_t hd = L.head_dim, g = L.group;
  float s = 0;
  switch (L.type) {
    case KvType::F32: {
      const float* x = reinterpret_cast<const float*>(h);
      for (int64_t i = 0; i < hd; ++i) s += q[i] * x[i];
      return s;
    }
    case KvType::F16: {
      int64_t i = 0;
      __m256 acc = _mm256_setzero_ps();
      for (; i + 8 <= hd; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i),
                              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 2 * i))), acc);
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc);
      for (float l : lanes) s += l;
      for (; i < hd; ++i) s += q[i] * load_f16(h + 2 * i);
      return s;
    }
    case KvType::Q8:
      for (int64_t g0 = 0; g0 < hd; g0 += g, h += 2 + g) {
        const int8_t* c = reinterpret_cast<const int8_t*>(h + 2);
        float part = 0;
        for (int64_t i = 0; i < g; ++i) part += q[g0 + i] * static_cast<float>(c[i]);
        s += load_f16(h) * part;
      }
      return s;
    case KvType::Q4:
      for (int64_t g0 = 0; g0 < hd; g0 += g, h += 4 + g / 2) {
        float part = 0, qsum = 0;
        for (int64_t i = 0; i < g; i += 2) {
          const uint8_t b = h[4 + i / 2];
          part += q[g0 + i] * static_cast<float>(b & 15) + q[g0 + i + 1] * static_cast<float>(b >> 4);
          qsum += q[g0 + i] + q[g0 + i + 1];
        }
        s += load_f16(h) * part + load_f16(h + 2) * qsum;
      }
      return s;
  }
  return s;
}

// out[i] += p · x[i] over one stored head.
void head_axpy(const KvRowLayout& L, const uint8_t* h, float p, float* out) {
  const int64_t hd = L.head_dim, g = L.group;
  switch (L.type) {
    case KvType::F32: {
      const float* x = reinterpret_cast<const float*>(h);
      for (int64_t i = 0; i < hd; ++i) out[i] += p * x[i];
      return;
    }
    case KvType::F16: {
      int64_t i = 0;
      const __m256 pv = _mm256_set1_ps(p);
      for (; i + 8 <= hd; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(pv, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 2 * i))),
                                                  _mm256_loadu_ps(out + i)));
      for (; i < hd; ++i) out[i] += p * load_f16(h + 2 * i);
      return;
    }
    case KvType::Q8:
      for (int64_t g0 = 0; g0 < hd; g0 += g, h += 2 + g) {
        const int8_t* c = reinterpret_cast<const int8_t*>(h + 2);
        const float pd = p * load_f16(h);
        for (int64_t i = 0; i < g; ++i) out[g0 + i] += pd * static_cast<float>(c[i]);
      }
      return;
    case KvType::Q4:
      for (int64_t g0 = 0; g0 < hd; g0 += g, h += 4 + g / 2) {
        const float pd = p * load_f16(h), pm = p * load_f16(h + 2);
        for (int64_t i = 0; i < g; i += 2) {
          const uint8_t b = h[4 + i / 2];
          out[g0 + i] += pd * static_cast<float>(b & 15) + pm;
          out[g0 + i + 1] += pd * static_cast<float>(b >> 4) + pm;
        }
      }
      return;
  }
}

}  // namespace

void kv_store_rows(const KvRowLayout& L, const float* x, int64_t n, uint8_t* dst) {
  const int64_t hd = L.head_dim;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < L.n_heads; ++h) {
      const float* src = x + (r * L.n_heads + h) * hd;
      uint8_t* out = dst + r * L.row_bytes() + h * L.head_bytes;
      switch (L.type) {
        case KvType::F32: std::memcpy(out, src, sizeof(float) * hd); break;
        case KvType::F16:
          for (int64_t i = 0; i < hd; ++i) store_f16(out + 2 * i, src[i]);
          break;
        case KvType::Q8:
        case KvType::Q4: {
          const int64_t stride = L.type == KvType::Q8 ? 2 + L.group : 4 + L.group / 2;
          for (int64_t g0 = 0; g0 < hd; g0 += L.group, out += stride) store_group(L.type, src + g0, L.group, out);
          break;
        }
      }
    }
}

void kv_load_rows(const KvRowLayout& L, const uint8_t* src, int64_t n, float* x) {
  const int64_t hd = L.head_dim;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t h = 0; h < L.n_heads; ++h) {
      float* out = x + (r * L.n_heads + h) * hd;
      std::fill(out, out + hd, 0.0f);
      head_axpy(L, src + r * L.row_bytes() + h * L.head_bytes, 1.0f, out);
    }
}

KvCache make_kv_cache(const KvRowLayout& L, int64_t n_layers, int64_t block_rows) {
  KvCache c;
  c.layout = L;
  c.n_layers = n_layers;
  c.block_rows = block_rows;
  return c;
}

std::unique_ptr<KvBlock> new_kv_block(const KvCache& c) {
  auto b = std::make_unique<KvBlock>();
  const size_t n = static_cast<size_t>(c.n_layers * c.block_rows * c.layout.row_bytes());
  b->k.assign(n, 0);
  b->v.assign(n, 0);
  return b;
}

KvLayerRows kv_layer_rows(const KvCache& c, int64_t layer) {
  KvLayerRows r;
  r.block_rows = c.block_rows;
  const int64_t off = layer * c.block_rows * c.layout.row_bytes();
  for (const auto& b : c.blocks) {
    r.k.push_back(b->k.data() + off);
    r.v.push_back(b->v.data() + off);
  }
  return r;
}

void kv_causal_attention(const KvRowLayout& L, int64_t n_heads, const float* q, int64_t T,
                         const KvLayerRows& rows, int64_t pos0, float* out) {
  const int64_t hd = L.head_dim, group = n_heads / L.n_heads, rb = L.row_bytes(), br = rows.block_rows;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  parallel_for(T * n_heads, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(pos0 + T));
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / n_heads, h = job % n_heads, n_keys = pos0 + t + 1;
      const int64_t head_off = (h / group) * L.head_bytes;
      const float* qv = q + (t * n_heads + h) * hd;
      float mx = -INFINITY;
      for (int64_t j0 = 0, b = 0; j0 < n_keys; j0 += br, ++b) {
        const uint8_t* k = rows.k[b] + head_off;
        for (int64_t j = j0; j < std::min(n_keys, j0 + br); ++j, k += rb) {
          scores[j] = head_dot(L, k, qv) * scale;
          mx = std::max(mx, scores[j]);
        }
      }
      double sum = 0.0;
      for (int64_t j = 0; j < n_keys; ++j) sum += (scores[j] = std::exp(scores[j] - mx));
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out + (t * n_heads + h) * hd;
      std::fill(o, o + hd, 0.0f);
      for (int64_t j0 = 0, b = 0; j0 < n_keys; j0 += br, ++b) {
        const uint8_t* v = rows.v[b] + head_off;
        for (int64_t j = j0; j < std::min(n_keys, j0 + br); ++j, v += rb) head_axpy(L, v, scores[j] * inv, o);
      }
    }
  });
}

}  // namespace lowbit
