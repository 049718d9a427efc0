#include "io/ggml_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/half.h"

namespace lowbit {

namespace {

constexpr GgmlBlockLayout kQ4_0{32, 18, 32, 15, 8, nullptr};
constexpr GgmlBlockLayout kQ5_0{32, 22, 32, 31, 16, nullptr};
constexpr GgmlBlockLayout kQ5_1{32, 24, 32, 31, 0, nullptr};
constexpr GgmlBlockLayout kQ8_0{32, 34, 32, 255, 128, nullptr};
constexpr GgmlBlockLayout kIq4Nl{32, 18, 32, 15, 0, kIq4NlValues};
constexpr GgmlBlockLayout kQ3_K{256, 110, 16, 7, 4, nullptr};
constexpr GgmlBlockLayout kQ4_K{256, 144, 32, 15, 0, nullptr};
constexpr GgmlBlockLayout kQ5_K{256, 176, 32, 31, 0, nullptr};
constexpr GgmlBlockLayout kQ6_K{256, 210, 16, 63, 32, nullptr};
constexpr GgmlBlockLayout kQ2_K{256, 84, 16, 3, 0, nullptr};
constexpr GgmlBlockLayout kIq4Xs{256, 136, 32, 15, 0, kIq4NlValues};
constexpr GgmlBlockLayout kTq1_0{256, 54, 256, 2, 1, nullptr};
constexpr GgmlBlockLayout kTq2_0{256, 66, 256, 3, 1, nullptr};

float half_at(const uint8_t* p) {
  return f16_to_f32(static_cast<uint16_t>(p[0] | p[1] << 8));
}

// ---- headers --------------------------------------------------------------------------------

// Q4_K / Q5_K: 6-bit scale and min of sub-block j from the 12 packed bytes.
void k4_scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
    m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
  }
}

// Q3_K: 6-bit scale j (0..15) from the 12 packed bytes (unsigned, 32 means 0).
int k3_scale(const uint8_t* s, int j) {
  const int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
  const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return lo | hi << 4;
}

// IQ4_XS: 6-bit scale j (0..7; unsigned, 32 means 0): low 4 bits in nibble j % 2 of
// scales_l[j / 2] (4 bytes at 4), top 2 bits at bits 2j..2j+1 of the u16 scales_h (at 2).
int iq4xs_scale(const uint8_t* b, int j) {
  const int scales_h = b[2] | b[3] << 8;
  const int lo = (b[4 + j / 2] >> (4 * (j % 2))) & 15;
  return lo | ((scales_h >> (2 * j)) & 3) << 4;
}

// ---- code positions -------------------------------------------------------------------------

// Nibble e of a 32-element block: e < 16 low nibble of qs[e], else high nibble of qs[e - 16].
void unpack_nibbles32(const uint8_t* qs, uint8_t* codes) {
  for (int j = 0; j < 16; ++j) {
    codes[j] = qs[j] & 15;
    codes[j + 16] = qs[j] >> 4;
  }
}
void pack_nibbles32(uint8_t* qs, const uint8_t* codes) {
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((codes[j] & 15) | (codes[j + 16] & 15) << 4);
}

// Bit 4 of 32 codes in a little-endian u32.
void unpack_qh32(const uint8_t* qh, uint8_t* codes) {
  for (int j = 0; j < 32; ++j) codes[j] |= static_cast<uint8_t>(((qh[j / 8] >> (j % 8)) & 1) << 4);
}
void pack_qh32(uint8_t* qh, const uint8_t* codes) {
  std::memset(qh, 0, 4);
  for (int j = 0; j < 32; ++j) qh[j / 8] |= static_cast<uint8_t>(((codes[j] >> 4) & 1) << (j % 8));
}

// Q4_K / Q5_K low 4 bits: e = 64c + 32h + l in nibble h of qs[32c + l].
void unpack_k_nibbles(const uint8_t* qs, uint8_t* codes) {
  for (int e = 0; e < 256; ++e)
    codes[e] = (qs[32 * (e / 64) + e % 32] >> (e % 64 < 32 ? 0 : 4)) & 15;
}
void pack_k_nibbles(uint8_t* qs, const uint8_t* codes) {
  std::memset(qs, 0, 128);
  for (int e = 0; e < 256; ++e)
    qs[32 * (e / 64) + e % 32] |= static_cast<uint8_t>((codes[e] & 15) << (e % 64 < 32 ? 0 : 4));
}

// 2-bit codes of 256 elements in qs[64] (Q2_K, TQ2_0, and Q3_K's low bits):
// e = 128h + 32k + l at bits 2k..2k+1 of qs[32h + l].
void unpack_crumbs(const uint8_t* qs, uint8_t* codes) {
  for (int e = 0; e < 256; ++e)
    codes[e] = (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
}
void pack_crumbs(uint8_t* qs, const uint8_t* codes) {
  std::memset(qs, 0, 64);
  for (int e = 0; e < 256; ++e)
    qs[32 * (e / 128) + e % 32] |= static_cast<uint8_t>((codes[e] & 3) << (2 * ((e / 32) % 4)));
}

// TQ1_0 keeps base-3 digits (trits) in the 52 bytes qs[48] + qh[4] at the start of the block.
// A byte holds the digits t0..t4 of v = t0·81 + t1·27 + t2·9 + t3·3 + t4 (0 <= v < 243 = 3^5)
// as the fraction v / 243 rounded up to 8 bits: byte = ceil(256 v / 243). Digit n is read by
// multiplying by 3^n mod 256, which drops the n leading digits and keeps the fraction of the
// rest, then taking its leading digit floor(3 r / 256); any byte gives a digit in 0..2.
// qh bytes carry four digits (t4 = 0). Element order (byte, digit):
//   e < 160: (e % 32, e / 32);  e < 240: (32 + (e - 160) % 16, (e - 160) / 16);
//   else:    (48 + (e - 240) % 4, (e - 240) / 4).
constexpr int kPow3[5] = {1, 3, 9, 27, 81};

void tq1_position(int e, int& byte, int& digit) {
  if (e < 160) {
    byte = e % 32, digit = e / 32;
  } else if (e < 240) {
    byte = 32 + (e - 160) % 16, digit = (e - 160) / 16;
  } else {
    byte = 48 + (e - 240) % 4, digit = (e - 240) / 4;
  }
}

void unpack_trits(const uint8_t* q, uint8_t* codes) {
  for (int e = 0; e < 256; ++e) {
    int byte = 0, digit = 0;
    tq1_position(e, byte, digit);
    const int r = (q[byte] * kPow3[digit]) & 255;  // uint8 product: the remaining fraction
    codes[e] = static_cast<uint8_t>((r * 3) >> 8);
  }
}
void pack_trits(uint8_t* q, const uint8_t* codes) {
  int v[52] = {};
  for (int e = 0; e < 256; ++e) {
    int byte = 0, digit = 0;
    tq1_position(e, byte, digit);
    v[byte] += codes[e] * kPow3[4 - digit];
  }
  for (int i = 0; i < 52; ++i) q[i] = static_cast<uint8_t>((v[i] * 256 + 242) / 243);
}

}  // namespace

bool is_ggml_block_type(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return false;
    default: return true;
  }
}

const GgmlBlockLayout& ggml_block_layout(DType t) {
  switch (t) {
    case DType::Q4_0: return kQ4_0;
    case DType::Q5_0: return kQ5_0;
    case DType::Q5_1: return kQ5_1;
    case DType::Q8_0: return kQ8_0;
    case DType::IQ4_NL: return kIq4Nl;
    case DType::Q3_K: return kQ3_K;
    case DType::Q4_K: return kQ4_K;
    case DType::Q5_K: return kQ5_K;
    case DType::Q6_K: return kQ6_K;
    case DType::Q2_K: return kQ2_K;
    case DType::IQ4_XS: return kIq4Xs;
    case DType::TQ1_0: return kTq1_0;
    case DType::TQ2_0: return kTq2_0;
    default: break;
  }
  LOWBIT_ASSERT(false && "not a ggml block type");
  return kQ8_0;
}

void ggml_block_grids(DType t, const uint8_t* b, GgmlSubGrid* g) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
    case DType::IQ4_NL: g[0] = {half_at(b), 0.0f}; return;
    case DType::Q5_1: g[0] = {half_at(b), -half_at(b + 2)}; return;
    case DType::Q3_K: {
      const float d = half_at(b + 108);
      for (int j = 0; j < 16; ++j) g[j] = {d * static_cast<float>(k3_scale(b + 96, j) - 32), 0.0f};
      return;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const float d = half_at(b), dmin = half_at(b + 2);
      for (int j = 0; j < 8; ++j) {
        int sc = 0, m = 0;
        k4_scale_min(b + 4, j, sc, m);
        g[j] = {d * static_cast<float>(sc), dmin * static_cast<float>(m)};
      }
      return;
    }
    case DType::Q6_K: {
      const float d = half_at(b + 208);
      const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
      for (int j = 0; j < 16; ++j) g[j] = {d * static_cast<float>(sc[j]), 0.0f};
      return;
    }
    case DType::Q2_K: {
      // scales[j]: low nibble the scale, high nibble the min of sub-block j (both unsigned).
      const float d = half_at(b + 80), dmin = half_at(b + 82);
      for (int j = 0; j < 16; ++j)
        g[j] = {d * static_cast<float>(b[j] & 15), dmin * static_cast<float>(b[j] >> 4)};
      return;
    }
    case DType::IQ4_XS: {
      const float d = half_at(b);
      for (int j = 0; j < 8; ++j) g[j] = {d * static_cast<float>(iq4xs_scale(b, j) - 32), 0.0f};
      return;
    }
    case DType::TQ1_0: g[0] = {half_at(b + 52), 0.0f}; return;
    case DType::TQ2_0: g[0] = {half_at(b + 64), 0.0f}; return;
    default: LOWBIT_ASSERT(false && "not a ggml block type");
  }
}

uint8_t ggml_nearest_code(const GgmlBlockLayout& l, const GgmlSubGrid& g, float x) {
  if (l.codebook) {
    if (g.step == 0) return 8;  // code book value 1: the one nearest 0
    // The code book ascends, so the nearest entry is the first one >= v or the one below it
    // (binary search: this is the encoders' inner loop). Same result as scanning all entries
    // for the least |v - c| with the lower code on ties; a NaN v gives code 0 as the scan does.
    const float v = x / g.step;
    int lo = 0, hi = l.qmax;
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (l.codebook[mid] < v)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo > 0 && std::abs(v - l.codebook[lo - 1]) <= std::abs(v - l.codebook[lo])) --lo;
    return static_cast<uint8_t>(lo);
  }
  if (g.step == 0) return static_cast<uint8_t>(l.zero);
  const float q = std::nearbyint((x + g.min) / g.step) + static_cast<float>(l.zero);
  if (std::isnan(q)) return static_cast<uint8_t>(l.zero);  // callers reject NaN; no UB if not
  return static_cast<uint8_t>(std::clamp(q, 0.0f, static_cast<float>(l.qmax)));
}

void ggml_unpack_codes(DType t, const uint8_t* b, uint8_t* codes) {
  switch (t) {
    case DType::Q4_0:
    case DType::IQ4_NL: unpack_nibbles32(b + 2, codes); return;
    case DType::Q5_0:
      unpack_nibbles32(b + 6, codes);
      unpack_qh32(b + 2, codes);
      return;
    case DType::Q5_1:
      unpack_nibbles32(b + 8, codes);
      unpack_qh32(b + 4, codes);
      return;
    case DType::Q8_0:
      for (int j = 0; j < 32; ++j) codes[j] = static_cast<uint8_t>(b[2 + j] ^ 0x80);  // int8 + 128
      return;
    case DType::Q3_K:
      unpack_crumbs(b + 32, codes);
      for (int e = 0; e < 256; ++e)  // bit 2: bit e / 32 of hmask[e % 32]
        codes[e] |= static_cast<uint8_t>(((b[e % 32] >> (e / 32)) & 1) << 2);
      return;
    case DType::Q4_K: unpack_k_nibbles(b + 16, codes); return;
    case DType::Q5_K:
      unpack_k_nibbles(b + 48, codes);
      for (int e = 0; e < 256; ++e) codes[e] |= static_cast<uint8_t>(((b[16 + e % 32] >> (e / 32)) & 1) << 4);
      return;
    case DType::Q6_K: {
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      for (int e = 0; e < 256; ++e) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        const int lo = (ql[64 * h + 32 * (k & 1) + l] >> (k < 2 ? 0 : 4)) & 15;
        const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
        codes[e] = static_cast<uint8_t>(lo | hi << 4);
      }
      return;
    }
    case DType::Q2_K: unpack_crumbs(b + 16, codes); return;
    case DType::IQ4_XS:
      for (int j = 0; j < 8; ++j) unpack_nibbles32(b + 8 + 16 * j, codes + 32 * j);
      return;
    case DType::TQ1_0: unpack_trits(b, codes); return;
    case DType::TQ2_0: unpack_crumbs(b, codes); return;
    default: LOWBIT_ASSERT(false && "not a ggml block type");
  }
}

void ggml_pack_codes(DType t, uint8_t* b, const uint8_t* codes) {
  switch (t) {
    case DType::Q4_0:
    case DType::IQ4_NL: pack_nibbles32(b + 2, codes); return;
    case DType::Q5_0:
      pack_nibbles32(b + 6, codes);
      pack_qh32(b + 2, codes);
      return;
    case DType::Q5_1:
      pack_nibbles32(b + 8, codes);
      pack_qh32(b + 4, codes);
      return;
    case DType::Q8_0:
      for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(codes[j] ^ 0x80);
      return;
    case DType::Q3_K:
      pack_crumbs(b + 32, codes);
      std::memset(b, 0, 32);
      for (int e = 0; e < 256; ++e)
        b[e % 32] |= static_cast<uint8_t>(((codes[e] >> 2) & 1) << (e / 32));
      return;
    case DType::Q4_K: pack_k_nibbles(b + 16, codes); return;
    case DType::Q5_K:
      pack_k_nibbles(b + 48, codes);
      std::memset(b + 16, 0, 32);
      for (int e = 0; e < 256; ++e) b[16 + e % 32] |= static_cast<uint8_t>(((codes[e] >> 4) & 1) << (e / 32));
      return;
    case DType::Q6_K: {
      uint8_t* ql = b;
      uint8_t* qh = b + 128;
      std::memset(b, 0, 192);
      for (int e = 0; e < 256; ++e) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        ql[64 * h + 32 * (k & 1) + l] |= static_cast<uint8_t>((codes[e] & 15) << (k < 2 ? 0 : 4));
        qh[32 * h + l] |= static_cast<uint8_t>((codes[e] >> 4) << (2 * k));
      }
      return;
    }
    case DType::Q2_K: pack_crumbs(b + 16, codes); return;
    case DType::IQ4_XS:
      for (int j = 0; j < 8; ++j) pack_nibbles32(b + 8 + 16 * j, codes + 32 * j);
      return;
    case DType::TQ1_0: pack_trits(b, codes); return;
    case DType::TQ2_0: pack_crumbs(b, codes); return;
    default: LOWBIT_ASSERT(false && "not a ggml block type");
  }
}

void ggml_dequantize_block(DType t, const uint8_t* block, float* y) {
  const GgmlBlockLayout& l = ggml_block_layout(t);
  GgmlSubGrid grids[16];
  uint8_t codes[256];
  ggml_block_grids(t, block, grids);
  ggml_unpack_codes(t, block, codes);
  for (int64_t e = 0; e < l.elems; ++e) y[e] = ggml_code_value(l, grids[e / l.sub], codes[e]);
}

}  // namespace lowbit
