// Double quantization of group scales (QLoRA, Dettmers et al. 2023, section 3): the fp32 scales
// of a matrix, in row-major [rows, groups] order, are cut into blocks of kDqBlock = 256
// (the last block may be shorter). Block b keeps an fp32 offset and step and one 8-bit code per
// scale (min-max affine quantization):
//   dq_offset[b] = min(block),  dq_scale[b] = (max(block) - min(block)) / 255
//   code_i = clamp(round_half_even((s_i - dq_offset[b]) / dq_scale[b]), 0, 255)   (0 if step 0)
//   s_i    = fmaf(dq_scale[b], code_i, dq_offset[b])   (one fused multiply-add, so every reader
//                                                     gets the same bits; use dq_decode_scale)
// Cost: 8 bits per group + 64 bits per 256 groups, i.e. 8/G + 64/(256 G) bits per weight.
// (QLoRA stores its second-level codes as FP8 with a per-block absmax and subtracts the mean;
// the affine 8-bit form here has the same size and handles signed Int scales as well.)
#pragma once

#include <cmath>
#include <cstdint>

namespace lowbit {

inline constexpr int64_t kDqBlock = 256;

inline int64_t dq_blocks(int64_t n_scales) {
  return (n_scales + kDqBlock - 1) / kDqBlock;
}

inline float dq_decode_scale(uint8_t code, float dq_scale, float dq_offset) {
  return std::fma(dq_scale, static_cast<float>(code), dq_offset);
}

// Quantizes scales[0..n): codes[0..n), dq_scale / dq_offset [dq_blocks(n)].
void double_quantize(const float* scales, int64_t n, uint8_t* codes, float* dq_scale,
                     float* dq_offset);

}  // namespace lowbit
