// E8P: a 2-bit-per-weight vector code book after QuIP# (Tseng et al. 2024, "QuIP#: Even Better
// LLM Quantization with Hadamard Incoherence and Lattice Codebooks", section 4.2). Eight
// consecutive weights of a row share one 16-bit code into 2^16 points of the E8 lattice shifted
// by 1/4; one scale per group.
//
// The code book. Let D̂8 = {x in (Z + 1/2)^8 : Σx even} (half of the E8 lattice). Since
// E8 + 1/4 = (D̂8 + 1/4) ∪ (D̂8 - 1/4), a point is  x = y + t  with y in D̂8 and t = ±1/4. y is
// stored as its absolute values |y| (one of 256 patterns) and its signs; because every |y_i| is
// odd/2, flipping one sign flips the parity of Σy, so only 7 signs are free and the eighth
// follows from "Σy even".
//   The 256 patterns a = 2|y| in {1, 3, 5}^8, in this order: the 227 with Σa² <= 40 (norm² of y
//   <= 10), then the first 29 of the 224 with Σa² == 48 (norm² 12); each set in lexicographic
//   order of (a_0, ..., a_7). (QuIP# also takes 227 + 29; which 29 of norm 12 is our choice.)
//
// Code (16 bits): bits 0..7 pattern p; bits 8..14 the signs of y_0..y_6 (1 = negative);
// bit 15 the shift (0: t = +1/4, 1: t = -1/4). The sign of y_7 is the one that makes the number
// of coordinates i with (y_i < 0) XOR (a_i ≡ 3 mod 4) even, which is Σy ≡ 0 (mod 2).
//   value_i = scale · (±a_i/2 + t);   4·value_i/scale = ±2a_i ± 1, an odd integer in [-11, 11].
// Every 16-bit word is a valid code.
//
// Layout: the code of weights [8k, 8k + 8) of a row is stored little-endian in bytes
// [2k, 2k + 2) of the row (QuantizedMatrix's "2 bits per weight" packing: the eight 2-bit pieces
// q_j = (code >> 2j) & 3 of the generic codec interface land exactly there). Rows and groups
// must be multiples of 8 weights. Scales [rows, groups] fp16/bf16.
// Bits per weight: 2 + 16/G.
//
// Fit: scale = c · rms(w) / kE8pSigma · r, with r the ratio of kE8pRatios whose codes give the
// smallest squared error (c = the caller's clip ratio). Encode: the nearest code-book point to
// w/scale in Euclidean distance (ties: lower pattern, then t = +1/4), found exactly by trying
// all 256 patterns for both shifts with the signs of (w/scale - t), fixing an odd parity by
// flipping the coordinate that costs least.
#pragma once

#include <array>
#include <cstdint>

#include "formats/codec.h"

namespace lowbit {

inline constexpr int kE8pDim = 8;          // weights per code
inline constexpr int kE8pPatterns = 256;   // absolute-value patterns
// The per-coordinate RMS of unit-scale inputs that the fit starts from (near the code book's
// optimum for Gaussian inputs), and the ratios it tries around it.
inline constexpr float kE8pSigma = 1.04f;  // measured optimum for N(0, 1): MSE 0.0915
inline constexpr std::array<float, 9> kE8pRatios = {0.8f, 0.85f, 0.9f, 0.95f, 1.0f,
                                                    1.05f, 1.1f, 1.15f, 1.2f};

struct E8pBook {
  std::array<std::array<uint8_t, kE8pDim>, kE8pPatterns> a{};  // 2|y_i| in {1, 3, 5}
  std::array<uint8_t, kE8pPatterns> odd3{};  // bit i set when a_i ≡ 3 (mod 4)
  // The same patterns by coordinate, for the encoder's search over all 256 at once:
  // half[i][p] = a_i/2 of pattern p, odd3_parity[p] = parity of odd3[p].
  alignas(32) float half[kE8pDim][kE8pPatterns]{};
  std::array<uint8_t, kE8pPatterns> odd3_parity{};
};
// The code book (built once).
const E8pBook& e8p_book();

// 4·value/scale of the eight weights of `code`: odd integers in [-11, 11].
void e8p_decode_x4(uint16_t code, int8_t out[kE8pDim]);
// value/scale of the eight weights of `code`.
void e8p_decode(uint16_t code, float out[kE8pDim]);
// The code of the nearest code-book point to x[0..8) (unit scale; see Encode above).
uint16_t e8p_nearest(const float x[kE8pDim]);

GroupParams e8p_fit(const QuantSpec& s, const float* w, int64_t n, float clip);

extern const GroupCodec kE8pCodec;

}  // namespace lowbit
