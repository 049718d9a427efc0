// HF tokenizers' tokenizer.json with a byte-level BPE model (GPT-2, SmolLM2, Llama-3, Qwen...).
//
// Supported: model.type "BPE" with vocab + merges (merges as "a b" strings or [a, b] pairs),
// unk_token, byte_fallback, fuse_unk, ignore_merges; normalizer null; pre_tokenizer as in
// pre_tokenizer.h; added_tokens. Unsupported features (another model type, a normalizer,
// continuing_subword_prefix, end_of_word_suffix, no ByteLevel pre-tokenizer) throw lowbit::Error
// rather than tokenizing differently from HF.
//
// Behaviour (matching @huggingface/tokenizers with add_special_tokens=false, i.e. the goldens):
//  - added tokens, special ones included, ARE matched in the input text (see added_tokens.h);
//    encode("<|im_start|>user") starts with the <|im_start|> id. This is the one tokenizer kind
//    that does not treat specials as plain text (tokenizer.h documents the exception).
//  - token_bytes(added token) is its content, so decode() reproduces such text (HF's decode
//    with skip_special_tokens=false); other tokens are mapped back through the byte-level
//    alphabet. Ids with no token (holes) and out-of-range ids give "".
//  - bos/eos: bos_token_id/eos_token_id of a config.json beside the file if present (eos may be a
//    list: the first is used); else the bos_token/eos_token strings of tokenizer_config.json;
//    else the added tokens "<|begin_of_text|>"/"<s>" (bos) and "<|end_of_text|>"/"</s>"/
//    "<|endoftext|>" (eos); else -1. encode(add_bos) just prepends bos_id() when >= 0.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"

namespace lowbit {

std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);

// The same from a tokenizer.json's text with bos/eos given (-1: none) instead of looked up
// beside a file; throws lowbit::Error("tokenizer", origin + ": ...") like load_hf_tokenizer, and
// if bos_id/eos_id are neither -1 nor ids of the vocabulary. to_blob() of either gives kind
// "hf-bpe": the resolved bos/eos, then the tokenizer.json text (see TokenizerBlob).
std::unique_ptr<Tokenizer> hf_tokenizer_from_bytes(std::string json_text, int32_t bos_id,
                                                   int32_t eos_id, std::string_view origin);

}  // namespace lowbit
