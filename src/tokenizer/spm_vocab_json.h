// JSON form of an SpmVocab plus the SPM-BPE tokenizer kind it was made for: the bytes of a
// "spm-vocab" TokenizerBlob (tokenizer.h). Persisted; never change a field's meaning.
//
//   {"format": "lowbit-spm-vocab", "version": 1, "tokenizer_kind": "gguf-llama",
//    "bos_id": 1, "eos_id": 2, "unk_id": 0, "add_dummy_prefix": true,
//    "pieces": ["<unk>", "\u2581the", {"base64": "/w=="}, ...],
//    "scores": [0.0, -1.5, "-inf", ...], "types": [2, 1, 6, ...]}
//
// pieces: well-formed UTF-8 as JSON strings, anything else as {"base64": ...} of its bytes.
// scores: float32 values as JSON numbers (exact round trip), infinities as "inf" / "-inf".
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/spm_vocab.h"

namespace lowbit {

struct SpmVocabWithKind {
  SpmVocab vocab;
  std::string tokenizer_kind;  // make_spm_bpe_tokenizer's kind: "llama2c" or "gguf-llama"
};

std::string spm_vocab_to_json(const SpmVocab& v, std::string_view tokenizer_kind);

// Inverse of spm_vocab_to_json; the vocab is checked with validate_spm_vocab. Throws
// lowbit::Error("tokenizer", origin + ": ...") on bad JSON, a missing or mistyped field, an
// unknown format/version, or an invalid vocab.
SpmVocabWithKind spm_vocab_from_json(std::string_view text, std::string_view origin);

}  // namespace lowbit
