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
//   gptq:int2:g64:lr16     ... plus a rank-16 correction of the quantization error, W ≈ Ŵ + B·A,
//                          fitted to the calibration inputs (algo/error_compensation.h) and
//                          stored in fp16 beside the codes; ":lr<r>" goes last, after ":clip"
//                          and ":noact", and applies to linear layers only
//   f16 | bf16 | f32       keep unquantized, stored in that float type
// The whole-model recipe may end in ":rot" (e.g. gptq:int2:g64:asym:rot, f32:rot): the model is
// rotated before quantization (pipeline/model_rotation.h: residual-stream and per-head
// Hadamard rotations folded into the weights, exact in fp32, no runtime cost). ":had" (either
// order with ":rot") also rotates the input of every down_proj at run time (x·H before the
// matmul, the weight stored as W·H, kernels/rotation.h): the SwiGLU output, where real LLMs
// have their outlier channels, cannot be rotated offline. ":smooth" (or ":smooth<alpha>", alpha
// in (0, 1], default 0.5; with ":rot"/":had" in any order) applies SmoothQuant's migration
// before quantizing each layer: per-channel scales from the calibration inputs' max |x| moved
// from every linear's input into its weights and folded into the norms, up_proj and v_proj
// (algo/smooth_quant.h; exact in fp32, no runtime cost). It makes per-token int8 activations
// lose less (W8A8, `eval --act int8`) and needs calibration data even with rtn or a float format.
// imatrix, gptq and awq need calibration data (pipeline/calibration.h).
// The format part is any QuantSpec spelling (formats/quant_spec.h).
#pragma once

#include <map>
#include <regex>
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
  int64_t low_rank = 0;   // ":lr<r>": rank of the error correction (0: none)
  bool calibrated() const { return algorithm == "gptq" || algorithm == "awq" || algorithm == "imatrix"; }
  std::string to_string() const;
};

// Throws lowbit::Error("recipe", ...) naming the bad part.
Recipe parse_recipe(std::string_view s);

// `r` when its format stores rows of `cols` weights; for a vector code book (e8p) on a row that
// is not a multiple of its dimension, the same algorithm with int3 at the same group size (as
// llama.cpp falls back to another type for rows its i-quants cannot hold).
Recipe shape_fallback(const Recipe& r, int64_t cols);

// Which recipe each tensor of a model gets: the model recipe for the linear layers of the
// blocks; norms and biases in f32; embed_tokens and lm_head two bits above the blocks, at least
// 4 and at most 8 (b = clamp(bits + 2, 4, 8)): embed_tokens rtn:int<b>:g64:clip (g128 at 8
// bits), lm_head <algorithm>:int<b>:g128 (rtn with :clip; an 8-bit model recipe as it is).
// Float model recipes keep embed_tokens in f16 (f32 for f32) and lm_head as the recipe.
// Why: in small models these two tables hold a third of the weights, and a low-bit model whose
// edges stay in f16/int8 is larger and worse than one with lower-bit blocks and edges (measured
// on ref-m: gptq:int3:g128 with f16/int8 edges 4.98 MB KLD 0.0101, with int5 edges 3.18 MB
// KLD 0.0109; gptq:int4:g128 5.53 MB 0.00235 vs 3.99 MB 0.00252). The edges are the most
// sensitive tensors per bit, hence two bits more; `--target-bpw` allocates them like any other.
// Overrides "REGEX=RECIPE" (ECMAScript regex matching the whole canonical name) apply in order,
// the last match winning.
class RecipePlan {
 public:
  // Throws lowbit::Error("recipe", ...) for a bad recipe, override or a ":rot" in an override.
  RecipePlan(const std::string& model_recipe, const std::vector<std::string>& overrides);
  Recipe for_tensor(const std::string& canonical_name, bool is_matrix) const;
  const Recipe& model_recipe() const { return model_; }
  bool rotate() const { return rotate_; }  // the model recipe ended in ":rot"
  bool hadamard_down() const { return hadamard_down_; }  // ... in ":had"
  double smooth_alpha() const { return smooth_alpha_; }  // ":smooth[<alpha>]" (0: none)
  // The model recipe as written into files and reports (":rot", ":had", ":smooth..." included).
  std::string to_string() const;
  // The columns of each matrix (canonical name -> cols), so that for_tensor can replace a
  // vector code book that does not fit a row (e8p needs cols % 8 == 0) by shape_fallback().
  void set_matrix_cols(std::map<std::string, int64_t> cols) { cols_ = std::move(cols); }
  // Gives tensor `canonical_name` exactly `r`, above every default and override (the bit
  // allocation's choices, pipeline/bit_allocation.h).
  void assign(const std::string& canonical_name, const Recipe& r) { assigned_[canonical_name] = r; }
  // True if any tensor of these names gets a calibrated recipe, or the model options need the
  // calibration inputs (":smooth" measures their per-channel maxima).
  bool needs_calibration(const std::vector<std::string>& names) const;

 private:
  Recipe edge_recipe(bool embedding) const;  // embed_tokens / lm_head default

  Recipe model_;
  std::map<std::string, int64_t> cols_;
  bool rotate_ = false, hadamard_down_ = false;
  double smooth_alpha_ = 0;
  std::map<std::string, Recipe> assigned_;
  std::vector<std::pair<std::regex, Recipe>> overrides_;  // compiled once (bounded_regex)
};

}  // namespace lowbit
