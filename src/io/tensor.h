// A view of one stored tensor inside a mapped model file (no ownership, no copies).
// shape is row-major, outermost dimension first, as PyTorch prints it: a Linear weight is
// [n_out, n_in]. (GGUF lists dimensions innermost first; its reader reverses them.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  Q8_0,  // GGUF block of 32: fp16 scale d, 32 x int8 q; x = d * q            (34 bytes)
  Q4_0,  // GGUF block of 32: fp16 scale d, 16 bytes of nibbles; x = d * (q - 8) (18 bytes)
  Q5_0,  // GGUF block of 32: fp16 d, u32 qh (5th bits), 16 bytes of nibbles; d * (q - 16) (22)
  Q4_K,  // GGUF super-block of 256: fp16 d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of
         // nibbles; x = d * sc * q - dmin * m per sub-block of 32 (144 bytes)
  Q6_K,  // GGUF super-block of 256: ql[128], qh[64], int8 scales[16], fp16 d;
         // x = d * scale * (q - 32) per sub-block of 16 (210 bytes)
  Q5_1,    // GGUF block of 32: fp16 d, fp16 m, u32 qh, 16 bytes of nibbles; d * q + m (24)
  Q3_K,    // GGUF super-block of 256: 3-bit codes, 16 six-bit scales, fp16 d (110 bytes)
  Q5_K,    // GGUF super-block of 256: as Q4_K with a 5th code bit in qh[32] (176 bytes)
  IQ4_NL,  // GGUF block of 32: fp16 d, 16 bytes of nibbles indexing a code book (18 bytes)
  Q2_K,    // GGUF super-block of 256: 2-bit codes, 16 4-bit scale/min pairs, fp16 d, dmin (84)
  IQ4_XS,  // GGUF super-block of 256: IQ4_NL's code book, 8 six-bit scales, fp16 d (136 bytes)
  TQ1_0,   // GGUF super-block of 256: ternary codes, 5 (or 4) base-3 digits a byte, fp16 d (54)
  TQ2_0,   // GGUF super-block of 256: ternary codes in 2 bits each, fp16 d (66 bytes)
  // Exact bit layouts of every block type: io/ggml_quants.h and docs/FORMAT.md.
};

const char* dtype_name(DType t);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

// Elements per block of `t` (1, 32 or 256).
int64_t dtype_block_elems(DType t);

// Bytes needed to store `numel` elements of `t` (block types need numel % block == 0; the
// caller checks that first). Returns 0 if numel is not a whole number of blocks.
size_t dtype_storage_bytes(DType t, int64_t numel);

// Element count of a shape, throwing lowbit::Error(component, ...) if a dimension is
// negative or the product overflows (absurd dimensions in a malformed file).
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& component,
                      const std::string& what);

// Decodes any supported dtype to fp32. Throws lowbit::Error if the view's byte size does not
// match its shape and dtype.
std::vector<float> to_f32(const TensorView& t);

}  // namespace lowbit
