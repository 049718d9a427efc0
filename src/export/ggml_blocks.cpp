#include "export/ggml_blocks.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "formats/bitpack.h"
#include "formats/int.h"
#include "io/ggml_quants.h"

namespace lowbit {

namespace {

constexpr QuantSpec kInt4G32{FormatKind::Int, 4, 32, false, false, ScaleType::F16};
constexpr QuantSpec kInt5G32{FormatKind::Int, 5, 32, false, false, ScaleType::F16};
constexpr QuantSpec kInt8G32{FormatKind::Int, 8, 32, false, false, ScaleType::F16};

void store_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xff);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// A 32-block of type t from its fp16 scale bits and 32 codes (Q8_0: int8 + 128).
void pack_block32(GgmlType t, uint16_t d_bits, const uint8_t* codes, uint8_t* out) {
  std::memset(out, 0, static_cast<size_t>(ggml_row_bytes(t, kGgmlBlock)));
  store_u16(out, d_bits);
  ggml_pack_codes(ggml_dtype(t), out, codes);
}

// One block through lowbit's int codec (the RTN group fit, no clipping).
void quantize_block(GgmlType t, const QuantSpec& spec, const float* x, uint8_t* out) {
  const GroupParams p = int_fit(spec, x, kGgmlBlock, 1.0f);
  uint8_t codes[kGgmlBlock];
  for (int64_t j = 0; j < kGgmlBlock; ++j) codes[j] = int_encode(spec, x[j], p);
  pack_block32(t, f32_to_f16(p.scale), codes, out);
}


// ---- K-quants and IQ4_NL ---------------------------------------------------------------------

float weight_at(const float* w, int i) { return w ? w[i] : 1.0f; }

float round_clampf(float v, float lo, float hi) {
  return std::clamp(std::nearbyint(v), lo, hi);
}

// Chooses every code of `block` (header already written) as the grid point nearest to x,
// packs them, and returns the weighted squared error of the result.
double choose_codes(GgmlType t, const float* x, const float* w, uint8_t* block) {
  const DType dt = ggml_dtype(t);
  const GgmlBlockLayout& l = ggml_block_layout(dt);
  GgmlSubGrid g[16];
  uint8_t codes[256];
  ggml_block_grids(dt, block, g);
  double err = 0;
  for (int e = 0; e < l.elems; ++e) {
    const GgmlSubGrid& ge = g[e / l.sub];
    codes[e] = ggml_nearest_code(l, ge, x[e]);
    const double r = x[e] - ggml_code_value(l, ge, codes[e]);
    err += weight_at(w, e) * r * r;
  }
  ggml_pack_codes(dt, block, codes);
  return err;
}

// Signed-scale sub-blocks (Q6_K: q in [-32, 31]; Q3_K: q in [-4, 3]): x ~ s * q.
// The search tries m / t for t in neg0 + k * neg_step and pos0 + k * pos_step (k = 0..16), m
// the value of largest magnitude, so m lands on both ends of the grid and a little beyond.
struct SignedGrid {
  int lo, hi;
  float neg0, neg_step, pos0, pos_step;
};
constexpr SignedGrid kQ6Grid{-32, 31, -28.0f, -0.5f, 27.0f, 0.5f};
constexpr SignedGrid kQ3Grid{-4, 3, -3.0f, -0.125f, 2.5f, 0.125f};
// The symmetric 32-blocks with importance weights (without them they are plain RTN).
constexpr SignedGrid kQ4_0Grid{-8, 7, -7.0f, -0.125f, 6.0f, 0.125f};
constexpr SignedGrid kQ5_0Grid{-16, 15, -14.0f, -0.25f, 13.0f, 0.25f};
constexpr SignedGrid kQ8_0Grid{-128, 127, -120.0f, -1.0f, 119.0f, 1.0f};

// Plain: s = m / lo (m the value of largest magnitude, first on ties), m onto the grid's end.
float signed_plain_scale(const float* x, int n, const SignedGrid& gr) {
  float m = 0;
  for (int i = 0; i < n; ++i)
    if (std::abs(x[i]) > std::abs(m)) m = x[i];
  return m / static_cast<float>(gr.lo);
}

// Search: candidate scales, each refitted by weighted least squares for its codes; the one
// with the least weighted squared error.
float signed_search_scale(const float* x, const float* w, int n, const SignedGrid& gr) {
  const float s0 = signed_plain_scale(x, n, gr);
  if (s0 == 0) return 0;
  const float m = s0 * static_cast<float>(gr.lo);
  const float lo = static_cast<float>(gr.lo), hi = static_cast<float>(gr.hi);
  float best_s = s0, best_e = INFINITY;
  auto consider = [&](float s) {
    if (s == 0 || !std::isfinite(s)) return;
    double sxq = 0, sqq = 0;
    for (int i = 0; i < n; ++i) {
      const float q = round_clampf(x[i] / s, lo, hi);
      sxq += static_cast<double>(weight_at(w, i)) * x[i] * q;
      sqq += static_cast<double>(weight_at(w, i)) * q * q;
    }
    if (sqq <= 0) return;
    const float fit = static_cast<float>(sxq / sqq);
    double e = 0;
    for (int i = 0; i < n; ++i) {
      const float q = round_clampf(x[i] / fit, lo, hi);
      const double r = x[i] - fit * q;
      e += weight_at(w, i) * r * r;
    }
    if (e < best_e) best_e = static_cast<float>(e), best_s = fit;
  };
  consider(s0);
  for (int k = 0; k <= 16; ++k) {
    consider(m / (gr.neg0 + gr.neg_step * static_cast<float>(k)));
    consider(m / (gr.pos0 + gr.pos_step * static_cast<float>(k)));
  }
  return best_s;
}

// Q6_K header from 16 sub-block scales: d = max|s| / 127, int8 scales round(s / d).
void q6_header(const float* s, uint8_t* out) {
  float amax = 0;
  for (int j = 0; j < 16; ++j) amax = std::max(amax, std::abs(s[j]));
  const uint16_t d_bits = f32_to_f16(amax / 127.0f);
  const float d = f16_to_f32(d_bits);
  std::memset(out, 0, kQ6_KBlockBytes);
  for (int j = 0; j < 16; ++j) {
    const auto sc = static_cast<int8_t>(d == 0 ? 0 : round_clampf(s[j] / d, -128, 127));
    std::memcpy(out + 192 + j, &sc, 1);
  }
  store_u16(out + 208, d_bits);
}

// Q3_K header from 16 signed sub-block scales: d = m / -32 with m the scale of largest
// magnitude (so m is stored as -32, using the 6-bit range's extra negative level), scales
// round(s / d) + 32 in [0, 63] packed as described in io/ggml_quants.h.
void q3_header(const float* s, uint8_t* out) {
  float m = 0;
  for (int j = 0; j < 16; ++j)
    if (std::abs(s[j]) > std::abs(m)) m = s[j];
  const uint16_t d_bits = f32_to_f16(m / -32.0f);
  const float d = f16_to_f32(d_bits);
  std::memset(out, 0, kQ3_KBlockBytes);
  uint8_t* packed = out + 96;
  for (int j = 0; j < 16; ++j) {
    const int sc = (d == 0 ? 0 : static_cast<int>(round_clampf(s[j] / d, -32, 31))) + 32;
    packed[j % 8] |= static_cast<uint8_t>((sc & 15) << (j < 8 ? 0 : 4));
    packed[8 + j % 4] |= static_cast<uint8_t>((sc >> 4) << (2 * (j / 4)));
  }
  store_u16(out + 108, d_bits);
}

// Q4_K / Q5_K sub-block of 32: x ~ a * q - b, q in [0, qmax], a >= 0, b >= 0.
struct AffineFit {
  float a = 0, b = 0;
};

// Plain: the range [min(x, 0), max(x)] onto [0, qmax].
AffineFit affine_plain_fit(const float* x, int n, int qmax) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  if (hi <= lo) return {0, -lo};
  return {(hi - lo) / static_cast<float>(qmax), -lo};
}

double affine_error(const float* x, const float* w, int n, const AffineFit& f, int qmax) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const float q = f.a == 0 ? 0 : round_clampf((x[i] + f.b) / f.a, 0, static_cast<float>(qmax));
    const double r = x[i] - (f.a * q - f.b);
    e += weight_at(w, i) * r * r;
  }
  return e;
}

// Weighted least squares (a, b) for the codes that `f` gives, b kept >= 0 and a > 0.
bool affine_refit(const float* x, const float* w, int n, int qmax, AffineFit& f) {
  double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
  for (int i = 0; i < n; ++i) {
    const double q = f.a == 0 ? 0 : round_clampf((x[i] + f.b) / f.a, 0, static_cast<float>(qmax));
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

// Candidates: the plain range spread over qmax - 1 + k * qmax / 60 steps, k = 0..16 (Q4_K:
// 14 .. 18, Q5_K: 30 .. 38.3), each refitted twice.
AffineFit affine_search_fit(const float* x, const float* w, int n, int qmax) {
  const AffineFit plain = affine_plain_fit(x, n, qmax);
  if (plain.a == 0) return plain;
  const float range = plain.a * static_cast<float>(qmax);
  const float spread = static_cast<float>(qmax) / 15.0f;
  AffineFit best = plain;
  double best_e = affine_error(x, w, n, plain, qmax);
  for (int k = 0; k <= 16; ++k) {
    AffineFit f{range / (static_cast<float>(qmax - 1) + 0.25f * spread * static_cast<float>(k)), plain.b};
    for (int it = 0; it < 2; ++it) {
      if (!affine_refit(x, w, n, qmax, f)) break;
      const double e = affine_error(x, w, n, f, qmax);
      if (e < best_e) best_e = e, best = f;
    }
  }
  return best;
}

// Q4_K / Q5_K header from 8 sub-block fits: d = max a / 63, dmin = max b / 63, 6-bit scales
// and mins rounded against the fp16 d and dmin. Same byte positions in both types.
void k4_header(const AffineFit* f, uint8_t* out, int64_t bytes) {
  float amax = 0, bmax = 0;
  for (int j = 0; j < 8; ++j) amax = std::max(amax, f[j].a), bmax = std::max(bmax, f[j].b);
  const uint16_t d_bits = f32_to_f16(amax / 63.0f), dmin_bits = f32_to_f16(bmax / 63.0f);
  const float d = f16_to_f32(d_bits), dmin = f16_to_f32(dmin_bits);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d == 0 ? 0 : static_cast<uint8_t>(round_clampf(f[j].a / d, 0, 63));
    m[j] = dmin == 0 ? 0 : static_cast<uint8_t>(round_clampf(f[j].b / dmin, 0, 63));
  }
  std::memset(out, 0, static_cast<size_t>(bytes));
  store_u16(out, d_bits);
  store_u16(out + 2, dmin_bits);
  uint8_t* scales = out + 4;
  for (int j = 0; j < 4; ++j) {
    scales[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    scales[j + 4] = static_cast<uint8_t>(m[j] | (m[j + 4] >> 4) << 6);
    scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
}

// Signed-scale super-block (Q6_K, Q3_K): the plain fit, then (unless plain_only) the searched
// one, keeping whichever has the lower final error.
template <void (*Header)(const float*, uint8_t*)>
void signed_k_block(GgmlType t, const SignedGrid& gr, const float* x, const float* w, uint8_t* out,
                    bool plain_only) {
  constexpr int kSub = 16;
  float plain[kSub], searched[kSub];
  for (int j = 0; j < kSub; ++j) plain[j] = signed_plain_scale(x + kSub * j, kSub, gr);
  Header(plain, out);
  const double e_plain = choose_codes(t, x, w, out);
  if (plain_only) return;
  for (int j = 0; j < kSub; ++j)
    searched[j] = signed_search_scale(x + kSub * j, w ? w + kSub * j : nullptr, kSub, gr);
  uint8_t tmp[kQ6_KBlockBytes];
  Header(searched, tmp);
  if (choose_codes(t, x, w, tmp) < e_plain) std::memcpy(out, tmp, static_cast<size_t>(ggml_row_bytes(t, kQK)));
}

// Affine super-block (Q4_K: qmax 15, Q5_K: qmax 31), same rule.
void affine_k_block(GgmlType t, int qmax, const float* x, const float* w, uint8_t* out, bool plain_only) {
  const int64_t bytes = ggml_row_bytes(t, kQK);
  AffineFit plain[8], searched[8];
  for (int j = 0; j < 8; ++j) plain[j] = affine_plain_fit(x + 32 * j, 32, qmax);
  k4_header(plain, out, bytes);
  const double e_plain = choose_codes(t, x, w, out);
  if (plain_only) return;
  for (int j = 0; j < 8; ++j) searched[j] = affine_search_fit(x + 32 * j, w ? w + 32 * j : nullptr, 32, qmax);
  uint8_t tmp[kQ5_KBlockBytes];
  k4_header(searched, tmp, bytes);
  if (choose_codes(t, x, w, tmp) < e_plain) std::memcpy(out, tmp, static_cast<size_t>(bytes));
}

// Q4_0 / Q5_0 / Q8_0 with importance weights: the plain scale m / lo and the searched one,
// each written as the fp16 d with codes chosen against it; the lower weighted error wins.
void weighted_symmetric_block(GgmlType t, const SignedGrid& gr, const float* x, const float* w, uint8_t* out) {
  const int64_t bytes = ggml_row_bytes(t, kGgmlBlock);
  auto fill = [&](float s, uint8_t* block) {
    std::memset(block, 0, static_cast<size_t>(bytes));
    store_u16(block, f32_to_f16(s));
    return choose_codes(t, x, w, block);
  };
  const double e_plain = fill(signed_plain_scale(x, kGgmlBlock, gr), out);
  uint8_t tmp[kQ8_0BlockBytes];
  if (fill(signed_search_scale(x, w, kGgmlBlock, gr), tmp) < e_plain) std::memcpy(out, tmp, static_cast<size_t>(bytes));
}

// IQ4_NL: weighted least-squares d for the code book codes nearest to x / d.
double iq4nl_refit(const float* x, const float* w, float& d) {
  const GgmlBlockLayout& l = ggml_block_layout(DType::IQ4_NL);
  double sxv = 0, svv = 0;
  for (int i = 0; i < 32; ++i) {
    const int8_t v = kIq4NlValues[ggml_nearest_code(l, {d, 0.0f}, x[i])];
    sxv += static_cast<double>(weight_at(w, i)) * x[i] * v;
    svv += static_cast<double>(weight_at(w, i)) * v * v;
  }
  if (svv <= 0) return INFINITY;
  d = static_cast<float>(sxv / svv);
  double e = 0;
  for (int i = 0; i < 32; ++i) {
    const double r = x[i] - ggml_code_value(l, {d, 0.0f}, ggml_nearest_code(l, {d, 0.0f}, x[i]));
    e += weight_at(w, i) * r * r;
  }
  return e;
}

}  // namespace

bool is_block_type(GgmlType t) { return t != GgmlType::F32 && t != GgmlType::F16; }

std::optional<GgmlType> ggml_type_of(DType d) {
  for (GgmlType t : kGgmlTypes)
    if (ggml_dtype(t) == d) return t;
  return std::nullopt;
}

DType ggml_dtype(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return DType::F32;
    case GgmlType::F16: return DType::F16;
    case GgmlType::Q4_0: return DType::Q4_0;
    case GgmlType::Q5_0: return DType::Q5_0;
    case GgmlType::Q5_1: return DType::Q5_1;
    case GgmlType::Q8_0: return DType::Q8_0;
    case GgmlType::Q3_K: return DType::Q3_K;
    case GgmlType::Q4_K: return DType::Q4_K;
    case GgmlType::Q5_K: return DType::Q5_K;
    case GgmlType::Q6_K: return DType::Q6_K;
    case GgmlType::IQ4_NL: return DType::IQ4_NL;
  }
  LOWBIT_ASSERT(false);
  return DType::F32;
}

const char* ggml_type_label(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q5_0: return "Q5_0";
    case GgmlType::Q5_1: return "Q5_1";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q3_K: return "Q3_K";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q5_K: return "Q5_K";
    case GgmlType::Q6_K: return "Q6_K";
    case GgmlType::IQ4_NL: return "IQ4_NL";
  }
  return "?";
}

std::string ggml_type_list(const std::vector<std::string>& extra) {
  std::vector<std::string> names;
  for (GgmlType t : kGgmlTypes) names.emplace_back(ggml_type_label(t));
  names.insert(names.end(), extra.begin(), extra.end());
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

GgmlType parse_ggml_type(std::string_view s) {
  std::string up(s);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (GgmlType t : kGgmlTypes)
    if (up == ggml_type_label(t)) return t;
  throw Error("export", "unknown --type '" + std::string(s) + "' (expected " + ggml_type_list() + ")");
}

int64_t ggml_block_elems(GgmlType t) {
  const DType d = ggml_dtype(t);
  return is_ggml_block_type(d) ? ggml_block_layout(d).elems : 1;
}

int64_t ggml_row_bytes(GgmlType t, int64_t cols) {
  LOWBIT_ASSERT(cols >= 0 && cols % ggml_block_elems(t) == 0);
  if (t == GgmlType::F32) return cols * 4;
  if (t == GgmlType::F16) return cols * 2;
  const GgmlBlockLayout& l = ggml_block_layout(ggml_dtype(t));
  return cols / l.elems * l.bytes;
}

uint32_t ggml_file_type(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q5_1: return 9;
    case GgmlType::Q3_K: return 11;
    case GgmlType::Q4_K: return 14;
    case GgmlType::Q5_K: return 16;
    case GgmlType::Q6_K: return 18;
    case GgmlType::IQ4_NL: return 25;
  }
  LOWBIT_ASSERT(false);
  return 0;
}

void quantize_q4_0_block(const float* x, uint8_t* out) {
  quantize_block(GgmlType::Q4_0, kInt4G32, x, out);
}

void quantize_q5_0_block(const float* x, uint8_t* out) {
  quantize_block(GgmlType::Q5_0, kInt5G32, x, out);
}

void quantize_q8_0_block(const float* x, uint8_t* out) {
  quantize_block(GgmlType::Q8_0, kInt8G32, x, out);
}

void quantize_q5_1_block(const float* x, uint8_t* out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < 32; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  std::memset(out, 0, kQ5_1BlockBytes);
  store_u16(out, f32_to_f16((hi - lo) / 31.0f));
  store_u16(out + 2, f32_to_f16(lo));
  choose_codes(GgmlType::Q5_1, x, nullptr, out);
}

void quantize_iq4_nl_block(const float* x, const float* w, uint8_t* out) {
  float m = 0;
  for (int i = 0; i < 32; ++i)
    if (std::abs(x[i]) > std::abs(m)) m = x[i];
  float best_d = m / static_cast<float>(kIq4NlValues[0]);
  if (m != 0) {
    double best_e = INFINITY;
    for (int k = -8; k <= 8; ++k)
      for (float end : {static_cast<float>(kIq4NlValues[0]), static_cast<float>(kIq4NlValues[15])}) {
        float d = m / (end + (end < 0 ? -1.0f : 1.0f) * static_cast<float>(k));
        const double e = iq4nl_refit(x, w, d);
        if (e < best_e && std::isfinite(d)) best_e = e, best_d = d;
      }
  }
  std::memset(out, 0, kIq4NlBlockBytes);
  store_u16(out, f32_to_f16(best_d));
  choose_codes(GgmlType::IQ4_NL, x, w, out);
}

void quantize_q6_k_block(const float* x, const float* w, uint8_t* out, bool plain_only) {
  signed_k_block<q6_header>(GgmlType::Q6_K, kQ6Grid, x, w, out, plain_only);
}

void quantize_q3_k_block(const float* x, const float* w, uint8_t* out, bool plain_only) {
  signed_k_block<q3_header>(GgmlType::Q3_K, kQ3Grid, x, w, out, plain_only);
}

void quantize_q4_k_block(const float* x, const float* w, uint8_t* out, bool plain_only) {
  affine_k_block(GgmlType::Q4_K, 15, x, w, out, plain_only);
}

void quantize_q5_k_block(const float* x, const float* w, uint8_t* out, bool plain_only) {
  affine_k_block(GgmlType::Q5_K, 31, x, w, out, plain_only);
}

void quantize_ggml_block(GgmlType t, const float* x, const float* w, uint8_t* out) {
  switch (t) {
    case GgmlType::Q4_0:
      if (w) return weighted_symmetric_block(t, kQ4_0Grid, x, w, out);
      return quantize_q4_0_block(x, out);
    case GgmlType::Q5_0:
      if (w) return weighted_symmetric_block(t, kQ5_0Grid, x, w, out);
      return quantize_q5_0_block(x, out);
    case GgmlType::Q5_1: quantize_q5_1_block(x, out); return;
    case GgmlType::Q8_0:
      if (w) return weighted_symmetric_block(t, kQ8_0Grid, x, w, out);
      return quantize_q8_0_block(x, out);
    case GgmlType::IQ4_NL: quantize_iq4_nl_block(x, w, out); return;
    case GgmlType::Q3_K: quantize_q3_k_block(x, w, out); return;
    case GgmlType::Q4_K: quantize_q4_k_block(x, w, out); return;
    case GgmlType::Q5_K: quantize_q5_k_block(x, w, out); return;
    case GgmlType::Q6_K: quantize_q6_k_block(x, w, out); return;
    case GgmlType::F32:
    case GgmlType::F16: break;
  }
  LOWBIT_ASSERT(false && "not a block type");
}

void dequantize_ggml_block(GgmlType t, const uint8_t* in, float* y) {
  ggml_dequantize_block(ggml_dtype(t), in, y);
}

void encode_ggml_row(GgmlType t, const float* x, int64_t n, uint8_t* out,
                     const float* importance) {
  LOWBIT_ASSERT(n % ggml_block_elems(t) == 0);
  if (t == GgmlType::F32) {
    std::memcpy(out, x, static_cast<size_t>(n) * 4);  // little-endian host (checked in io/)
    return;
  }
  if (t == GgmlType::F16) {
    for (int64_t i = 0; i < n; ++i) store_u16(out + 2 * i, f32_to_f16(x[i]));
    return;
  }
  const int64_t block = ggml_block_elems(t), bytes = ggml_row_bytes(t, block);
  for (int64_t b = 0; b < n / block; ++b)
    quantize_ggml_block(t, x + b * block, importance ? importance + b * block : nullptr, out + b * bytes);
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
    pack_block32(*t, scales[b], codes, out + b * block_bytes);
  }
}

}  // namespace lowbit
