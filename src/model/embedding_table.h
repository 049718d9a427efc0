// The token embedding table as the forward reads it: one row per token id, decoded to fp32 on
// lookup. The table stays in its stored form — a .lowbit quantized matrix, or an f16/bf16/GGUF
// block tensor viewed in the mapped file — instead of being expanded to fp32 at load: it is the
// largest single table of a quantized model and each token reads one row of it (Llama-2-7B shape:
// 524 MB as fp32, 70 MB at int4). F32 tensors are viewed in place (or copied when unaligned), as
// matrix_from does. A row decodes to exactly the numbers the whole-table decoders give
// (dequantize_row, to_f32 of the same bytes).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "formats/quantized_matrix.h"
#include "io/tensor.h"
#include "model/matrix.h"

namespace lowbit {

class EmbeddingTable {
 public:
  EmbeddingTable() = default;
  // Keeps q (moved in).
  static EmbeddingTable quantized(QuantizedMatrix q);
  // A 2-D view [rows, cols] whose data outlives the table (a mapped file kept by the model's
  // owners). Block types whose rows are not whole blocks are decoded to fp32 once, here.
  // Throws lowbit::Error("model", ...) for a tensor that is not 2-D or whose size is wrong.
  static EmbeddingTable view(const TensorView& t);
  // fp32 numbers [rows, cols] owned elsewhere (a tied lm_head's matrix).
  static EmbeddingTable fp32(const float* data, int64_t rows, int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // out[cols] = row `id` (0 <= id < rows; the caller checks token ids).
  void row(int64_t id, float* out) const;
  // Bytes the table keeps in memory or reads from the mapping (its stored form).
  int64_t stored_bytes() const;

 private:
  enum class Kind : uint8_t { Fp32, Quantized, Blocks };
  Kind kind_ = Kind::Fp32;
  int64_t rows_ = 0, cols_ = 0;
  Matrix f32_;                     // Fp32: viewed or decoded once (matrix_from), or a tied head's
  std::shared_ptr<const QuantizedMatrix> q_;  // Quantized
  TensorView view_;                // Blocks: f16/bf16/GGUF types, decoded row by row
  size_t row_bytes_ = 0;           // Blocks
};

}  // namespace lowbit
