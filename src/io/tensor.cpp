#include "io/tensor.h"

#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/half.h"
#include "io/ggml_quants.h"

namespace lowbit {

namespace {
uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
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
    case DType::Q5_1: return "Q5_1";
    case DType::Q3_K: return "Q3_K";
    case DType::Q5_K: return "Q5_K";
    case DType::IQ4_NL: return "IQ4_NL";
    case DType::Q2_K: return "Q2_K";
    case DType::IQ4_XS: return "IQ4_XS";
    case DType::TQ1_0: return "TQ1_0";
    case DType::TQ2_0: return "TQ2_0";
  }
  return "?";
}

int64_t dtype_block_elems(DType t) {
  return is_ggml_block_type(t) ? ggml_block_layout(t).elems : 1;
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
    default: {
      const GgmlBlockLayout& l = ggml_block_layout(t);
      return numel % l.elems ? 0 : n / static_cast<size_t>(l.elems) * static_cast<size_t>(l.bytes);
    }
  }
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
    default: {
      const GgmlBlockLayout& l = ggml_block_layout(t.dtype);
      for (int64_t b = 0; b < n / l.elems; ++b) ggml_dequantize_block(t.dtype, p + b * l.bytes, &out[b * l.elems]);
    }
  }
  return out;
}

}  // namespace lowbit
