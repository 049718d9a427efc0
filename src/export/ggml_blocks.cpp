#include "export/ggml_blocks.h"

#include <cctype>
#include <cstring>

#include "base/error.h"
#include "base/half.h"
#include "formats/bitpack.h"
#include "formats/int.h"

namespace lowbit {

namespace {

constexpr QuantSpec kInt4G32{FormatKind::Int, 4, 32, false, false, ScaleType::F16};
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

}  // namespace

const char* ggml_type_label(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q8_0: return "Q8_0";
  }
  return "?";
}

GgmlType parse_ggml_type(std::string_view s) {
  std::string up(s);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0})
    if (up == ggml_type_label(t)) return t;
  throw Error("export",
              "unknown --type '" + std::string(s) + "' (expected F32, F16, Q8_0 or Q4_0)");
}

int64_t ggml_block_elems(GgmlType t) {
  return t == GgmlType::Q4_0 || t == GgmlType::Q8_0 ? kGgmlBlock : 1;
}

int64_t ggml_row_bytes(GgmlType t, int64_t cols) {
  LOWBIT_ASSERT(cols >= 0 && cols % ggml_block_elems(t) == 0);
  switch (t) {
    case GgmlType::F32: return cols * 4;
    case GgmlType::F16: return cols * 2;
    case GgmlType::Q4_0: return cols / kGgmlBlock * kQ4_0BlockBytes;
    case GgmlType::Q8_0: return cols / kGgmlBlock * kQ8_0BlockBytes;
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
  }
  LOWBIT_ASSERT(false);
  return 0;
}

void quantize_q4_0_block(const float* x, uint8_t* out) {
  quantize_block<pack_q4_0>(kInt4G32, x, out);
}

void quantize_q8_0_block(const float* x, uint8_t* out) {
  quantize_block<pack_q8_0>(kInt8G32, x, out);
}

void encode_ggml_row(GgmlType t, const float* x, int64_t n, uint8_t* out) {
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
    case GgmlType::Q8_0:
      for (int64_t b = 0; b < n / kGgmlBlock; ++b)
        quantize_q8_0_block(x + b * kGgmlBlock, out + b * kQ8_0BlockBytes);
      return;
  }
}

std::optional<GgmlType> exact_block_type(const QuantSpec& spec, int64_t cols) {
  if (spec.kind != FormatKind::Int || spec.asym || spec.double_quant ||
      spec.scale_type != ScaleType::F16 || cols % kGgmlBlock != 0 ||
      spec.group_len(cols) != kGgmlBlock)
    return std::nullopt;
  if (spec.bits == 4) return GgmlType::Q4_0;
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
    else
      pack_q8_0(scales[b], codes, out + b * block_bytes);
  }
}

}  // namespace lowbit
