// Byte-level BPE vocabularies as GGUF stores them (tokenizer.ggml.model "gpt2"), the
// llama.cpp pre-tokenizer names lowbit can match exactly, and a Tokenizer built back from such a
// vocabulary. The writer side is export/gguf_vocab.h.
//
// Known pre-tokenizers (tokenizer.ggml.pre), each with the HF tokenizer.json pre_tokenizer that
// splits text exactly as llama.cpp's regexes for that name do (llama.cpp src/llama-vocab.cpp):
//   "gpt-2"     ByteLevel {add_prefix_space false, use_regex true}       (the GPT-2 regex)
//   "smollm"    Sequence [Digits {individual_digits true},
//                         ByteLevel {add_prefix_space false, use_regex true}]  (SmolLM/SmolLM2)
//   "llama-bpe" Sequence [Split {Regex kLlama3Pattern, Isolated, invert false},
//                         ByteLevel {add_prefix_space false, use_regex false}] (Llama 3, tiktoken)
// llama.cpp also sets ignore_merges for "llama-bpe" (a word that is itself a token is emitted
// whole, as tiktoken does) and for no other of these, so a match needs that flag to agree too.
// Only the fields that change the split are compared (ByteLevel's trim_offsets is not), with
// HF's defaults for absent ones; nested or one-step Sequences are flattened.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lowbit {

struct BpeVocab {
  // [n] tokenizer.ggml.tokens: BPE tokens in the byte-level alphabet (byte_level.h, ' ' is "Ġ"),
  // control and user-defined tokens as their plain content, unused ids "[PAD<id>]".
  std::vector<std::string> tokens;
  // [n] kToken* (spm_vocab.h): 1 normal, 3 control, 4 user-defined, 5 unused.
  std::vector<int32_t> types;
  std::vector<std::string> merges;  // "left right" (byte-level text), highest priority first
  std::string pre;                  // tokenizer.ggml.pre, one of the known names above
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  // -1: none
  bool add_bos = false, add_eos = false;
};

// The known name whose pre_tokenizer equals `pre_tokenizer` (an HF tokenizer.json
// "pre_tokenizer" value, null allowed) and whose ignore_merges is `ignore_merges`; "" if none.
std::string gguf_bpe_pre_name(const nlohmann::json& pre_tokenizer, bool ignore_merges);

// The names above, for messages.
std::string gguf_bpe_pre_names();

// A tokenizer of kind "hf-bpe" for a GGUF "gpt2" vocabulary: an HF tokenizer.json is made from
// v (vocab = the tokens that are not control, user-defined or unused; merges; added_tokens =
// control tokens (special) and user-defined ones; the pre-tokenizer and ignore_merges of v.pre)
// and loaded with hf_tokenizer_from_bytes, so it behaves as that kind does (control and
// user-defined token texts are matched in the input, as llama-tokenize does by default), and
// its to_blob() is that tokenizer.json. Unused ids are holes (token_bytes ""). bos/eos are
// v.bos_id/v.eos_id; v.add_bos / v.add_eos become a TemplateProcessing post_processor and
// v.pad_id a "padding" entry, so exporting the tokenizer again keeps them. v.pre may also be "llama3" or "llama-v3" (llama.cpp's aliases of
// "llama-bpe"). Throws lowbit::Error("tokenizer", origin + ": ...") for an unknown pre name, sizes
// that disagree, duplicate tokens, a malformed merge or one naming unknown tokens.
std::unique_ptr<Tokenizer> make_gguf_bpe_tokenizer(const BpeVocab& v, std::string_view origin);

}  // namespace lowbit
