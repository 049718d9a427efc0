// Integer-family kernels, AVX-512 + VNNI (compiled with -mavx512*; only called when
// cpu_features() reports AVX-512F/BW/VL/DQ/VNNI). The row-tile kernel is int_avx512_tile.h.
#include <immintrin.h>

#include <algorithm>

#include "kernels/int_avx512_tile.h"

namespace lowbit {

namespace {

template <int kBits, bool kLut>
void int_run(const IntPacked& w, const IntActs& a, int64_t tile0, int64_t tile1, int64_t T,
             float* y) {
  if (a.nt == 1) {  // decode: 4 row tiles at a time for independent dependency chains
    for (int64_t tile = tile0; tile < tile1;) {
      if (tile + 4 <= tile1) {
        __m512 out[4][1];
        int_tile<kBits, kLut, 4, 1>(w, w.codes.data() + tile * w.n_blocks * V * kBits, a, tile, 0, out);
        for (int i = 0; i < 4; ++i) store_rows(y, w.rows, tile + i, out[i][0]);
        tile += 4;
      } else {
        __m512 out[1][1];
        int_tile<kBits, kLut, 1, 1>(w, w.codes.data() + tile * w.n_blocks * V * kBits, a, tile, 0, out);
        store_rows(y, w.rows, tile, out[0][0]);
        tile += 1;
      }
    }
    return;
  }
  constexpr int NT = 8;
  constexpr int64_t chunk = kPrefillChunkTokens / NT;
  for (int64_t tt0 = 0; tt0 < a.tok_tiles; tt0 += chunk) {
    const int64_t tt1 = min64(a.tok_tiles, tt0 + chunk);
    for (int64_t tile = tile0; tile < tile1; ++tile) {
      for (int64_t tt = tt0; tt < tt1; ++tt) {
        __m512 out[1][NT];
        int_tile<kBits, kLut, 1, NT>(w, w.codes.data() + tile * w.n_blocks * V * kBits, a, tile, tt, out);
        for (int t = 0; t < NT && tt * NT + t < T; ++t)
          store_rows(y + (tt * NT + t) * w.rows, w.rows, tile, out[0][t]);
      }
    }
  }
}

}  // namespace

IntKernel int_kernel_avx512(const IntPacked& w) {
  if (w.lut4) return int_run<4, true>;
  switch (w.bits) {
    case 2:
      return int_run<2, false>;
    case 3:
      return int_run<3, false>;
    case 4:
      return int_run<4, false>;
    case 5:
      return int_run<5, false>;
    case 6:
      return int_run<6, false>;
    case 7:
      return int_run<7, false>;
    default:
      return int_run<8, false>;
  }
}

}  // namespace lowbit
