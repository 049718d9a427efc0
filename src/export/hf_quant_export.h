// Quantized model -> Hugging Face checkpoint directory in GPTQ, AWQ or compressed-tensors
// (pack-quantized) layout, loadable by transformers / AutoGPTQ / GPTQModel / AutoAWQ / vLLM /
// llm-compressor, and by lowbit itself (io/hf_model.h reads it back). docs/FORMAT.md
// "Hugging Face quantized checkpoints".
//
// Output directory:
//   config.json         the model's HF config (architectures, sizes, rms_norm_eps, rope_theta,
//                       bos/eos, torch_dtype float16, tie_word_embeddings false) with the
//                       format's quantization_config block;
//   model.safetensors   packed Linears under "model.layers.N.{self_attn,mlp}.X_proj.<array>"
//                       (io/hf_quantized.h), everything else under its HF ".weight" name;
//   tokenizer files     copied from the directory the .lowbit was quantized from (metadata
//                       lowbit.source) when present there, else rebuilt from the tokenizer the
//                       .lowbit embeds (SentencePiece -> tokenizer.model, HF BPE ->
//                       tokenizer.json), else left out with a warning.
//
// What is packed: the seven Linears of every block, which must all be quantized in a grid the
// format holds exactly (hf_quant_unsupported_reason); GPTQ and AWQ also need one bit width and
// group size for all of them (their config has one). compressed-tensors writes one config group
// per distinct spec and lists float Linears under "ignore". Everything else (embeddings, norms,
// lm_head, biases) is written unpacked: float tensors in their stored dtype (F32/F16/BF16,
// bit-exact), quantized ones (e.g. lowbit's int8 lm_head) dequantized to F16.
//
// RoPE: HF checkpoints pair dimension i with i + head_dim/2 (rotate-half, lowbit's canonical
// layout). Interleaved sources (llama2.c, GGUF) get their q/k rows permuted back per head: HF row
// i <- row 2i, HF row i + head_dim/2 <- row 2i + 1 (the inverse of the GGUF export permutation);
// quantized rows move with their scales.
//
// All checks run before anything is written. The directory is built under a temporary name
// beside `out_dir` and renamed into place at the end; on any error nothing is left behind.
// `out_dir` must not exist or be an empty directory.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/hf_quantized.h"
#include "io/model_source.h"

namespace lowbit {

struct HfQuantExportOptions {
  HfQuantFormat format = HfQuantFormat::Gptq;
  // Receives each warning line (without "\n"); default: printed on stderr.
  std::function<void(const std::string&)> warn;
};

struct HfQuantExportReport {
  int64_t packed = 0;               // Linears written packed
  int64_t dequantized = 0;          // quantized non-Linear tensors written as F16 (lm_head, ...)
  int64_t flipped_groups = 0;       // groups rewritten to the same values (io/hf_quantized.h)
  std::vector<std::string> files;   // file names in the output directory
  std::string quantization_config;  // the JSON block written into config.json
};

// Writes `src` to `out_dir` (see above). Throws lowbit::Error("export", ...) naming the tensor
// and the reason for input the format cannot hold, before writing anything.
HfQuantExportReport export_hf_quant(const ModelSource& src, const HfQuantExportOptions& opt,
                                    const std::string& out_dir);

}  // namespace lowbit
