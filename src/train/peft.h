// LoRA adapters in Hugging Face PEFT's on-disk layout, so that adapters trained here load in
// PEFT / transformers / vLLM (and converters such as llama.cpp's convert_lora_to_gguf.py) and
// PEFT adapters load here.
//
// A directory with
//  * adapter_config.json: {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r", "lora_alpha",
//    "lora_dropout", "use_rslora", "target_modules": [...], "bias": "none",
//    "fan_in_fan_out": false, "base_model_name_or_path", ...}
//  * adapter_model.safetensors: per adapted projection two F32 tensors
//      base_model.model.model.layers.{L}.self_attn.{q,k,v,o}_proj.lora_A.weight   [r, in]
//      base_model.model.model.layers.{L}.mlp.{gate,up,down}_proj.lora_A.weight      [r, in]
//    and the matching .lora_B.weight [out, r]; the layer computes
//    y = x·Wᵀ + (lora_alpha / r) · x·Aᵀ·Bᵀ   (alpha / √r with use_rslora).
// The files are always in HF's layout: for a base whose RoPE pairs are interleaved (GGUF, llama2.c
// checkpoints store q/k rows permuted per head), B's rows of q_proj and k_proj are permuted to
// HF's rotate-half order on save and back on load, so one adapter serves the HF model and its
// GGUF conversion alike.
// Loading accepts F32/F16/BF16 tensors and any subset of layers/projections; it refuses what
// lowbit cannot apply exactly (DoRA, biases, fan_in_fan_out, per-module rank/alpha patterns,
// modules_to_save, other PEFT types) with a one-line lowbit::Error("lora", ...).
#pragma once

#include <string>

#include "io/llama_config.h"
#include "train/lora.h"

namespace lowbit {

// The PEFT tensor name of an adapter matrix ("A" or "B") of module "layers.L.proj".
std::string peft_tensor_name(const LoraParam& p, char which);

// Writes both files into `dir` (created if missing), each atomically; `mc` is the base's config.
void save_peft_adapter(const LoraAdapter& a, const LlamaConfig& mc, const std::string& dir, const std::string& base_model);

// Reads an adapter directory for a model with config `mc`; every tensor's shape is checked
// against the model's layer.
LoraAdapter load_peft_adapter(const std::string& dir, const LlamaConfig& mc);

}  // namespace lowbit
