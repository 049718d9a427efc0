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

// Every stored code byte of one tiled block: u[lane·32 + column] for the R lanes. The bit
// planes of packed_layout.h put bits [off, off+p) of step s (columns 4s..4s+3) in vector s % p of
// the plane, at bit p·(s / p) of byte 4·lane + column % 4; one pass over the block's bytes.
void tiled_block_codes(const IntPacked& w, const uint8_t* block, uint8_t* u) {
  const int R = w.tile_rows;
  std::fill(u, u + R * kBlock, uint8_t{0});
  const PlaneSet ps = planes_for(w.bits);
  for (int pi = 0; pi < ps.n; ++pi) {
    const int p = ps.planes[pi].p, off = ps.planes[pi].off;
    const uint32_t mask = (1u << p) - 1u;
    for (int m = 0; m < p; ++m) {
      const uint8_t* vec = block + m * 4 * R;
      for (int K = 0; K < 8 / p; ++K) {
        const int step = m + p * K;
        for (int e = 0; e < 4 * R; ++e)
          u[(e / 4) * kBlock + 4 * step + e % 4] |= static_cast<uint8_t>(((vec[e] >> (p * K)) & mask) << off);
      }
    }
    block += p * 4 * R;
  }
}

// u − z as the kernels see it, from a stored code byte and the stored zero.
int32_t centered(const IntPacked& w, uint32_t stored, int32_t zero) {
  const uint32_t u = w.lut4 && w.tile_rows > 1 ? w.lut[stored & 15] : stored;
  const int32_t uval = w.wide ? static_cast<int8_t>(static_cast<uint8_t>(u)) : static_cast<int32_t>(u);
  return uval - zero;
}

// Rows [r0, r1) of row tile `tile` into out (row r at out + (r − r0)·cols).
void unpack_int_tile(const IntPacked& w, int64_t tile, int64_t r0, int64_t r1, float* out) {
  const int R = w.tile_rows;
  uint8_t codes[16 * kBlock];  // R <= 16
  int32_t value[256];          // centered(w, byte, 0) for every stored byte: one lookup per weight
  for (int c = 0; c < 256; ++c) value[c] = centered(w, static_cast<uint32_t>(c), 0);
  for (int64_t b = 0; b < w.n_blocks; ++b) {
    const int64_t g = b / w.blocks_per_group;
    const int64_t c0 = g * w.group_len + (b - g * w.blocks_per_group) * kBlock;
    const int64_t n = std::min<int64_t>({kBlock, w.cols - c0, (g + 1) * w.group_len - c0});
    const uint8_t* block = w.codes.data() + (tile * w.n_blocks + b) * w.block_bytes;
    if (w.e8p)
      e8p_block_codes(block, codes);
    else if (R > 1)
      tiled_block_codes(w, block, codes);
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t lane = row % R;
      const int64_t slot = R == 1 ? row * w.n_groups + g : (tile * w.n_groups + g) * R + lane;
      int32_t zero = w.const_zero;
      if (w.asym) zero = w.wide ? static_cast<int8_t>(w.zeros.data()[slot]) : w.zeros.data()[slot];
      const float s = stored_scale(w.scales, w.scale_store, slot) * w.act_mult;
      const uint8_t* u = R == 1 ? block : codes + lane * kBlock;
      float* o = out + (row - r0) * w.cols + c0;
      for (int64_t i = 0; i < n; ++i) o[i] = s * static_cast<float>(value[u[i]] - zero);
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
  const int64_t R = w.tile_rows;
  for (int64_t r = r0; r < r0 + n;) {
    const int64_t tile = r / R, end = std::min(r0 + n, (tile + 1) * R);
    unpack_int_tile(w, tile, r, end, out + (r - r0) * w.cols);
    r = end;
  }
}

void unpack_float_rows(const FloatPacked& w, int64_t r0, int64_t n, float* out) {
  for (int64_t r = 0; r < n; ++r) unpack_float_row(w, r0 + r, out + r * w.cols);
}

}  // namespace lowbit
