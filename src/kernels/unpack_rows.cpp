// Decoding packed rows back to fp32 (PackedMatrix::dequantize_rows): the exact weights the
// kernels multiply by, read from the per-ISA layouts documented in packed_layout.h.
#include <algorithm>

#include "base/half.h"
#include "formats/codebooks.h"
#include "kernels/packed_layout.h"

namespace lowbit {

namespace {

float stored_scale(const AlignedBytes& s, ScaleStore store, int64_t slot) {
  switch (store) {
    case ScaleStore::F32:
      return s.as<float>()[slot];
    case ScaleStore::BF16:
      return bf16_to_f32(s.as<uint16_t>()[slot]);
    default:
      return f16_to_f32(s.as<uint16_t>()[slot]);
  }
}

// The stored byte of lane r, column i (< 32) of one tiled code block: the bit planes of
// packed_layout.h put bits [off, off+p) of step s = i/4 in vector s % p, at bit p·(s / p).
uint32_t tiled_code(const IntPacked& w, const uint8_t* block, int r, int i) {
  const int R = w.tile_rows, step = i / 4, e = 4 * r + i % 4;
  const PlaneSet ps = planes_for(w.bits);
  uint32_t v = 0;
  for (int pi = 0; pi < ps.n; ++pi) {
    const int p = ps.planes[pi].p, off = ps.planes[pi].off;
    const uint32_t byte = block[(step % p) * 4 * R + e];
    v |= ((byte >> (p * (step / p))) & ((1u << p) - 1u)) << off;
    block += p * 4 * R;
  }
  return v;
}

// u − z as the kernels see it, from a stored code byte and the stored zero.
int32_t centered(const IntPacked& w, uint32_t stored, int32_t zero) {
  const uint32_t u = w.lut4 && w.tile_rows > 1 ? w.lut[stored & 15] : stored;
  const int32_t uval = w.wide ? static_cast<int8_t>(static_cast<uint8_t>(u)) : static_cast<int32_t>(u);
  return uval - zero;
}

void unpack_int_row(const IntPacked& w, int64_t row, float* out) {
  const int R = w.tile_rows;
  const int64_t tile = row / R, lane = row % R;
  for (int64_t b = 0; b < w.n_blocks; ++b) {
    const int64_t g = b / w.blocks_per_group;
    const int64_t c0 = g * w.group_len + (b - g * w.blocks_per_group) * kBlock;
    const int64_t n = std::min<int64_t>({kBlock, w.cols - c0, (g + 1) * w.group_len - c0});
    const int64_t slot = R == 1 ? row * w.n_groups + g : (tile * w.n_groups + g) * R + lane;
    int32_t zero = w.const_zero;
    if (w.asym) zero = w.wide ? static_cast<int8_t>(w.zeros.data()[slot]) : w.zeros.data()[slot];
    const float s = stored_scale(w.scales, w.scale_store, slot) * w.act_mult;
    const uint8_t* block = w.codes.data() + (tile * w.n_blocks + b) * w.block_bytes;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t code = R == 1 ? block[i] : tiled_code(w, block, static_cast<int>(lane), static_cast<int>(i));
      out[c0 + i] = s * static_cast<float>(centered(w, code, zero));
    }
  }
}

float float_elem(const FloatPacked& w, int64_t row, int64_t c) {
  const int R = w.tile_rows;
  if (R == 1) return w.elems.as<float>()[row * w.cols + c] * (w.elem == FloatPacked::Elem::FP8 ? 256.0f : 1.0f);
  const int64_t idx = ((row / R) * w.cols + c) * R + row % R;
  switch (w.elem) {
    case FloatPacked::Elem::F32:
      return w.elems.as<float>()[idx];
    case FloatPacked::Elem::F16:
      return f16_to_f32(w.elems.as<uint16_t>()[idx]);
    case FloatPacked::Elem::BF16:
      return bf16_to_f32(w.elems.as<uint16_t>()[idx]);
    default:
      return fp8_e4m3_to_f32(w.elems.data()[idx]);
  }
}

void unpack_float_row(const FloatPacked& w, int64_t row, float* out) {
  const int R = w.tile_rows;
  for (int64_t c = 0; c < w.cols; ++c) {
    float v = float_elem(w, row, c);
    if (w.elem == FloatPacked::Elem::FP8) {
      const int64_t g = c / w.group_len;
      const int64_t slot = R == 1 ? row * w.n_groups + g : ((row / R) * w.n_groups + g) * R + row % R;
      v *= stored_scale(w.scales, w.scale_store, slot);
    }
    out[c] = v;
  }
}

}  // namespace

void unpack_int_rows(const IntPacked& w, int64_t r0, int64_t n, float* out) {
  for (int64_t r = 0; r < n; ++r) unpack_int_row(w, r0 + r, out + r * w.cols);
}

void unpack_float_rows(const FloatPacked& w, int64_t r0, int64_t n, float* out) {
  for (int64_t r = 0; r < n; ++r) unpack_float_row(w, r0 + r, out + r * w.cols);
}

}  // namespace lowbit
