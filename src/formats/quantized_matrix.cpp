#include "formats/quantized_matrix.h"

#include <algorithm>

#include "base/error.h"
#include "base/half.h"
#include "formats/bitpack.h"
#include "formats/double_quant.h"
#include "formats/plain.h"
#include "formats/registry.h"

namespace lowbit {

int64_t storage_bytes(const QuantSpec& spec, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  const int64_t code_bytes = rows * packed_bytes(cols, spec.bits);
  if (!spec.quantized()) return code_bytes;
  const int64_t g = spec.group_len(cols);
  const int64_t n_groups = rows * ((cols + g - 1) / g);
  int64_t bytes = code_bytes;
  if (spec.double_quant) {
    bytes += n_groups + dq_blocks(n_groups) * 8;  // 1 code per scale, fp32 scale + offset per block
  } else {
    bytes += n_groups * 2;  // fp16/bf16 scales
  }
  if (spec.asym) bytes += n_groups;  // uint8 zero-points
  return bytes;
}

int64_t QuantizedMatrix::storage_bytes() const {
  return lowbit::storage_bytes(spec, rows, cols);
}

double QuantizedMatrix::bits_per_weight() const {
  if (rows <= 0 || cols <= 0) return 0.0;
  return static_cast<double>(storage_bytes()) * 8.0 / (static_cast<double>(rows) * cols);
}

QuantizedMatrix make_quantized_matrix(const QuantSpec& spec, int64_t rows, int64_t cols) {
  LOWBIT_ASSERT(rows >= 1 && cols >= 1);
  QuantizedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  m.codes.assign(static_cast<size_t>(rows * m.row_code_bytes()), 0);
  if (!spec.quantized()) return m;
  const size_t n_groups = static_cast<size_t>(rows * m.groups_per_row());
  if (spec.double_quant) {
    m.scale_codes.assign(n_groups, 0);
    m.dq_scale.assign(static_cast<size_t>(dq_blocks(n_groups)), 0.0f);
    m.dq_offset.assign(static_cast<size_t>(dq_blocks(n_groups)), 0.0f);
  } else {
    m.scales.assign(n_groups, 0);
  }
  if (spec.asym) m.zeros.assign(n_groups, 0);
  return m;
}

void set_group_params(QuantizedMatrix& m, int64_t row, int64_t g, const GroupParams& p) {
  LOWBIT_ASSERT(!m.spec.double_quant && m.spec.quantized());
  const int64_t i = row * m.groups_per_row() + g;
  m.scales[i] = m.spec.scale_type == ScaleType::BF16 ? f32_to_bf16(p.scale) : f32_to_f16(p.scale);
  if (m.spec.asym) m.zeros[i] = static_cast<uint8_t>(p.zero);
}

void set_double_quant_scales(QuantizedMatrix& m, const float* scales) {
  LOWBIT_ASSERT(m.spec.double_quant);
  double_quantize(scales, static_cast<int64_t>(m.scale_codes.size()), m.scale_codes.data(),
                  m.dq_scale.data(), m.dq_offset.data());
}

void set_row_codes(QuantizedMatrix& m, int64_t row, const uint8_t* codes) {
  LOWBIT_ASSERT(m.spec.quantized());
  pack_codes(codes, m.cols, m.spec.bits, &m.codes[row * m.row_code_bytes()]);
}

GroupParams group_params(const QuantizedMatrix& m, int64_t row, int64_t g) {
  const int64_t i = row * m.groups_per_row() + g;
  if (m.spec.double_quant) {
    const int64_t b = i / kDqBlock;
    return make_group_params(m.spec,
                             dq_decode_scale(m.scale_codes[i], m.dq_scale[b], m.dq_offset[b]));
  }
  const uint16_t h = m.scales[i];
  const float scale = m.spec.scale_type == ScaleType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  return make_group_params(m.spec, scale, m.spec.asym ? m.zeros[i] : 0);
}

uint8_t code_at(const QuantizedMatrix& m, int64_t row, int64_t col) {
  return packed_code(&m.codes[row * m.row_code_bytes()], col, m.spec.bits);
}

void dequantize_row(const QuantizedMatrix& m, int64_t row, float* out) {
  const uint8_t* packed = &m.codes[row * m.row_code_bytes()];
  if (!m.spec.quantized()) {
    plain_load_row(m.spec.kind, packed, m.cols, out);
    return;
  }
  const GroupCodec& codec = *format_info(m.spec.kind).codec;
  const int64_t glen = m.group_len();
  constexpr int64_t kChunk = 256;  // codes unpacked per step into a stack buffer
  uint8_t q[kChunk];
  for (int64_t g = 0; g < m.groups_per_row(); ++g) {
    const GroupParams p = group_params(m, row, g);
    const int64_t end = std::min(m.cols, (g + 1) * glen);
    for (int64_t begin = g * glen; begin < end; begin += kChunk) {
      const int64_t n = std::min(kChunk, end - begin);
      for (int64_t k = 0; k < n; ++k) q[k] = packed_code(packed, begin + k, m.spec.bits);
      codec.decode_group(m.spec, q, n, p, out + begin);
    }
  }
}

std::vector<float> dequantize(const QuantizedMatrix& m) {
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) dequantize_row(m, r, &out[r * m.cols]);
  return out;
}

}  // namespace lowbit
