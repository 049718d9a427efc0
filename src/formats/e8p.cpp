#include "formats/e8p.h"

#include <cmath>

#include "base/error.h"

namespace lowbit {

namespace {

E8pBook build_book() {
  E8pBook b;
  int n = 0;
  for (int target : {0, 48}) {  // 0: every Σa² <= 40; 48: the first 29 with Σa² == 48
    int taken = 0;
    for (int idx = 0; idx < 6561 && n < kE8pPatterns; ++idx) {  // 3^8, a_0 most significant
      std::array<uint8_t, kE8pDim> a{};
      int rest = idx, sq = 0;
      for (int i = kE8pDim - 1; i >= 0; --i, rest /= 3) {
        a[i] = static_cast<uint8_t>(2 * (rest % 3) + 1);
        sq += a[i] * a[i];
      }
      if (target == 0 ? sq > 40 : (sq != 48 || taken == 29)) continue;
      uint8_t odd3 = 0;
      for (int i = 0; i < kE8pDim; ++i)
        if (a[i] % 4 == 3) odd3 |= static_cast<uint8_t>(1u << i);
      b.a[n] = a;
      b.odd3[n] = odd3;
      b.odd3_parity[n] = static_cast<uint8_t>(__builtin_popcount(odd3) & 1);
      for (int i = 0; i < kE8pDim; ++i) b.half[i][n] = 0.5f * a[i];
      ++n;
      if (target == 48) ++taken;
    }
  }
  LOWBIT_ASSERT(n == kE8pPatterns);
  return b;
}

// Negative-sign mask of all eight coordinates of `code` (bit 7 from the parity rule).
unsigned sign_mask(uint16_t code, const E8pBook& b) {
  const unsigned p = code & 0xffu, neg7 = (code >> 8) & 0x7fu;
  const unsigned odd = b.odd3[p];
  const unsigned parity = static_cast<unsigned>(__builtin_popcount((neg7 ^ odd) & 0x7fu)) & 1u;
  return neg7 | ((parity ^ (odd >> 7)) << 7);
}

// Best code for one shift t: squared distance in *dist, code without the shift bit. For each
// pattern the signs follow y = x − t; when their parity is wrong, the coordinate whose flip
// costs least (ay·h) is flipped. All 256 patterns are scored coordinate by coordinate over the
// book's by-coordinate arrays (vectorizable); ties go to the lower pattern, then coordinate.
uint16_t nearest_for_shift(const float* x, float t, const E8pBook& b, float* dist) {
  float ay[kE8pDim], base = 0.0f;
  unsigned neg = 0;
  for (int i = 0; i < kE8pDim; ++i) {
    const float y = x[i] - t;
    ay[i] = std::fabs(y);
    base += ay[i] * ay[i];
    if (y < 0.0f) neg |= 1u << i;
  }
  alignas(32) float d[kE8pPatterns], min_cost[kE8pPatterns];
  for (int p = 0; p < kE8pPatterns; ++p) {
    d[p] = base;
    min_cost[p] = INFINITY;
  }
  for (int i = 0; i < kE8pDim; ++i) {
    const float* h = b.half[i];
    const float a = ay[i], two_a = 2.0f * ay[i];
    for (int p = 0; p < kE8pPatterns; ++p) {
      d[p] += h[p] * (h[p] - two_a);  // (ay - h)² - ay²
      const float cost = a * h[p];
      min_cost[p] = cost < min_cost[p] ? cost : min_cost[p];
    }
  }
  const unsigned neg_parity = static_cast<unsigned>(__builtin_popcount(neg)) & 1u;
  float best = INFINITY;
  int best_p = 0;
  for (int p = 0; p < kE8pPatterns; ++p) {
    // flip the sign costing least: (ay + h)² - (ay - h)²
    const float dp = (neg_parity ^ b.odd3_parity[p]) ? d[p] + 4.0f * min_cost[p] : d[p];
    if (dp < best) {
      best = dp;
      best_p = p;
    }
  }
  unsigned signs = neg;
  if ((neg_parity ^ b.odd3_parity[best_p]) != 0) {
    int arg = 0;
    for (int i = 1; i < kE8pDim; ++i)
      if (ay[i] * b.half[i][best_p] < ay[arg] * b.half[arg][best_p]) arg = i;
    signs ^= 1u << arg;
  }
  *dist = best;
  return static_cast<uint16_t>(best_p | ((signs & 0x7fu) << 8));
}

uint16_t code_of_pieces(const uint8_t* q) {
  unsigned c = 0;
  for (int j = 0; j < kE8pDim; ++j) c |= static_cast<unsigned>(q[j] & 3u) << (2 * j);
  return static_cast<uint16_t>(c);
}

// Codes of w[0..n) (n a multiple of 8) against scale p, as 2-bit pieces; values in rec.
void encode_chunks(const float* w, int64_t n, const GroupParams& p, uint8_t* q, float* rec) {
  LOWBIT_ASSERT(n % kE8pDim == 0);
  for (int64_t k = 0; k < n; k += kE8pDim) {
    float x[kE8pDim], v[kE8pDim];
    for (int i = 0; i < kE8pDim; ++i) x[i] = w[k + i] * p.inv_scale;
    const uint16_t code = e8p_nearest(x);
    if (q)
      for (int j = 0; j < kE8pDim; ++j) q[k + j] = static_cast<uint8_t>((code >> (2 * j)) & 3u);
    if (rec) {
      e8p_decode(code, v);
      for (int i = 0; i < kE8pDim; ++i) rec[k + i] = p.scale * v[i];
    }
  }
}

struct E8pKind {
  static uint8_t encode(const QuantSpec&, float, const GroupParams&) {
    LOWBIT_ASSERT(false);  // a vector format: codes come from encode_group only
    return 0;
  }
  static float decode(const QuantSpec&, uint8_t, const GroupParams&) {
    LOWBIT_ASSERT(false);
    return 0.0f;
  }
  static void encode_group(const QuantSpec&, const float* w, int64_t n, const GroupParams& p,
                           uint8_t* q) {
    encode_chunks(w, n, p, q, nullptr);
  }
  static void decode_group(const QuantSpec&, const uint8_t* q, int64_t n, const GroupParams& p,
                           float* out) {
    LOWBIT_ASSERT(n % kE8pDim == 0);
    for (int64_t k = 0; k < n; k += kE8pDim) {
      float v[kE8pDim];
      e8p_decode(code_of_pieces(q + k), v);
      for (int i = 0; i < kE8pDim; ++i) out[k + i] = p.scale * v[i];
    }
  }
  static double sq_error(const QuantSpec&, const float* w, const float* imp, int64_t n,
                         const GroupParams& p) {
    constexpr int64_t kChunk = 64;
    float rec[kChunk];
    double e = 0.0;
    for (int64_t b = 0; b < n; b += kChunk) {
      const int64_t len = std::min(kChunk, n - b);
      encode_chunks(w + b, len, p, nullptr, rec);
      for (int64_t j = 0; j < len; ++j) {
        const double d = static_cast<double>(w[b + j]) - rec[j];
        e += (imp ? static_cast<double>(imp[b + j]) : 1.0) * d * d;
      }
    }
    return e;
  }
};

}  // namespace

const E8pBook& e8p_book() {
  static const E8pBook book = build_book();
  return book;
}

void e8p_decode_x4(uint16_t code, int8_t out[kE8pDim]) {
  const E8pBook& b = e8p_book();
  const unsigned neg = sign_mask(code, b);
  const int t = code >> 15 ? -1 : 1;
  const uint8_t* a = b.a[code & 0xffu].data();
  for (int i = 0; i < kE8pDim; ++i)
    out[i] = static_cast<int8_t>(((neg >> i) & 1u ? -2 * a[i] : 2 * a[i]) + t);
}

void e8p_decode(uint16_t code, float out[kE8pDim]) {
  int8_t x4[kE8pDim];
  e8p_decode_x4(code, x4);
  for (int i = 0; i < kE8pDim; ++i) out[i] = 0.25f * static_cast<float>(x4[i]);
}

uint16_t e8p_nearest(const float x[kE8pDim]) {
  const E8pBook& b = e8p_book();
  float d_plus, d_minus;
  const uint16_t c_plus = nearest_for_shift(x, 0.25f, b, &d_plus);
  const uint16_t c_minus = nearest_for_shift(x, -0.25f, b, &d_minus);
  return d_minus < d_plus ? static_cast<uint16_t>(c_minus | 0x8000u) : c_plus;
}

GroupParams e8p_fit(const QuantSpec& s, const float* w, int64_t n, float clip) {
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(w[i]) * w[i];
  const float rms = n > 0 ? static_cast<float>(std::sqrt(sq / static_cast<double>(n))) : 0.0f;
  GroupParams best = make_group_params(s, 0.0f);
  if (rms == 0.0f) return best;
  double best_err = INFINITY;
  for (float r : kE8pRatios) {
    const GroupParams p = make_group_params(s, round_scale(s, clip * rms / kE8pSigma * r));
    const double e = E8pKind::sq_error(s, w, nullptr, n, p);
    if (e < best_err) {
      best_err = e;
      best = p;
    }
  }
  return best;
}

const GroupCodec kE8pCodec{&e8p_fit,
                           &E8pKind::encode,
                           &E8pKind::decode,
                           &E8pKind::encode_group,
                           &E8pKind::decode_group,
                           &E8pKind::sq_error};

}  // namespace lowbit
