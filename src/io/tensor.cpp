#include "io/tensor.h"

#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/half.h"

namespace lowbit {

namespace {
constexpr int64_t kBlock = 32;  // GGUF Q8_0 / Q4_0 block length
constexpr size_t kQ8_0Bytes = 34, kQ4_0Bytes = 18;

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
}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
  }
  return "?";
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
    throw Error("tensor", t.name + ": " + dtype_name(t.dtype) + " needs a multiple of 32 elements");
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
  }
  return out;
}

}  // namespace lowbit
