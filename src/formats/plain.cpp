#include "formats/plain.h"

#include <bit>
#include <cstring>

#include "base/error.h"
#include "base/half.h"

namespace lowbit {

static_assert(std::endian::native == std::endian::little, "stored values are little-endian");

int plain_element_bytes(FormatKind kind) {
  LOWBIT_ASSERT(kind == FormatKind::F32 || kind == FormatKind::F16 || kind == FormatKind::BF16);
  return kind == FormatKind::F32 ? 4 : 2;
}

void plain_store_row(FormatKind kind, const float* w, int64_t n, uint8_t* out) {
  if (kind == FormatKind::F32) {
    std::memcpy(out, w, static_cast<size_t>(n) * 4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = kind == FormatKind::F16 ? f32_to_f16(w[i]) : f32_to_bf16(w[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

void plain_load_row(FormatKind kind, const uint8_t* in, int64_t n, float* out) {
  if (kind == FormatKind::F32) {
    std::memcpy(out, in, static_cast<size_t>(n) * 4);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = kind == FormatKind::F16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

QuantizedMatrix store_plain(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec) {
  LOWBIT_ASSERT(!spec.quantized());
  QuantizedMatrix m = make_quantized_matrix(spec, rows, cols);
  const int64_t rb = m.row_code_bytes();
  for (int64_t r = 0; r < rows; ++r)
    plain_store_row(spec.kind, w + r * cols, cols, &m.codes[r * rb]);
  return m;
}

}  // namespace lowbit
