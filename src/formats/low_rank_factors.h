// A rank-r matrix kept as two factors the way LoRA/PEFT stores an update: M = B·A with
// B [rows, rank] and A [rank, cols], row-major fp32. Produced by algo/low_rank.h (truncated SVDs)
// and algo/error_compensation.h (corrections of a quantization error, stored in .lowbit files
// beside their matrix as fp16: docs/FORMAT.md).
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

struct LowRankFactors {
  int64_t rank = 0, rows = 0, cols = 0;
  std::vector<float> b;  // [rows, rank]
  std::vector<float> a;  // [rank, cols]
  std::vector<double> singular_values;  // when computed: descending (truncated_svd: all
                                        // min(rows, cols); error corrections: the leading rank)
};

// Bytes the factors take stored in fp16 (a .lowbit correction's NAME.lr_b and NAME.lr_a).
inline int64_t fp16_bytes(const LowRankFactors& f) { return 2 * f.rank * (f.rows + f.cols); }

}  // namespace lowbit
