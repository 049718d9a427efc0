// Bit packing of b-bit codes (b in 1..8), LSB-first: code j occupies bits [j*b, (j+1)*b) of the
// packed bytes, bit 0 being the least significant bit of byte 0. n codes take
// packed_bytes(n, b) = ceil(n*b / 8) bytes; the unused high bits of the last byte are zero.
// This is the per-row code layout of QuantizedMatrix (each row starts on a byte boundary).
#pragma once

#include <cstdint>

namespace lowbit {

inline int64_t packed_bytes(int64_t n, int bits) {
  return (n * bits + 7) / 8;
}

// Packs codes[0..n) (only their low `bits` bits are kept) into out[0..packed_bytes(n, bits)).
void pack_codes(const uint8_t* codes, int64_t n, int bits, uint8_t* out);

// Unpacks n codes from packed[0..packed_bytes(n, bits)) into codes[0..n).
void unpack_codes(const uint8_t* packed, int64_t n, int bits, uint8_t* codes);

// Code j of a packed sequence of codes (reads only bytes inside packed_bytes(j + 1, bits)).
inline uint8_t packed_code(const uint8_t* packed, int64_t j, int bits) {
  const int64_t bit = j * bits;
  const int shift = static_cast<int>(bit & 7);
  unsigned v = packed[bit >> 3] >> shift;
  if (shift + bits > 8) v |= static_cast<unsigned>(packed[(bit >> 3) + 1]) << (8 - shift);
  return static_cast<uint8_t>(v & ((1u << bits) - 1u));
}

}  // namespace lowbit
