// The tokenizer.ggml.* metadata of an exported GGUF, made from a lowbit Tokenizer (from its
// to_blob(), so from exactly what the tokenizer was built from). docs/FORMAT.md "GGUF export"
// lists the keys.
//
//  - SentencePiece-style kinds (sentencepiece, llama2c, spm-vocab i.e. gguf-llama) give
//    tokenizer.ggml.model "llama": pieces, scores, token types, bos/eos/unk, add_bos_token (if a
//    BOS exists), add_space_prefix. Ids the tokenizer lacks up to the model's vocab_size are
//    unused pieces "<unusedN>".
//  - Byte-level BPE kinds give "gpt2" (BpeVocab, tokenizer/gguf_bpe.h): the llama.cpp
//    pre-tokenizer name, tokens in the byte-level alphabet, token types, merges in rank order,
//    bos/eos/unk/padding ids when known, add_bos/add_eos_token. Ids the tokenizer lacks are
//    unused tokens "[PADN]" (as llama.cpp's convert_hf_to_gguf.py writes them).
//     - "hf-bpe" (tokenizer.json): vocab and merges as stored; added tokens keep their content
//       and are control tokens (3) when "special" or looking like "<|...|>", else user-defined
//       (4), as convert_hf_to_gguf.py does; the pre-tokenizer must be one gguf_bpe.h knows
//       (with model.ignore_merges agreeing) or lowbit::Error("export") is thrown, since
//       llama.cpp would split text differently; so are lstrip/rstrip added tokens and
//       byte_fallback, which llama.cpp's gpt2 vocab does not do. add_bos/add_eos_token: the
//       post_processor's template starts/ends with a special token (RobertaProcessing: both),
//       add_bos only if the BOS id is known. padding id from the "padding" object.
//     - "tiktoken": pre "llama-bpe" (the tokenizer's regex is the Llama-3 one), the rank file's
//       tokens (id = rank), the 256 Llama-3 specials as control tokens when present,
//       add_bos_token true when a BOS exists, and merges derived from the ranks
//       (tiktoken_merges).
// Errors name origin (the model) and throw lowbit::Error("export", ...), as does a tokenizer with
// more tokens than vocab_size.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "export/gguf_writer.h"
#include "tokenizer/gguf_bpe.h"
#include "tokenizer/spm_vocab.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

using GgufVocab = std::variant<SpmVocab, BpeVocab>;

// The vocabulary to write for `tok`, padded to vocab_size (see above).
GgufVocab gguf_vocab_of(const Tokenizer& tok, int64_t vocab_size, const std::string& origin);

// Adds the tokenizer.ggml.* keys for v.
void add_tokenizer_metadata(GgufWriter& w, const GgufVocab& v);
// Both steps at once.
void add_tokenizer_metadata(GgufWriter& w, const Tokenizer& tok, int64_t vocab_size,
                            const std::string& origin);

// Merges ("left right", byte-level text, in rank order) under which merge-list BPE (HF's and
// llama.cpp's: lowest merge index first, leftmost on ties) encodes as tiktoken's rank BPE over
// token_bytes (index = rank) does. As transformers' TikTokenConverter (which made Llama 3's
// tokenizer.json) does: for every token of two or more bytes, every split into two tokens
// (left + right == token), ordered by the token's rank, then the left's, then the right's.
// Every pair tiktoken can merge is then in the list, at the priority of its rank; the one
// difference left is the tie order of two different splits of the same token adjacent in one
// word (tiktoken takes the leftmost), never met on ~2.2M tokens of the shared corpora. (Keeping
// only the split that BPE over the token's own bytes below its rank produces, as llama.cpp's
// Qwen converter does, misses pairs tiktoken merges: it differs on multilingual text.)
std::vector<std::string> tiktoken_merges(const std::vector<std::string>& token_bytes);

}  // namespace lowbit
