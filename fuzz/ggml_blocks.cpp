// Every ggml block type's decoder on arbitrary block bytes: byte 0 picks the type, the rest is
// whole blocks. Runs dequantize, the per-sub-block grids and code unpacking, and checks that
// the unpacked codes are in range and pack again.
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "io/ggml_quants.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  static const DType kTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K,
                                 DType::Q5_1, DType::Q3_K, DType::Q5_K, DType::IQ4_NL,
                                 DType::Q2_K, DType::IQ4_XS, DType::TQ1_0, DType::TQ2_0};
  if (size < 1) return 0;
  const DType t = kTypes[data[0] % std::size(kTypes)];
  if (!is_ggml_block_type(t)) __builtin_trap();
  const GgmlBlockLayout& l = ggml_block_layout(t);
  std::vector<float> y(static_cast<size_t>(l.elems));
  std::vector<uint8_t> codes(static_cast<size_t>(l.elems));
  std::vector<GgmlSubGrid> grids(static_cast<size_t>(l.elems / l.sub));
  const size_t n_blocks = std::min<size_t>((size - 1) / static_cast<size_t>(l.bytes), 16);
  for (size_t b = 0; b < n_blocks; ++b) {
    // A heap copy of exactly one block, so that a decoder reading past it is caught.
    std::vector<uint8_t> block(data + 1 + b * l.bytes, data + 1 + (b + 1) * l.bytes);
    ggml_dequantize_block(t, block.data(), y.data());
    ggml_block_grids(t, block.data(), grids.data());
    ggml_unpack_codes(t, block.data(), codes.data());
    for (uint8_t q : codes)
      if (q > l.qmax) __builtin_trap();
    std::vector<uint8_t> packed(block);
    ggml_pack_codes(t, packed.data(), codes.data());
    for (size_t i = 0; i < codes.size(); ++i)
      (void)ggml_code_value(l, grids[i / static_cast<size_t>(l.sub)], codes[i]);
  }
  return 0;
}
