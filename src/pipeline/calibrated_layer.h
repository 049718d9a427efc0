// One decoder layer of the layer-streaming calibrated pipeline (pipeline/quantize.h drives it).
//
// The layer's weights are fp32 and editable: AWQ folds its scales into them, and every linear is
// replaced by its dequantized value as soon as it is quantized, so later passes see the partly
// quantized layer ("true sequential", as GPTQ does). The calibration activations x [N·L, D]
// enter as the outputs of the already-quantized earlier layers and leave as this layer's
// outputs, computed with all of its linears quantized.
//
// Passes over the N windows (each window is one causal sequence of L tokens from position 0):
//   (":smooth" only) float pass: SmoothQuant's scales from the inputs' max |x|, folded;
//   (AWQ layers only) float pass: input statistics of all four linear inputs; scales searched
//       and folded (o/v only when n_heads == n_kv_heads, as AutoAWQ; down/up always);
//   1. stats of rms(x)·attn_norm           -> quantize q, k, v
//   2. attention with the quantized q/k/v  -> stats of its output -> quantize o
//   3. x += o(att); stats of rms(x)·ffn_norm -> quantize gate, up
//   4. stats of silu(gate)·up               -> quantize down
//   5. x += down(silu(gate)·up)
// Peak memory: the fp32 layer, x and one attention-output buffer of the same size (N·L·D floats
// each), and one H = Σ x xᵀ at a time (D² or hidden² floats).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "algo/low_rank.h"
#include "formats/quantized_matrix.h"
#include "io/llama_config.h"
#include "kernels/rotation.h"
#include "pipeline/recipe.h"

namespace lowbit {

struct DenseWeight {
  int64_t rows = 0, cols = 0;
  std::vector<float> w;  // [rows, cols]
};

// The editable fp32 weights of one layer. Bias vectors are empty unless attention_bias.
struct FloatLayer {
  std::vector<float> attn_norm, ffn_norm, q_bias, k_bias, v_bias;
  std::map<std::string, DenseWeight> linears;  // "q_proj" ... "down_proj"
};

// The calibration activations entering / leaving a layer.
struct Activations {
  int64_t windows = 0, len = 0, dim = 0;
  std::vector<float> x;  // [windows * len, dim]
  float* window(int64_t w) { return x.data() + w * len * dim; }
};

// What became of one linear.
struct LinearResult {
  QuantizedMatrix matrix;           // when the recipe quantizes
  std::optional<LowRankFactors> correction;  // ":lr<r>": the weight is matrix + B·A
  bool quantized = false;
  double rel_rmse = 0;              // ‖W − Ŵ‖ / ‖W‖ in the (possibly AWQ-scaled) basis
  double rel_output_error = -1;     // tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) on the calibration inputs
  double seconds = 0;               // the quantization algorithm alone (not the error measurements)
};

// What a reader's weight is: the dequantized matrix plus the correction, if any [rows, cols].
std::vector<float> decoded_weight(const LinearResult& r);


using StageFn = std::function<void(const std::string& stage)>;

// Quantizes one linear of the layer, named by its short name ("q_proj" ...), given h = Σ x xᵀ
// [cols, cols] of its calibration inputs, and leaves the values the rest of the pass must see
// (the dequantized weight) in w.w. The default one (recipes) is quantize_linear.
using LinearQuantizer =
    std::function<LinearResult(const std::string& name, DenseWeight& w, const float* h)>;

// What the recipe-driven pass does to the layer besides quantizing it.
struct LayerTransforms {
  // ":had": down_proj is quantized as W·H against Hᵀ·Σxxᵀ·H (its inputs rotated by H) and its
  // result is W·H too; the pass continues with (Ŵ·H)·Hᵀ.
  const Rotation* down_input = nullptr;
  // ":smooth<alpha>" (> 0): SmoothQuant's scales (algo/smooth_quant.h) from a float pass, folded
  // into the layer (the same four places as AWQ's) before AWQ and before anything is quantized.
  double smooth_alpha = 0;
};

// Quantizes the linears of `layer` (per their recipes, keyed by short name "q_proj" ...) and
// advances `act` through it. Returns the results by short name; `layer` ends up folded (AWQ,
// SmoothQuant) and holding the dequantized weights. `stage` (optional) is called at each step
// for progress.
std::map<std::string, LinearResult> quantize_layer_calibrated(
    const LlamaConfig& config, FloatLayer& layer, const std::map<std::string, Recipe>& recipes,
    Activations& act, const StageFn& stage = nullptr, const LayerTransforms& transforms = {});

// The same passes (without AWQ's folding) with every linear quantized by `quantize`.
std::map<std::string, LinearResult> quantize_layer_calibrated(const LlamaConfig& config,
                                                              FloatLayer& layer,
                                                              const LinearQuantizer& quantize,
                                                              Activations& act,
                                                              const StageFn& stage = nullptr);

// quantize_linear of W·H with the statistics of inputs rotated by H (Hᵀ h H); the result's
// matrix is W·H quantized, and w is left holding its value in the unrotated basis, (Ŵ·H)·Hᵀ.
LinearResult quantize_rotated_input(DenseWeight& w, const Recipe& r, const float* h, const Rotation& rot);

// ‖W − Ŵ‖ / ‖W‖ and tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) (h may be null: then -1) into r.
void measure_linear_error(const DenseWeight& w, const float* back, const float* h, LinearResult& r);

// Quantizes one weight per its recipe: rtn (h unused), imatrix (clip search weighted by diag h),
// awq (the weight is already scaled and h is its input's: AWQ's output-error clip search,
// algo/awq.h), gptq (h as its Hessian);
// "none" recipes are rounded to their float type but not quantized. A recipe with ":lr<r>" then
// fits a rank-r correction of W − Ŵ (algo/error_compensation.h) through h when given (else by
// plain SVD); the error measurements include it. `h` = Σ x xᵀ [cols, cols]
// of the calibration inputs; it may be null only for rtn/none. Sets rel_output_error when h is
// given. Throws lowbit::Error("quantize", ...) for a calibrated recipe without h.
// measure = false skips the error measurements (rel_rmse 0, rel_output_error -1), for callers
// that measure against statistics of their own.
LinearResult quantize_linear(const DenseWeight& w, const Recipe& r, const float* h, bool measure = true);

// tr(W H Wᵀ) = Σ_t ‖W x_t‖² for h = Σ_t x_t x_tᵀ [cols, cols]: the output energy that
// rel_output_error divides by.
double output_energy(const DenseWeight& w, const float* h);

}  // namespace lowbit
