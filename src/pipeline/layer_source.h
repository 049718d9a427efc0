// Reading a source model layer by layer for the calibrated passes (pipeline/quantize.h and the
// calibrated GGUF export, export/gguf_calibrated.h): fp32 copies of one layer's tensors, the
// calibration windows' embeddings, and the statistics of the final norm's output (lm_head's
// input).
#pragma once

#include <string>
#include <vector>

#include "algo/input_stats.h"
#include "io/model_source.h"
#include "pipeline/calibrated_layer.h"
#include "pipeline/calibration.h"

namespace lowbit {

// The seven linear layers of a block, in the order the passes quantize them.
inline constexpr const char* kLayerLinearNames[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};

struct ModelRotation;

// A canonical tensor in fp32 ("lm_head" of a model with tied embeddings reads embed_tokens);
// with `rot`, as it is in the rotated model (pipeline/model_rotation.h).
std::vector<float> source_f32(const ModelSource& src, const std::string& canonical,
                              const ModelRotation* rot = nullptr);

// fp32 copies of layer `prefix` ("layers.N.") of src (rotated when `rot` is given).
FloatLayer load_float_layer(const ModelSource& src, const LlamaConfig& c, const std::string& prefix,
                            const ModelRotation* rot = nullptr);

// The embeddings (embed [vocab, dim] fp32) of every calibration token: layer 0's input.
Activations embed_windows(const std::vector<float>& embed, const LlamaConfig& c, const CalibrationSet& cs);

// Statistics of rms(x)·norm over all calibration positions (the input of lm_head).
InputStats final_norm_stats(const LlamaConfig& c, const std::vector<float>& norm, const Activations& act);

}  // namespace lowbit
