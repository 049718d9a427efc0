// Hugging Face model directory: config.json + model.safetensors (or sharded index).
// Architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (q/k/v biases).
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
