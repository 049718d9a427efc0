// Our own SentencePiece-style BPE over a plain SpmVocab: the algorithm of llama2.c's run.c
// encode, llama.cpp's SPM tokenizer and sentencepiece's bpe_model.cc. Used for llama2.c
// tokenizer.bin files and GGUF-embedded "llama" vocabularies.
//
// encode(text):
//  1. if text is non-empty and add_dummy_prefix: prepend "▁"; replace every ' ' with "▁"
//     (identity normalisation otherwise, as Llama-style models use; NFKC models need the
//     libsentencepiece path);
//  2. split into UTF-8 characters; user-defined pieces (type 4) are matched first, longest
//     match wins, and never merge further; ill-formed bytes are single "characters";
//  3. repeatedly merge the adjacent pair whose concatenation is a NORMAL (or GGUF "undefined"),
//     USER_DEFINED or UNUSED piece with the highest score, leftmost on ties. Control, unknown
//     and byte pieces are never merge targets (sentencepiece's rule; run.c and llama.cpp look
//     every piece up, which can only differ when normal pieces can be merged into such a
//     piece's spelling: checked not to happen for any special piece of the shared
//     Llama-2, ref-m and stories260K vocabularies);
//  4. a symbol that ended as an UNUSED piece is split back into the pieces it was merged from
//     (sentencepiece's resegmentation); a character that is no piece becomes its byte tokens
//     "<0xNN>" if the vocab has them (byte fallback; a missing byte token gives unk), otherwise
//     unk, one unk per run of unknown characters (as sentencepiece does).
// token_bytes: "▁" -> ' ', "<0xNN>" byte pieces -> that byte, control -> "", unknown -> " ⁇ "
// (what sentencepiece's DecodeIds prints), out-of-range ids -> "".
// Duplicate pieces: the last id wins for encoding (as llama.cpp does).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/spm_vocab.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

// kind: "llama2c" or "gguf-llama" (reported by Tokenizer::kind()). The vocab is validated with
// validate_spm_vocab(v, origin); origin (e.g. the file path) prefixes error messages and
// defaults to the kind. Throws lowbit::Error("tokenizer", ...) on a bad vocab or kind.
// to_blob() returns source if its kind is set (the file the vocab came from, e.g. a llama2.c
// tokenizer.bin), else an "spm-vocab" blob: spm_vocab_to_json(v, kind) (spm_vocab_json.h).
std::unique_ptr<Tokenizer> make_spm_bpe_tokenizer(SpmVocab v, std::string kind,
                                                  std::string_view origin = {},
                                                  TokenizerBlob source = {});

// Rebuilds the tokenizer from an "spm-vocab" blob's bytes (spm_vocab_from_json +
// make_spm_bpe_tokenizer). Throws lowbit::Error("tokenizer", origin + ": ...") if they are bad.
std::unique_ptr<Tokenizer> spm_bpe_tokenizer_from_json(std::string_view text,
                                                       std::string_view origin);

}  // namespace lowbit
