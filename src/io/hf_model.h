// Hugging Face model directory: config.json + model.safetensors (or sharded index).
// Architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (q/k/v biases).
// Integer-quantized checkpoints (config.json quantization_config: GPTQ, AWQ GEMM,
// compressed-tensors pack-quantized) load their packed Linears as QuantizedMatrix (or fp32 values
// when lowbit's grids cannot hold them): io/hf_quantized.h, docs/FORMAT.md.
#pragma once

#include <string>

#include "io/llama_config.h"
#include "io/model_source.h"

namespace lowbit {

// Parses config.json text; `where` names the file in error messages.
LlamaConfig parse_hf_config(const std::string& json_text, const std::string& where);

// Loads dir/config.json and the safetensors weights under canonical names (RopeStyle::RotateHalf).
ModelSource load_hf_model(const std::string& dir);

}  // namespace lowbit
