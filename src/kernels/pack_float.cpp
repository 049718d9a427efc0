// Float-family packing: QuantizedMatrix (F32, F16, BF16, FP8) -> FloatPacked.
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/half.h"
#include "kernels/packed_layout.h"

namespace lowbit {

namespace {

void check_float_shape(const QuantizedMatrix& m, int elem_bytes) {
  const auto fail = [&](const std::string& what) {
    throw Error("kernels", m.spec.to_string() + " matrix [" + std::to_string(m.rows) + ", " +
                               std::to_string(m.cols) + "]: " + what);
  };
  if (m.rows < 0 || m.cols <= 0) fail("empty shape");
  if (static_cast<int64_t>(m.codes.size()) != m.rows * m.cols * elem_bytes) fail("codes size");
  if (m.spec.kind != FormatKind::FP8) return;
  const int64_t n = m.rows * m.groups_per_row();
  if (m.spec.double_quant) {
    const int64_t nb = (n + 255) / 256;
    if (static_cast<int64_t>(m.scale_codes.size()) != n ||
        static_cast<int64_t>(m.dq_scale.size()) != nb ||
        static_cast<int64_t>(m.dq_offset.size()) != nb)
      fail("double-quant arrays size");
  } else if (static_cast<int64_t>(m.scales.size()) != n) {
    fail("scales size");
  }
}

// e4m3 code -> the fp16 bits of e4m3(q) / 256: sign to bit 15, exponent+mantissa to bits 13..7.
// Normals and subnormals both land exactly (fp16's bias is 8 more than e4m3's); codes 0x7f/0xff
// (NaN in e4m3) read as ±480.
inline uint16_t fp8_as_f16_bits(uint8_t q) {
  return static_cast<uint16_t>(((q & 0x80u) << 8) | ((q & 0x7fu) << 7));
}

float element(const QuantizedMatrix& m, int64_t r, int64_t c) {
  const uint8_t* p = m.codes.data();
  const int64_t i = r * m.cols + c;
  switch (m.spec.kind) {
    case FormatKind::F32: {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      return f;
    }
    case FormatKind::F16:
      return f16_to_f32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
    case FormatKind::BF16:
      return bf16_to_f32(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
    default:
      return f16_to_f32(fp8_as_f16_bits(p[i]));
  }
}

}  // namespace

FloatPacked pack_float(const QuantizedMatrix& m, int tile_rows) {
  FloatPacked w;
  switch (m.spec.kind) {
    case FormatKind::F32:
      w.elem = FloatPacked::Elem::F32;
      break;
    case FormatKind::F16:
      w.elem = FloatPacked::Elem::F16;
      break;
    case FormatKind::BF16:
      w.elem = FloatPacked::Elem::BF16;
      break;
    default:
      w.elem = FloatPacked::Elem::FP8;
      break;
  }
  const int eb = w.elem == FloatPacked::Elem::F32 ? 4 : w.elem == FloatPacked::Elem::FP8 ? 1 : 2;
  check_float_shape(m, eb);
  const bool scalar = tile_rows == 1;
  w.tile_rows = tile_rows;
  w.rows = m.rows;
  w.cols = m.cols;
  w.row_tiles = (m.rows + tile_rows - 1) / tile_rows;
  const bool fp8 = w.elem == FloatPacked::Elem::FP8;
  w.group_len = fp8 ? m.group_len() : m.cols;
  w.n_groups = fp8 ? m.groups_per_row() : 1;
  const int R = tile_rows;
  if (scalar) {
    w.elems = AlignedBytes(w.rows * w.cols * 4);
    float* e = w.elems.as<float>();
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t c = 0; c < w.cols; ++c) e[r * w.cols + c] = element(m, r, c);
  } else {
    w.elems = AlignedBytes(w.row_tiles * w.cols * R * eb);
    uint8_t* e = w.elems.data();
    for (int64_t r = 0; r < w.rows; ++r) {
      const int64_t tile = r / R, lane = r % R;
      for (int64_t c = 0; c < w.cols; ++c) {
        const int64_t dst = ((tile * w.cols + c) * R + lane) * eb;
        if (fp8)
          e[dst] = m.codes[r * w.cols + c];
        else
          std::memcpy(e + dst, m.codes.data() + (r * w.cols + c) * eb, eb);
      }
    }
  }
  if (!fp8) return w;
  if (scalar || m.spec.double_quant)
    w.scale_store = ScaleStore::F32;
  else
    w.scale_store = m.spec.scale_type == ScaleType::BF16 ? ScaleStore::BF16 : ScaleStore::F16;
  const int ss = w.scale_store == ScaleStore::F32 ? 4 : 2;
  w.scales = AlignedBytes(w.row_tiles * w.n_groups * R * ss);
  for (int64_t r = 0; r < w.rows; ++r) {
    const int64_t tile = r / R, lane = r % R;
    for (int64_t g = 0; g < w.n_groups; ++g) {
      const int64_t slot = (tile * w.n_groups + g) * R + lane;
      if (w.scale_store == ScaleStore::F32)
        w.scales.as<float>()[slot] = group_scale(m, r, g);
      else
        w.scales.as<uint16_t>()[slot] = m.scales[r * w.n_groups + g];
    }
  }
  return w;
}

}  // namespace lowbit
