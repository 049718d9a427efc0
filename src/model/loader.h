// Opens any model lowbit reads, with its tokenizer:
//  - a directory with config.json (HF layout; tokenizer.model preferred, else tokenizer.json),
//    or a path to a .safetensors file inside such a directory;
//  - a .gguf file (tokenizer from its embedded vocabulary: "llama" as kind gguf-llama, "gpt2"
//    as kind hf-bpe, tokenizer/gguf_bpe.h);
//  - a llama2.c .bin checkpoint (tokenizer.bin or tok<vocab>.bin beside it);
//  - a .lowbit file (quantized; carries its config and tokenizer).
// `tokenizer_path`, if non-empty, overrides the tokenizer. Errors name the path.
#pragma once

#include <memory>
#include <string>

#include "io/model_source.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

struct LoadedModel {
  ModelSource source;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<LlamaModel> model;
};

// Reads the source (tensor views) without building the fp32 model; for `lowbit info`.
ModelSource open_model_source(const std::string& path);

// The tokenizer for a source: `tokenizer_path` if non-empty, else the one found with the model.
std::unique_ptr<Tokenizer> load_tokenizer_for(const ModelSource& src, const std::string& tokenizer_path);

LoadedModel load_model(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace lowbit
