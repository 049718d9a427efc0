// E8P direct layout (packed_layout.h): packing, block decoding for dequantize_rows, and the
// tables the AVX-512 kernel decodes codes with.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/cpu.h"
#include "base/error.h"
#include "formats/e8p.h"
#include "kernels/packed_layout.h"

namespace lowbit {

namespace {

constexpr int kE8pTileRows = 16;
constexpr int kChunksPerBlock = kBlock / kE8pDim;               // 4
constexpr int kWordsPerBlock = kE8pTileRows * kChunksPerBlock;  // 64

// Where word i (0..63) of a packed block comes from: its chunk (0..3) and row lane (0..15).
struct WordSlot {
  int chunk, lane;
};
WordSlot word_slot(int i) {
  const int h = i / 32, k = i % 32;
  const int chunk = 2 * h + (k % 8 >= 4 ? 1 : 0);
  const int L = 2 * (k / 8) + (k % 4) / 2;
  return {chunk, L + 8 * (k % 2)};
}

uint16_t row_code(const QuantizedMatrix& m, int64_t r, int64_t c) {
  const uint8_t* p = m.codes.data() + r * m.row_code_bytes() + c / 4;
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

}  // namespace

bool runs_e8p_avx512() {
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx512vbmi &&
         f.gfni && f.avx512bitalg;
}

bool e8p_direct_enabled() {
  static const bool on = runs_e8p_avx512() && std::getenv("LOWBIT_E8P_EXPAND") == nullptr;
  return on;
}

void pack_e8p_codes(const QuantizedMatrix& m, IntPacked& w) {
  LOWBIT_ASSERT(w.tile_rows == kE8pTileRows);
  w.block_bytes = 2 * kWordsPerBlock;
  w.codes = AlignedBytes(w.row_tiles * w.n_blocks * w.block_bytes);
  uint16_t* out = w.codes.as<uint16_t>();
  for (int64_t tile = 0; tile < w.row_tiles; ++tile) {
    for (int64_t b = 0; b < w.n_blocks; ++b, out += kWordsPerBlock) {
      const int64_t g = b / w.blocks_per_group;
      const int64_t c0 = g * w.group_len + (b - g * w.blocks_per_group) * kBlock;
      const int64_t end = std::min(w.cols, (g + 1) * w.group_len);  // E8P groups are 8k columns
      for (int i = 0; i < kWordsPerBlock; ++i) {
        const WordSlot s = word_slot(i);
        const int64_t row = tile * kE8pTileRows + s.lane, c = c0 + int64_t{kE8pDim} * s.chunk;
        out[i] = row < w.rows && c < end ? row_code(m, row, c) : uint16_t{0};
      }
    }
  }
}

void e8p_block_codes(const uint8_t* block, uint8_t* u) {
  for (int i = 0; i < kWordsPerBlock; ++i) {
    uint16_t code;
    std::memcpy(&code, block + 2 * i, 2);
    int8_t v[kE8pDim];
    e8p_decode_x4(code, v);
    const WordSlot s = word_slot(i);
    for (int j = 0; j < kE8pDim; ++j)
      u[s.lane * kBlock + s.chunk * kE8pDim + j] = static_cast<uint8_t>(v[j] + 11);
  }
}

uint8_t* e8p_prefill_scratch(int64_t bytes) {
  thread_local AlignedBytes scratch;
  if (scratch.size() < bytes) scratch = AlignedBytes(bytes);
  return scratch.data();
}

const E8pKernelTables& e8p_kernel_tables() {
  static const E8pKernelTables t = [] {
    E8pKernelTables k{};
    const E8pBook& book = e8p_book();
    for (int p = 0; p < kE8pPatterns; ++p) {
      uint16_t planes = 0;
      for (int j = 0; j < kE8pDim; ++j) {
        if (book.a[p][j] == 3) planes |= static_cast<uint16_t>(1u << j);
        if (book.a[p][j] == 5) planes |= static_cast<uint16_t>(1u << (8 + j));
      }
      k.planes[p] = planes;
    }
    for (int n = 0; n < 64; ++n) {
      const int b = ((n >> 1) & 1) + 2 * (n & 1);  // |y| = (1 + 2b)/2
      const int twice_a = 2 + 4 * b;
      const int v = ((n & 8) ? -twice_a : twice_a) + ((n & 4) ? -1 : 1);
      k.nibble_u[n] = static_cast<uint8_t>(v + 11);
    }
    return k;
  }();
  return t;
}

}  // namespace lowbit
