#include "io/tensor.h"

#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/half.h"

namespace lowbit {

namespace {
constexpr int64_t kBlock = 32;  // GGUF Q8_0 / Q4_0 / Q5_0 block length
constexpr int64_t kSuper = 256;  // GGUF K-quant super-block length
constexpr size_t kQ8_0Bytes = 34, kQ4_0Bytes = 18, kQ5_0Bytes = 22, kQ4_KBytes = 144,
                 kQ6_KBytes = 210;

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void decode_q8_0(const uint8_t* src, int64_t numel, float* dst) {
  for (int64_t b = 0; b < numel / kBlock; ++b, src += kQ8_0Bytes) {
    const float d = f16_to_f32(load_u16(src));
    const auto* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < kBlock; ++j) *dst++ = d * static_cast<float>(q[j]);
  }
}

// Q4_0: element j (j < 16) is the low nibble of byte j, element j + 16 its high nibble.
void decode_q4_0(const uint8_t* src, int64_t numel, float* dst) {
  for (int64_t b = 0; b < numel / kBlock; ++b, src += kQ4_0Bytes, dst += kBlock) {
    const float d = f16_to_f32(load_u16(src));
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * static_cast<float>((src[2 + j] & 0x0f) - 8);
      dst[j + 16] = d * static_cast<float>((src[2 + j] >> 4) - 8);
    }
  }
}

// Q5_0: low 4 bits as Q4_0 (after the 4 bytes of qh), bit j of the little-endian u32 qh is the
// 5th bit of element j.
void decode_q5_0(const uint8_t* src, int64_t numel, float* dst) {
  for (int64_t b = 0; b < numel / kBlock; ++b, src += kQ5_0Bytes, dst += kBlock) {
    const float d = f16_to_f32(load_u16(src));
    uint32_t qh = 0;
    for (int k = 0; k < 4; ++k) qh |= static_cast<uint32_t>(src[2 + k]) << (8 * k);
    for (int j = 0; j < 16; ++j) {
      const int lo = (src[6 + j] & 0x0f) | ((qh >> j) & 1) << 4;
      const int hi = (src[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
      dst[j] = d * static_cast<float>(lo - 16);
      dst[j + 16] = d * static_cast<float>(hi - 16);
    }
  }
}

// Q4_K: sub-block j (32 elements) has a 6-bit scale and min in scales[12]; its codes are the low
// (j even) or high (j odd) nibbles of qs[32 (j / 2) .. + 32).
void decode_q4_k(const uint8_t* src, int64_t numel, float* dst) {
  for (int64_t b = 0; b < numel / kSuper; ++b, src += kQ4_KBytes, dst += kSuper) {
    const float d = f16_to_f32(load_u16(src)), dmin = f16_to_f32(load_u16(src + 2));
    const uint8_t* s = src + 4;
    const uint8_t* qs = src + 16;
    for (int j = 0; j < 8; ++j) {
      const int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
      const int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
      const float step = d * static_cast<float>(sc), off = dmin * static_cast<float>(m);
      const uint8_t* q = qs + 32 * (j / 2);
      for (int l = 0; l < 32; ++l)
        dst[32 * j + l] = step * static_cast<float>(j % 2 ? q[l] >> 4 : q[l] & 15) - off;
    }
  }
}

// Q6_K: element e = 128h + 32k + l takes its low 4 bits from ql[64h + l + 32 (k & 1)] (low
// nibble for k < 2, high for k >= 2), its top 2 bits from bits 2k..2k+1 of qh[32h + l], and
// the int8 scale scales[e / 16].
void decode_q6_k(const uint8_t* src, int64_t numel, float* dst) {
  for (int64_t b = 0; b < numel / kSuper; ++b, src += kQ6_KBytes, dst += kSuper) {
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(src + 192);
    const float d = f16_to_f32(load_u16(src + 208));
    for (int e = 0; e < kSuper; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int lo = (ql[64 * h + l + 32 * (k & 1)] >> (k < 2 ? 0 : 4)) & 15;
      const int hi = (qh[32 * h + l] >> (2 * k)) & 3;
      dst[e] = d * static_cast<float>(sc[e / 16]) * static_cast<float>((lo | hi << 4) - 32);
    }
  }
}
}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q5_0: return "Q5_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q6_K: return "Q6_K";
  }
  return "?";
}

int64_t dtype_block_elems(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0: return kBlock;
    case DType::Q4_K:
    case DType::Q6_K: return kSuper;
    default: return 1;
  }
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t dtype_storage_bytes(DType t, int64_t numel) {
  const auto n = static_cast<size_t>(numel);
  switch (t) {
    case DType::F32: return n * 4;
    case DType::F16:
    case DType::BF16: return n * 2;
    case DType::Q8_0: return numel % kBlock ? 0 : n / kBlock * kQ8_0Bytes;
    case DType::Q4_0: return numel % kBlock ? 0 : n / kBlock * kQ4_0Bytes;
    case DType::Q5_0: return numel % kBlock ? 0 : n / kBlock * kQ5_0Bytes;
    case DType::Q4_K: return numel % kSuper ? 0 : n / kSuper * kQ4_KBytes;
    case DType::Q6_K: return numel % kSuper ? 0 : n / kSuper * kQ6_KBytes;
  }
  return 0;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& component,
                      const std::string& what) {
  constexpr int64_t kMax = int64_t{1} << 40;  // 1T elements: far beyond any real tensor
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > kMax) throw Error(component, what + ": absurd dimension " + std::to_string(d));
    if (d != 0 && n > kMax / d) throw Error(component, what + ": shape too large");
    n *= d;
  }
  return n;
}

std::vector<float> to_f32(const TensorView& t) {
  const int64_t n = t.numel();
  const size_t need = dtype_storage_bytes(t.dtype, n);
  if (need == 0 && n != 0)
    throw Error("tensor", t.name + ": " + dtype_name(t.dtype) + " needs a multiple of " +
                              std::to_string(dtype_block_elems(t.dtype)) + " elements");
  if (need != t.nbytes)
    throw Error("tensor", t.name + ": holds " + std::to_string(t.nbytes) + " bytes, shape needs " +
                              std::to_string(need));
  std::vector<float> out(static_cast<size_t>(n));
  const uint8_t* p = t.data;
  switch (t.dtype) {
    case DType::F32: std::memcpy(out.data(), p, need); break;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(load_u16(p + 2 * i));
      break;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load_u16(p + 2 * i));
      break;
    case DType::Q8_0: decode_q8_0(p, n, out.data()); break;
    case DType::Q4_0: decode_q4_0(p, n, out.data()); break;
    case DType::Q5_0: decode_q5_0(p, n, out.data()); break;
    case DType::Q4_K: decode_q4_k(p, n, out.data()); break;
    case DType::Q6_K: decode_q6_k(p, n, out.data()); break;
  }
  return out;
}

}  // namespace lowbit
