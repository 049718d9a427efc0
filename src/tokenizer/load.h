// Opens any tokenizer file lowbit understands, picking the kind from the file:
//  - "*.json"  -> HF tokenizer.json (load_hf_tokenizer);
//  - "*.bin"   -> llama2.c tokenizer.bin (load_llama2c_tokenizer); needs vocab_size_hint > 0
//                 (the model's vocab size: the file does not store it);
//  - otherwise sniffed from the content: a SentencePiece ModelProto -> libsentencepiece
//    (load_sentencepiece_tokenizer); "base64 rank" text lines -> tiktoken
//    (load_tiktoken_tokenizer); a JSON object -> HF tokenizer.json.
// Unknown content throws lowbit::Error("tokenizer", path + ": unrecognised tokenizer file").
// This header also brings in every per-kind loader and make_spm_bpe_tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/spm_bpe_tokenizer.h"
#include "tokenizer/spm_vocab.h"
#include "tokenizer/tiktoken_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

std::unique_ptr<Tokenizer> load_tokenizer_file(const std::string& path,
                                               int32_t vocab_size_hint = -1);

}  // namespace lowbit
