// SentencePiece tokenizer.model files, encoded and decoded by libsentencepiece itself (so
// unigram models and NFKC normalisation work exactly as upstream).
//
// Before handing the file to the library it is checked with parse_sentencepiece_model(), so
// junk, truncated and non-protobuf files throw lowbit::Error("tokenizer", "<path>: ...") instead
// of reaching the library. token_bytes follows sentencepiece's DecodeIds per piece: "▁" -> ' ',
// byte pieces "<0xNN>" -> that byte, control pieces -> "", the unknown piece -> the model's
// unk_surface (default " ⁇ "), out-of-range ids -> "". strips_leading_space() is the model's
// normalizer_spec.add_dummy_prefix. Text that is not valid UTF-8 is normalised by the library
// (ill-formed bytes become U+FFFD), so it does not round-trip.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/spm_vocab.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& path);

// The same from the file's bytes (a serialized ModelProto); origin names them in errors.
// to_blob() gives back exactly these bytes, kind "sentencepiece".
std::unique_ptr<Tokenizer> sentencepiece_tokenizer_from_bytes(std::string bytes,
                                                              std::string_view origin);

// The pieces, scores and types of a tokenizer.model as read by libsentencepiece
// (GetPieceSize/IdToPiece/GetScore/IsControl/IsUnknown/IsUnused/IsByte; user-defined types
// and add_dummy_prefix from the model proto), e.g. to run make_spm_bpe_tokenizer over them or
// to export a GGUF vocab. Throws like load_sentencepiece_tokenizer.
SpmVocab load_sentencepiece_vocab(const std::string& path);

// The same from the file's bytes (a serialized ModelProto, e.g. a "sentencepiece" tokenizer
// blob); origin names them in errors.
SpmVocab sentencepiece_vocab_from_bytes(std::string bytes, std::string_view origin);

}  // namespace lowbit
