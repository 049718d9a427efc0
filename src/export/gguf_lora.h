// LoRA adapters as a GGUF adapter file that llama.cpp applies with `--lora FILE`
// (`--lora-scaled FILE S`) on top of the GGUF base model.
//
// Layout: GGUF v3 with general.architecture "llama", general.type "adapter", adapter.type "lora",
// adapter.lora.alpha (f32), general.name; per adapted projection two F32 tensors named after the
// base tensor, "<base>.lora_a" with shape [r, in] and "<base>.lora_b" with shape [out, r]
// (outermost first; ggml ne = {in, r} and {r, out}), e.g. "blk.3.attn_q.weight.lora_a". llama.cpp
// scales the update by alpha / r, so an rsLoRA adapter is written with alpha·√r. B's rows of
// q_proj and k_proj are in the GGUF base's interleaved-RoPE order (permuted from HF order when
// the adapter was trained on an HF-layout base).
#pragma once

#include <string>

#include "io/llama_config.h"
#include "train/lora.h"

namespace lowbit {

// `mc` is the config of the model the adapter was loaded for (its rope_style says the adapter's
// row order). Writes atomically; throws lowbit::Error on I/O failure.
void export_gguf_lora(const LoraAdapter& a, const LlamaConfig& mc, const std::string& name, const std::string& path);

}  // namespace lowbit
