#include "export/ggml_blocks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "formats/bitpack.h"
#include "formats/int.h"

namespace lowbit {

namespace {

constexpr QuantSpec kInt4G32{FormatKind::Int, 4, 32, false, false, ScaleType::F16};
constexpr QuantSpec kInt5G32{FormatKind::Int, 5, 32, false, false, ScaleType::F16};
constexpr QuantSpec kInt8G32{FormatKind::Int, 8, 32, false, false, ScaleType::F16};

void store_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xff);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// Q4_0 block from 32 codes in [0, 15]: element j < 16 low nibble of qs[j], j + 16 high nibble.
void pack_q4_0(uint16_t d_bits, const uint8_t* codes, uint8_t* out) {
  store_u16(out, d_bits);
  for (int j = 0; j < 16; ++j)
    out[2 + j] = static_cast<uint8_t>((codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4));
}

// Q5_0 block from 32 codes in [0, 31]: low 4 bits as Q4_0, bit 4 of code j is bit j of qh.
void pack_q5_0(uint16_t d_bits, const uint8_t* codes, uint8_t* out) {
  store_u16(out, d_bits);
  uint32_t qh = 0;
  for (int j = 0; j < 32; ++j) qh |= static_cast<uint32_t>((codes[j] >> 4) & 1) << j;
  for (int k = 0; k < 4; ++k) out[2 + k] = static_cast<uint8_t>(qh >> (8 * k));
  for (int j = 0; j < 16; ++j)
    out[6 + j] = static_cast<uint8_t>((codes[j] & 0x0f) | ((codes[j + 16] & 0x0f) << 4));
}

// Q8_0 block from 32 codes in [0, 255] (zero-point 128): q_signed = code - 128.
void pack_q8_0(uint16_t d_bits, const uint8_t* codes, uint8_t* out) {
  store_u16(out, d_bits);
  for (int j = 0; j < 32; ++j) {
    const int8_t q = static_cast<int8_t>(static_cast<int>(codes[j]) - 128);
    std::memcpy(out + 2 + j, &q, 1);
  }
}

// One block through lowbit's int codec (the RTN group fit, no clipping).
template <void (*Pack)(uint16_t, const uint8_t*, uint8_t*)>
void quantize_block(const QuantSpec& spec, const float* x, uint8_t* out) {
  const GroupParams p = int_fit(spec, x, kGgmlBlock, 1.0f);
  uint8_t codes[kGgmlBlock];
  for (int64_t j = 0; j < kGgmlBlock; ++j) codes[j] = int_encode(spec, x[j], p);
  Pack(f32_to_f16(p.scale), codes, out);
}


// ---- K-quants -------------------------------------------------------------------------------

float weight_at(const float* w, int i) { return w ? w[i] : 1.0f; }

float round_clampf(float v, float lo, float hi) {
  return std::clamp(std::nearbyint(v), lo, hi);
}

// Q6_K sub-block of 16: a signed scale s with x ~ s * q, q in [-32, 31].
// Plain: s = m / -32, m the value of largest magnitude (first on ties).
float q6_plain_scale(const float* x, int n) {
  float m = 0;
  for (int i = 0; i < n; ++i)
    if (std::abs(x[i]) > std::abs(m)) m = x[i];
  return m / -32.0f;
}

// Search: candidate scales m / t (t on both sides of the grid), each refitted by weighted least
// squares for its codes; the one with the least weighted squared error.
float q6_search_scale(const float* x, const float* w, int n) {
  const float s0 = q6_plain_scale(x, n);
  if (s0 == 0) return 0;
  const float m = s0 * -32.0f;
  float best_s = s0, best_e = INFINITY;
  auto consider = [&](float s) {
    if (s == 0 || !std::isfinite(s)) return;
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      const float q = round_clampf(x[i] / s, -32, 31);
      sxq += static_cast<double>(weight_at(w, i)) * x[i] * q;
      sqq += static_cast<double>(weight_at(w, i)) * q * q;
    }
    if (sqq <= 0) return;
    const float fit = static_cast<float>(sxq / sqq);
    double e = 0;
    for (int i = 0; i < n; ++i) {
      const float q = round_clampf(x[i] / fit, -32, 31);
      const double r = x[i] - fit * q;
      e += weight_at(w, i) * r * r;
    }
    if (e < best_e) best_e = static_cast<float>(e), best_s = fit;
  };
  consider(s0);
  for (int k = 0; k <= 16; ++k) {
    consider(m / (-28.0f - 0.5f * k));  // m lands at -28 .. -36
    consider(m / (27.0f + 0.5f * k));   // m lands at 27 .. 35 (clamped to 31)
  }
  return best_s;
}

// Fills a Q6_K block from 16 sub-block scales; returns the weighted squared error of the result.
double q6_finish(const float* x, const float* w, const float* s, uint8_t* out) {
  float amax = 0;
  for (int j = 0; j < 16; ++j) amax = std::max(amax, std::abs(s[j]));
  const uint16_t d_bits = f32_to_f16(amax / 127.0f);
  const float d = f16_to_f32(d_bits);
  int8_t sc[16];
  for (int j = 0; j < 16; ++j)
    sc[j] = d == 0 ? 0 : static_cast<int8_t>(round_clampf(s[j] / d, -128, 127));
  std::memset(out, 0, kQ6_KBlockBytes);
  uint8_t* ql = out;
  uint8_t* qh = out + 128;
  double err = 0;
  for (int e = 0; e < kQK; ++e) {
    const float step = d * static_cast<float>(sc[e / 16]);
    const int q = step == 0 ? 32 : static_cast<int>(round_clampf(x[e] / step, -32, 31)) + 32;
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    ql[64 * h + l + 32 * (k & 1)] |= static_cast<uint8_t>((q & 15) << (k < 2 ? 0 : 4));
    qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
    const double r = x[e] - step * static_cast<float>(q - 32);
    err += weight_at(w, e) * r * r;
  }
  std::memcpy(out + 192, sc, 16);
  store_u16(out + 208, d_bits);
  return err;
}

// Q4_K sub-block of 32: x ~ a * q - b, q in [0, 15], a >= 0, b >= 0.
struct AffineFit {
  float a = 0, b = 0;
};

// Plain: the range [min(x, 0), max(x)] onto [0, 15].
AffineFit q4_plain_fit(const float* x, int n) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  if (hi <= lo) return {0, -lo};
  return {(hi - lo) / 15.0f, -lo};
}

double affine_error(const float* x, const float* w, int n, const AffineFit& f) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const float q = f.a == 0 ? 0 : round_clampf((x[i] + f.b) / f.a, 0, 15);
    const double r = x[i] - (f.a * q - f.b);
    e += weight_at(w, i) * r * r;
  }
  return e;
}

// Weighted least squares (a, b) for the codes that `f` gives, b kept >= 0 and a > 0.
bool affine_refit(const float* x, const float* w, int n, AffineFit& f) {
  double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
  for (int i = 0; i < n; ++i) {
    const double q = f.a == 0 ? 0 : round_clampf((x[i] + f.b) / f.a, 0, 15);
    const double wi = weight_at(w, i);
    sw += wi, sq += wi * q, sqq += wi * q * q, sx += wi * x[i], sxq += wi * x[i] * q;
  }
  const double det = sw * sqq - sq * sq;
  if (det <= 0 || sqq <= 0) return false;
  double a = (sw * sxq - sq * sx) / det, c = (sqq * sx - sq * sxq) / det;  // x ~ a q + c
  if (c > 0) c = 0, a = sxq / sqq;
  if (!(a > 0) || !std::isfinite(a)) return false;
  f = {static_cast<float>(a), static_cast<float>(-c)};
  return true;
}

AffineFit q4_search_fit(const float* x, const float* w, int n) {
  const AffineFit plain = q4_plain_fit(x, n);
  if (plain.a == 0) return plain;
  const float range = plain.a * 15.0f;
  AffineFit best = plain;
  double best_e = affine_error(x, w, n, plain);
  for (int k = 0; k <= 16; ++k) {
    AffineFit f{range / (14.0f + 0.25f * k), plain.b};  // 14 .. 18 steps over the range
    for (int it = 0; it < 2; ++it) {
      if (!affine_refit(x, w, n, f)) break;
      const double e = affine_error(x, w, n, f);
      if (e < best_e) best_e = e, best = f;
    }
  }
  return best;
}

// Fills a Q4_K block from 8 sub-block fits; returns the weighted squared error of the result.
double q4_finish(const float* x, const float* w, const AffineFit* f, uint8_t* out) {
  float amax = 0, bmax = 0;
  for (int j = 0; j < 8; ++j) amax = std::max(amax, f[j].a), bmax = std::max(bmax, f[j].b);
  const uint16_t d_bits = f32_to_f16(amax / 63.0f), dmin_bits = f32_to_f16(bmax / 63.0f);
  const float d = f16_to_f32(d_bits), dmin = f16_to_f32(dmin_bits);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d == 0 ? 0 : static_cast<uint8_t>(round_clampf(f[j].a / d, 0, 63));
    m[j] = dmin == 0 ? 0 : static_cast<uint8_t>(round_clampf(f[j].b / dmin, 0, 63));
  }
  std::memset(out, 0, kQ4_KBlockBytes);
  store_u16(out, d_bits);
  store_u16(out + 2, dmin_bits);
  uint8_t* scales = out + 4;
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    scales[j + 4] = static_cast<uint8_t>(m[j] | (m[j + 4] >> 4) << 6);
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
  uint8_t* qs = out + 16;
  double err = 0;
  for (int e = 0; e < kQK; ++e) {
    const int j = e / 32;
    const float step = d * static_cast<float>(sc[j]), off = dmin * static_cast<float>(m[j]);
    const int q = step == 0 ? 0 : static_cast<int>(round_clampf((x[e] + off) / step, 0, 15));
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>(q << (e % 64 < 32 ? 0 : 4));
    const double r = x[e] - (step * static_cast<float>(q) - off);
    err += weight_at(w, e) * r * r;
  }
  return err;
}

}  // namespace

const char* ggml_type_label(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q5_0: return "Q5_0";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q6_K: return "Q6_K";
  }
  return "?";
}

GgmlType parse_ggml_type(std::string_view s) {
  std::string up(s);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q5_0,
                     GgmlType::Q4_0, GgmlType::Q6_K, GgmlType::Q4_K})
    if (up == ggml_type_label(t)) return t;
  throw Error("export", "unknown --type '" + std::string(s) +
                            "' (expected F32, F16, Q8_0, Q5_0, Q4_0, Q6_K or Q4_K)");
}

int64_t ggml_block_elems(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0: return kGgmlBlock;
    case GgmlType::Q4_K:
    case GgmlType::Q6_K: return kQK;
  }
  LOWBIT_ASSERT(false);
  return 1;
}

int64_t ggml_row_bytes(GgmlType t, int64_t cols) {
  LOWBIT_ASSERT(cols >= 0 && cols % ggml_block_elems(t) == 0);
  switch (t) {
    case GgmlType::F32: return cols * 4;
    case GgmlType::F16: return cols * 2;
    case GgmlType::Q4_0: return cols / kGgmlBlock * kQ4_0BlockBytes;
    case GgmlType::Q5_0: return cols / kGgmlBlock * kQ5_0BlockBytes;
    case GgmlType::Q8_0: return cols / kGgmlBlock * kQ8_0BlockBytes;
    case GgmlType::Q4_K: return cols / kQK * kQ4_KBlockBytes;
    case GgmlType::Q6_K: return cols / kQK * kQ6_KBlockBytes;
  }
  LOWBIT_ASSERT(false);
  return 0;
}

uint32_t ggml_file_type(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q4_K: return 14;
    case GgmlType::Q6_K: return 18;
  }
  LOWBIT_ASSERT(false);
  return 0;
}

void quantize_q4_0_block(const float* x, uint8_t* out) {
  quantize_block<pack_q4_0>(kInt4G32, x, out);
}

void quantize_q5_0_block(const float* x, uint8_t* out) {
  quantize_block<pack_q5_0>(kInt5G32, x, out);
}

void quantize_q8_0_block(const float* x, uint8_t* out) {
  quantize_block<pack_q8_0>(kInt8G32, x, out);
}

void quantize_q6_k_block(const float* x, const float* w, uint8_t* out, bool plain_only) {
  float plain[16], searched[16];
  for (int j = 0; j < 16; ++j) plain[j] = q6_plain_scale(x + 16 * j, 16);
  const double e_plain = q6_finish(x, w, plain, out);
  if (plain_only) return;
  for (int j = 0; j < 16; ++j) searched[j] = q6_search_scale(x + 16 * j, w ? w + 16 * j : nullptr, 16);
  uint8_t tmp[kQ6_KBlockBytes];
  if (q6_finish(x, w, searched, tmp) < e_plain) std::memcpy(out, tmp, kQ6_KBlockBytes);
}

void quantize_q4_k_block(const float* x, const float* w, uint8_t* out, bool plain_only) {
  AffineFit plain[8], searched[8];
  for (int j = 0; j < 8; ++j) plain[j] = q4_plain_fit(x + 32 * j, 32);
  const double e_plain = q4_finish(x, w, plain, out);
  if (plain_only) return;
  for (int j = 0; j < 8; ++j) searched[j] = q4_search_fit(x + 32 * j, w ? w + 32 * j : nullptr, 32);
  uint8_t tmp[kQ4_KBlockBytes];
  if (q4_finish(x, w, searched, tmp) < e_plain) std::memcpy(out, tmp, kQ4_KBlockBytes);
}

void dequantize_q4_k_block(const uint8_t* in, float* y) {
  const float d = f16_to_f32(static_cast<uint16_t>(in[0] | in[1] << 8));
  const float dmin = f16_to_f32(static_cast<uint16_t>(in[2] | in[3] << 8));
  const uint8_t* s = in + 4;
  const uint8_t* qs = in + 16;
  for (int j = 0; j < 8; ++j) {
    const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    const float step = d * static_cast<float>(sc), off = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const uint8_t byte = qs[32 * (j / 2) + l];
      y[32 * j + l] = step * static_cast<float>(j % 2 ? byte >> 4 : byte & 15) - off;
    }
  }
}

void dequantize_q6_k_block(const uint8_t* in, float* y) {
  const uint8_t* ql = in;
  const uint8_t* qh = in + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(in + 192);
  const float d = f16_to_f32(static_cast<uint16_t>(in[208] | in[209] << 8));
  for (int e = 0; e < kQK; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int lo = (ql[64 * h + l + 32 * (k & 1)] >> (k < 2 ? 0 : 4)) & 15;
    const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
    y[e] = d * static_cast<float>(sc[e / 16]) * static_cast<float>((lo | hi << 4) - 32);
  }
}

void encode_ggml_row(GgmlType t, const float* x, int64_t n, uint8_t* out,
                     const float* importance) {
  LOWBIT_ASSERT(n % ggml_block_elems(t) == 0);
  switch (t) {
    case GgmlType::F32:
      std::memcpy(out, x, static_cast<size_t>(n) * 4);  // little-endian host (checked in io/)
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) store_u16(out + 2 * i, f32_to_f16(x[i]));
      return;
    case GgmlType::Q4_0:
      for (int64_t b = 0; b < n / kGgmlBlock; ++b)
        quantize_q4_0_block(x + b * kGgmlBlock, out + b * kQ4_0BlockBytes);
      return;
    case GgmlType::Q5_0:
      for (int64_t b = 0; b < n / kGgmlBlock; ++b)
        quantize_q5_0_block(x + b * kGgmlBlock, out + b * kQ5_0BlockBytes);
      return;
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < n / kGgmlBlock; ++b)
        quantize_q8_0_block(x + b * kGgmlBlock, out + b * kQ8_0BlockBytes);
      return;
    case GgmlType::Q4_K:
      for (int64_t b = 0; b < n / kQK; ++b)
        quantize_q4_k_block(x + b * kQK, importance ? importance + b * kQK : nullptr,
                            out + b * kQ4_KBlockBytes);
      return;
    case GgmlType::Q6_K:
      for (int64_t b = 0; b < n / kQK; ++b)
        quantize_q6_k_block(x + b * kQK, importance ? importance + b * kQK : nullptr,
                            out + b * kQ6_KBlockBytes);
      return;
  }
}

std::optional<GgmlType> exact_block_type(const QuantSpec& spec, int64_t cols) {
  if (spec.kind != FormatKind::Int || spec.asym || spec.double_quant ||
      spec.scale_type != ScaleType::F16 || cols % kGgmlBlock != 0 ||
      spec.group_len(cols) != kGgmlBlock)
    return std::nullopt;
  if (spec.bits == 4) return GgmlType::Q4_0;
  if (spec.bits == 5) return GgmlType::Q5_0;
  if (spec.bits == 8) return GgmlType::Q8_0;
  return std::nullopt;
}

void encode_ggml_row_exact(const QuantizedMatrix& m, int64_t row, uint8_t* out) {
  const std::optional<GgmlType> t = exact_block_type(m.spec, m.cols);
  LOWBIT_ASSERT(t.has_value() && row >= 0 && row < m.rows);
  const uint8_t* packed = m.codes.data() + row * m.row_code_bytes();
  const uint16_t* scales = m.scales.data() + row * m.groups_per_row();
  const int64_t block_bytes = ggml_row_bytes(*t, kGgmlBlock);
  uint8_t codes[kGgmlBlock];
  for (int64_t b = 0; b < m.cols / kGgmlBlock; ++b) {
    unpack_codes(packed + b * kGgmlBlock * m.spec.bits / 8, kGgmlBlock, m.spec.bits, codes);
    if (*t == GgmlType::Q4_0)
      pack_q4_0(scales[b], codes, out + b * block_bytes);
    else if (*t == GgmlType::Q5_0)
      pack_q5_0(scales[b], codes, out + b * block_bytes);
    else
      pack_q8_0(scales[b], codes, out + b * block_bytes);
  }
}

}  // namespace lowbit
