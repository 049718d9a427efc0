// Recipes: how one tensor (or a whole model) is quantized, spelled "<algorithm>:<format>[:opts]"
// (ARCHITECTURE.md convention 9), e.g.
//   rtn:int4:g128          round-to-nearest, int4 groups of 128, fp16 scales
//   rtn:int4:g128:clip     ... with the per-group clipping search (minimises squared error,
//                          weighted by mean x² per input channel when calibration data exists)
//   rtn:nf4:g64:dq         NF4 with double-quantized scales
//   imatrix:int4:g128      activation-weighted RTN: the clip search weighted by the calibration
//                          inputs' mean x² per channel (llama.cpp's imatrix idea)
//   gptq:int3:g128         GPTQ with act-order and static groups; ":noact" for natural column
//                          order, ":clip" to fit group scales with the weighted clip search
//   awq:int4:g128          AWQ: activation-aware scales folded into the preceding norm/linear,
//                          then the weighted clip search
//   f16 | bf16 | f32       keep unquantized, stored in that float type
// The whole-model recipe may end in ":rot" (e.g. gptq:int2:g64:asym:rot, f32:rot): the model is
// rotated before quantization (pipeline/model_rotation.h: residual-stream and per-head
// Hadamard rotations folded into the weights, exact in fp32, no runtime cost).
// imatrix, gptq and awq need calibration data (pipeline/calibration.h).
// The format part is any QuantSpec spelling (formats/quant_spec.h).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats/quant_spec.h"

namespace lowbit {

struct Recipe {
  std::string algorithm;  // "rtn", "imatrix", "gptq", "awq", or "none" for plain float storage
  QuantSpec spec;
  bool clip = false;      // rtn, gptq: clipping search
  bool act_order = true;  // gptq: act-order (static groups)
  bool calibrated() const { return algorithm == "gptq" || algorithm == "awq" || algorithm == "imatrix"; }
  std::string to_string() const;
};

// Throws lowbit::Error("recipe", ...) naming the bad part.
Recipe parse_recipe(std::string_view s);

// Which recipe each tensor of a model gets: the model recipe for the linear layers of the
// blocks; lm_head at least int8 (kept at the model recipe if that has >= 8 bits or is float),
// because the output projection is the most sensitive matrix; embed_tokens in f16 (a lookup
// table: its size does not affect decode speed); norms and biases in f32. Overrides
// "REGEX=RECIPE" (ECMAScript regex matching the whole canonical name) apply in order, the last
// match winning.
class RecipePlan {
 public:
  // Throws lowbit::Error("recipe", ...) for a bad recipe, override or a ":rot" in an override.
  RecipePlan(const std::string& model_recipe, const std::vector<std::string>& overrides);
  Recipe for_tensor(const std::string& canonical_name, bool is_matrix) const;
  const Recipe& model_recipe() const { return model_; }
  bool rotate() const { return rotate_; }  // the model recipe ended in ":rot"
  // The model recipe as written into files and reports (":rot" included).
  std::string to_string() const { return model_.to_string() + (rotate_ ? ":rot" : ""); }
  // Gives tensor `canonical_name` exactly `r`, above every default and override (the bit
  // allocation's choices, pipeline/bit_allocation.h).
  void assign(const std::string& canonical_name, const Recipe& r) { assigned_[canonical_name] = r; }
  // True if any tensor of these names gets a calibrated recipe.
  bool needs_calibration(const std::vector<std::string>& names) const;

 private:
  Recipe model_;
  bool rotate_ = false;
  std::map<std::string, Recipe> assigned_;
  std::vector<std::pair<std::string, Recipe>> overrides_;  // regex source, recipe
};

}  // namespace lowbit
