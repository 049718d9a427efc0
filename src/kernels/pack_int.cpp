// Integer-family packing: QuantizedMatrix -> IntPacked (layouts in packed_layout.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/error.h"
#include "base/half.h"
#include "formats/codebooks.h"
#include "formats/double_quant.h"
#include "formats/e8p.h"
#include "kernels/packed_layout.h"

namespace lowbit {

AlignedBytes::AlignedBytes(int64_t n) : size_(n) {
  const size_t bytes = (static_cast<size_t>(std::max<int64_t>(n, 1)) + 63) / 64 * 64;
  ptr_ = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  LOWBIT_ASSERT(ptr_ != nullptr);
  std::memset(ptr_, 0, bytes);
}

bool is_int_family(FormatKind kind) {
  return kind == FormatKind::Int || kind == FormatKind::Ternary || kind == FormatKind::NF4 ||
         kind == FormatKind::FP4 || kind == FormatKind::E8P;
}

float group_scale(const QuantizedMatrix& m, int64_t r, int64_t g) {
  const int64_t i = r * m.groups_per_row() + g;
  if (m.spec.double_quant) {
    const int64_t b = i / kDqBlock;
    return dq_decode_scale(m.scale_codes[i], m.dq_scale[b], m.dq_offset[b]);
  }
  return m.spec.scale_type == ScaleType::BF16 ? bf16_to_f32(m.scales[i]) : f16_to_f32(m.scales[i]);
}

namespace {

// How one integer-family format maps codes to (u, z, m); see packed_matrix.h.
struct IntMapping {
  int bits;
  bool lut4;
  std::array<uint8_t, 16> lut{};  // q -> u (LUT formats)
  int32_t zero;                   // sym zero
  float act_mult;
  int max_u;
};

IntMapping int_mapping(const QuantSpec& s) {
  IntMapping mp{};
  mp.act_mult = 1.0f;
  switch (s.kind) {
    case FormatKind::Int:
      mp.bits = s.bits;
      mp.zero = 1 << (s.bits - 1);
      mp.max_u = (1 << s.bits) - 1;
      break;
    case FormatKind::Ternary:
      mp.bits = 2;
      mp.zero = 1;
      mp.max_u = 3;
      break;
    case FormatKind::NF4:  // int8 levels round(127·kNf4[q]), offset by 127 to be unsigned
      mp.bits = 4;
      mp.lut4 = true;
      for (int q = 0; q < 16; ++q)
        mp.lut[q] = static_cast<uint8_t>(std::lround(127.0f * kNf4[q]) + 127);
      mp.zero = 127;
      mp.act_mult = 1.0f / 127.0f;
      mp.max_u = 254;
      break;
    case FormatKind::FP4:  // 2·e2m1 is an exact integer in [-12, 12]
      mp.bits = 4;
      mp.lut4 = true;
      for (int q = 0; q < 16; ++q)
        mp.lut[q] = static_cast<uint8_t>(static_cast<int>(2.0f * kFp4E2M1[q]) + 12);
      mp.zero = 12;
      mp.act_mult = 0.5f;
      mp.max_u = 24;
      break;
    case FormatKind::E8P:  // 4·value/scale is an odd integer v in [-11, 11]: q = (v + 11)/2
      mp.bits = 4;
      mp.lut4 = true;
      for (int q = 0; q < 12; ++q) mp.lut[q] = static_cast<uint8_t>(2 * q);
      mp.zero = 11;
      mp.act_mult = 0.25f;
      mp.max_u = 22;
      break;
    default:
      LOWBIT_ASSERT(false);
  }
  return mp;
}

void check_shape(const QuantizedMatrix& m) {
  const int64_t n = m.rows * m.groups_per_row();
  const auto fail = [&](const std::string& what) {
    throw Error("kernels", m.spec.to_string() + " matrix [" + std::to_string(m.rows) + ", " +
                               std::to_string(m.cols) + "]: " + what);
  };
  if (m.rows < 0 || m.cols <= 0) fail("empty shape");
  if (m.spec.kind == FormatKind::E8P && m.cols % kE8pDim != 0) fail("columns not a multiple of 8");
  if (static_cast<int64_t>(m.codes.size()) != m.rows * m.row_code_bytes()) fail("codes size");
  if (m.spec.double_quant) {
    const int64_t nb = dq_blocks(n);
    if (static_cast<int64_t>(m.scale_codes.size()) != n) fail("scale_codes size");
    if (static_cast<int64_t>(m.dq_scale.size()) != nb ||
        static_cast<int64_t>(m.dq_offset.size()) != nb)
      fail("double-quant block arrays size");
  } else if (static_cast<int64_t>(m.scales.size()) != n) {
    fail("scales size");
  }
  if (m.spec.asym && static_cast<int64_t>(m.zeros.size()) != n) fail("zeros size");
}

// E8P: the 4-bit LUT index (v + 11)/2 of every weight [rows, cols], v = 4·value/scale of its
// 8-weight code; each code decoded once.
std::vector<uint8_t> e8p_lut_indices(const QuantizedMatrix& m) {
  std::vector<uint8_t> q(static_cast<size_t>(m.rows * m.cols));
  for (int64_t r = 0; r < m.rows; ++r) {
    const uint8_t* row = m.codes.data() + r * m.row_code_bytes();
    for (int64_t c = 0; c < m.cols; c += kE8pDim) {
      int8_t v[kE8pDim];
      e8p_decode_x4(static_cast<uint16_t>(row[c / 4] | (row[c / 4 + 1] << 8)), v);
      for (int j = 0; j < kE8pDim; ++j) q[r * m.cols + c + j] = static_cast<uint8_t>((v[j] + 11) / 2);
    }
  }
  return q;
}

// The stored byte of column c of row r (0 for padding), before any plane split.
struct RowSource {
  const QuantizedMatrix& m;
  const IntMapping& mp;
  bool store_code;  // LUT formats in a tile layout keep q
  uint8_t flip;     // 0x80 when wide
  const std::vector<uint8_t>& e8p_q;  // E8P: e8p_lut_indices(m); else empty

  uint8_t at(int64_t r, int64_t c) const {
    const uint32_t q = !e8p_q.empty() ? e8p_q[r * m.cols + c]
                                      : read_code(m.codes.data() + r * m.row_code_bytes(), c, m.spec.bits);
    const uint32_t u = mp.lut4 && !store_code ? mp.lut[q & 15] : q;
    return static_cast<uint8_t>(store_code ? u : (u ^ flip));
  }
};

// Column where block b starts and the number of real columns in it.
void block_span(const IntPacked& w, int64_t b, int64_t* c0, int* n) {
  const int64_t g = b / w.blocks_per_group;
  *c0 = g * w.group_len + (b - g * w.blocks_per_group) * kBlock;
  const int64_t gend = std::min(w.cols, (g + 1) * w.group_len);
  *n = static_cast<int>(std::min<int64_t>(kBlock, gend - *c0));
}

void pack_codes_tiled(const RowSource& src, IntPacked& w) {
  const int R = w.tile_rows;
  const PlaneSet ps = planes_for(w.bits);
  std::vector<uint8_t> ub(static_cast<size_t>(R) * kBlock);
  for (int64_t tile = 0; tile < w.row_tiles; ++tile) {
    for (int64_t b = 0; b < w.n_blocks; ++b) {
      int64_t c0;
      int n;
      block_span(w, b, &c0, &n);
      std::fill(ub.begin(), ub.end(), 0);
      for (int r = 0; r < R; ++r) {
        const int64_t row = tile * R + r;
        if (row >= w.rows) break;
        for (int i = 0; i < n; ++i) ub[r * kBlock + i] = src.at(row, c0 + i);
      }
      uint8_t* out = w.codes.data() + (tile * w.n_blocks + b) * w.block_bytes;
      for (int pi = 0; pi < ps.n; ++pi) {
        const int p = ps.planes[pi].p, off = ps.planes[pi].off;
        const uint32_t mask = (1u << p) - 1u;
        for (int mv = 0; mv < p; ++mv) {
          for (int e = 0; e < 4 * R; ++e) {
            const int r = e / 4, i = e % 4;
            uint32_t byte = 0;
            for (int K = 0; K < 8 / p; ++K) {
              const int step = mv + p * K;
              byte |= ((ub[r * kBlock + 4 * step + i] >> off) & mask) << (p * K);
            }
            out[e] = static_cast<uint8_t>(byte);
          }
          out += 4 * R;
        }
      }
    }
  }
}

void pack_codes_scalar(const RowSource& src, IntPacked& w) {
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int64_t b = 0; b < w.n_blocks; ++b) {
      int64_t c0;
      int n;
      block_span(w, b, &c0, &n);
      uint8_t* out = w.codes.data() + (r * w.n_blocks + b) * kBlock;
      for (int i = 0; i < n; ++i) out[i] = src.at(r, c0 + i);
    }
  }
}

void pack_scales_zeros(const QuantizedMatrix& m, IntPacked& w) {
  const int R = w.tile_rows;
  const int64_t G = w.n_groups, slots = w.row_tiles * G * R;
  const int ssize = w.scale_store == ScaleStore::F32 ? 4 : 2;
  w.scales = AlignedBytes(slots * ssize);
  if (w.asym) w.zeros = AlignedBytes(slots);
  const uint8_t zflip = w.wide ? 0x80 : 0;
  for (int64_t r = 0; r < m.rows; ++r) {
    const int64_t tile = r / R, lane = r % R;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t slot = (tile * G + g) * R + lane, i = r * G + g;
      if (w.scale_store == ScaleStore::F32)
        w.scales.as<float>()[slot] = group_scale(m, r, g);
      else
        w.scales.as<uint16_t>()[slot] = m.scales[i];
      if (w.asym) w.zeros.data()[slot] = static_cast<uint8_t>(m.zeros[i] ^ zflip);
    }
  }
}

}  // namespace

IntPacked pack_int(const QuantizedMatrix& m, Isa isa, int tile_rows) {
  check_shape(m);
  const IntMapping mp = int_mapping(m.spec);
  IntPacked w;
  w.tile_rows = tile_rows;
  w.bits = mp.bits;
  w.lut4 = mp.lut4;
  w.wide = isa == Isa::Avx2 && mp.max_u > 127;
  w.asym = m.spec.kind == FormatKind::Int && m.spec.asym;
  w.const_zero = w.wide ? mp.zero - 128 : mp.zero;
  w.act_mult = mp.act_mult;
  for (int q = 0; q < 16; ++q) w.lut[q] = static_cast<uint8_t>(mp.lut[q] ^ (w.wide ? 0x80 : 0));
  w.rows = m.rows;
  w.cols = m.cols;
  w.row_tiles = (m.rows + tile_rows - 1) / tile_rows;
  w.group_len = m.group_len();
  w.n_groups = m.groups_per_row();
  w.blocks_per_group = (w.group_len + kBlock - 1) / kBlock;
  const int64_t last_len = m.cols - (w.n_groups - 1) * w.group_len;
  w.n_blocks = (w.n_groups - 1) * w.blocks_per_group + (last_len + kBlock - 1) / kBlock;
  const bool scalar = tile_rows == 1;
  if (scalar || m.spec.double_quant)
    w.scale_store = ScaleStore::F32;
  else
    w.scale_store = m.spec.scale_type == ScaleType::BF16 ? ScaleStore::BF16 : ScaleStore::F16;
  if (m.spec.kind == FormatKind::E8P && isa == Isa::Avx512 && tile_rows == 16 && e8p_direct_enabled()) {
    // The codes as they are, decoded by the kernel (same u, z and m as below). w.lut keeps E8P's
    // q -> u table: the prefill path decodes each row tile into the 4-bit look-up layout.
    w.e8p = true;
    w.lut4 = false;
    w.bits = 2;
    pack_e8p_codes(m, w);
    pack_scales_zeros(m, w);
    return w;
  }
  const std::vector<uint8_t> e8p_q = m.spec.kind == FormatKind::E8P ? e8p_lut_indices(m) : std::vector<uint8_t>{};
  const RowSource src{m, mp, /*store_code=*/mp.lut4 && !scalar, w.wide ? uint8_t{0x80} : uint8_t{0}, e8p_q};
  if (scalar) {
    w.block_bytes = kBlock;
    w.codes = AlignedBytes(w.rows * w.n_blocks * kBlock);
    pack_codes_scalar(src, w);
  } else {
    w.block_bytes = 4 * tile_rows * w.bits;
    w.codes = AlignedBytes(w.row_tiles * w.n_blocks * w.block_bytes);
    pack_codes_tiled(src, w);
  }
  pack_scales_zeros(m, w);
  return w;
}

}  // namespace lowbit
