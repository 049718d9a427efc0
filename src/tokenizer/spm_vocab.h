// A SentencePiece-style vocabulary as plain data: what a tokenizer.model, a llama2.c
// tokenizer.bin or a GGUF "llama" vocab boils down to. make_spm_bpe_tokenizer() turns it into a
// Tokenizer (see spm_bpe_tokenizer.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

// Token types, numbered as GGUF's tokenizer.ggml.token_type and sentencepiece's
// ModelProto.SentencePiece.Type (both use these values). GGUF's 0 ("undefined") is accepted and
// treated as normal.
inline constexpr int32_t kTokenUndefined = 0;
inline constexpr int32_t kTokenNormal = 1;
inline constexpr int32_t kTokenUnknown = 2;
inline constexpr int32_t kTokenControl = 3;
inline constexpr int32_t kTokenUserDefined = 4;
inline constexpr int32_t kTokenUnused = 5;
inline constexpr int32_t kTokenByte = 6;

struct SpmVocab {
  std::vector<std::string> pieces;  // [n] piece text, spaces written as U+2581 "▁"
  std::vector<float> scores;        // [n] merge priority: higher merges first
  std::vector<int32_t> types;       // [n] kToken* above
  int32_t bos_id = 1;               // -1: none
  int32_t eos_id = 2;               // -1: none
  int32_t unk_id = 0;               // -1: none
  bool add_dummy_prefix = true;     // prepend "▁" to non-empty text before encoding
};

// Throws lowbit::Error("tokenizer", origin + ": ...") unless: pieces/scores/types have the same
// non-zero size, which fits in int32; every type is 0..6; bos/eos/unk are -1 or in range; no
// piece is empty unless it is a control/unused token; no score is NaN.
void validate_spm_vocab(const SpmVocab& v, std::string_view origin);

// "<0xNN>" -> NN (0..255), anything else -> -1.
int parse_byte_piece(std::string_view piece);

}  // namespace lowbit
