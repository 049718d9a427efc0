// Merging LoRA adapters into a float model's weights: W ← W + s·B·A for every adapted
// projection, so that the result quantizes with any recipe (GPTQ/AWQ calibrate on the merged
// model) or serves with no adapter overhead.
#pragma once

#include <vector>

#include "io/model_source.h"
#include "train/lora.h"

namespace lowbit {

// A source whose adapted projections are fp32 copies of the originals plus extra_scale ·
// adapter.scale() · B·A (an fp32 GEMM accumulating into the copy); every other tensor is
// the original view. The copies are owned by the returned source (src.owners is shared).
// Throws lowbit::Error("merge", ...) when an adapted projection is stored quantized (a .lowbit
// or a GPTQ/AWQ checkpoint: merge into the float model it came from) or has a bias-free shape
// mismatch.
ModelSource merge_lora(const ModelSource& src, const std::vector<LoraAdapter>& adapters, double extra_scale);

}  // namespace lowbit
