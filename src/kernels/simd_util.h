// Internal: compile-time helpers shared by the per-ISA kernel sources (no intrinsics here).
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/packed_layout.h"

namespace lowbit {

// Calls f(std::integral_constant<int, I>{}) for I = 0 .. N-1, fully unrolled.
template <int N, class F>
inline __attribute__((always_inline)) void static_for(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
  }
  (std::make_integer_sequence<int, N>{});
}

// Byte offset of plane `pi` of a `bits`-bit layout inside a block, in units of one step vector.
constexpr int plane_base(int bits, int pi) {
  int base = 0;
  for (int i = 0; i < pi; ++i) base += planes_for(bits).planes[i].p;
  return base;
}

// Largest value a stored (non-wide) u can take for a kernel instantiation.
constexpr int max_u(int bits, bool lut) {
  return lut ? 255 : (1 << bits) - 1;
}

// Token tiles per cache chunk in prefill: 64 tokens of activations stay in L2 while each row
// tile's weights are reused for all of them.
inline constexpr int64_t kPrefillChunkTokens = 64;

}  // namespace lowbit
