// LoftQ initialisation (Li et al., "LoftQ: LoRA-Fine-Tuning-Aware Quantization", 2023): quantize
// the base and initialise the LoRA adapter together so that Q + s·B·A ≈ W from the first step,
// instead of the plain QLoRA start (Q = quant(W), B = 0) that leaves the whole quantization error
// for fine-tuning to undo. For each targeted matrix W, `iters` alternations of
//     Q ← quant(W − s·B·A)          (round-to-nearest in the matrix's spec)
//     s·B·A ← best rank-r approximation of W − Q   (truncated SVD, algo/low_rank.h)
// starting from B·A = 0 (so iteration 1 is the plain quantization). ‖W − Q − s·B·A‖ never
// exceeds ‖W − Q₀ − SVD_r(W − Q₀)‖ of the first iteration, and is what the report shows.
// `lowbit quantize --loftq DIR` writes the base (.lowbit) and the adapter (PEFT, in DIR) that
// `lowbit finetune --init-adapter DIR` starts from.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "formats/quantized_matrix.h"
#include "io/model_source.h"
#include "train/lora.h"

namespace lowbit {

struct LoftqMatrix {
  QuantizedMatrix q;
  std::vector<float> a, b;  // [rank, cols], [rows, rank]: s·B·A approximates W − Q
  double rel_error_plain = 0;  // ‖W − quant(W)‖ / ‖W‖
  double rel_error = 0;        // ‖W − Q − s·B·A‖ / ‖W‖ after the alternation
};

// One matrix w [rows, cols] in `spec` (round-to-nearest, clip search when clip), LoRA scale s.
LoftqMatrix loftq_matrix(const float* w, int64_t rows, int64_t cols, const QuantSpec& spec, bool clip, int64_t rank,
                         float scale, int64_t iters);

struct LoftqReport {
  int64_t matrices = 0;
  double rel_error_plain = 0, rel_error = 0;  // means over the matrices
};

// LoftQ over every target of `lc` in a quantized model: `quantized` (canonical name -> matrix, as
// loaded from the .lowbit that `float_src` was quantized to with round-to-nearest recipes) is
// re-quantized in place, and the adapter returned. Throws lowbit::Error("loftq", ...) when a
// target is not quantized, was not quantized by rtn (`recipes`: canonical name -> recipe), or
// the model was rotated (its weights are not float_src's).
LoraAdapter loftq_model(const ModelSource& float_src, std::map<std::string, QuantizedMatrix>& quantized,
                        const std::map<std::string, std::string>& recipes, const std::string& rotation,
                        const LoraConfig& lc, int64_t iters, LoftqReport* report);

}  // namespace lowbit
