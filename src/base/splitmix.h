// splitmix64's output function: a counter-based mix, so that a value derived from (seed, index)
// needs no generator state and threads can fill disjoint ranges independently.
#pragma once

#include <cstdint>

namespace lowbit {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace lowbit
