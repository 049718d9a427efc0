#include "formats/bitpack.h"

#include "base/error.h"

namespace lowbit {

void pack_codes(const uint8_t* codes, int64_t n, int bits, uint8_t* out) {
  LOWBIT_ASSERT(bits >= 1 && bits <= 8);
  const uint32_t mask = (1u << bits) - 1u;
  uint32_t acc = 0;  // pending bits, LSB first; never holds more than 7 + 8 bits
  int pending = 0;
  for (int64_t j = 0; j < n; ++j) {
    acc |= (codes[j] & mask) << pending;
    pending += bits;
    while (pending >= 8) {
      *out++ = static_cast<uint8_t>(acc);
      acc >>= 8;
      pending -= 8;
    }
  }
  if (pending > 0) *out = static_cast<uint8_t>(acc);
}

void unpack_codes(const uint8_t* packed, int64_t n, int bits, uint8_t* codes) {
  LOWBIT_ASSERT(bits >= 1 && bits <= 8);
  const uint32_t mask = (1u << bits) - 1u;
  uint32_t acc = 0;
  int avail = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (avail < bits) {  // one more byte always suffices since bits <= 8
      acc |= static_cast<uint32_t>(*packed++) << avail;
      avail += 8;
    }
    codes[j] = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    avail -= bits;
  }
}

}  // namespace lowbit
