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

// Rebuilds a tokenizer from Tokenizer::to_blob()'s output (layouts: TokenizerBlob in
// tokenizer.h), reading no files: the result has the same kind, vocab_size, bos/eos, encode and
// token_bytes as the tokenizer the blob came from. origin names the container (e.g. the .lowbit
// path) in errors. An unknown kind or malformed bytes throw
// lowbit::Error("tokenizer", origin + ": ...").
std::unique_ptr<Tokenizer> tokenizer_from_blob(const TokenizerBlob& blob,
                                               const std::string& origin);

}  // namespace lowbit
