// A minimal, bounds-checked reader for the SentencePiece ModelProto wire format (the
// tokenizer.model file). libsentencepiece does the real loading; this reader exists because the
// installed library ships no generated proto headers, and we need a few fields it does not
// expose (add_dummy_prefix, user-defined piece types, unk_surface) plus a structural check that
// rejects junk and truncated files before the library sees them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct SpmModelProto {
  std::vector<std::string> pieces;  // [n] ModelProto.pieces[i].piece
  std::vector<float> scores;        // [n] .score (0 if absent)
  std::vector<int32_t> types;       // [n] .type (kToken* values; 1 if absent)
  bool has_trainer_spec = false;
  bool has_normalizer_spec = false;
  int32_t model_type = 1;      // TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;  // TrainerSpec.byte_fallback
  std::string unk_surface = " \xE2\x81\x87 ";  // TrainerSpec.unk_surface (" ⁇ ")
  std::string normalizer_name;                 // NormalizerSpec.name ("identity", "nmt_nfkc", ...)
  bool add_dummy_prefix = true;                // NormalizerSpec.add_dummy_prefix
  bool remove_extra_whitespaces = true;        // NormalizerSpec.remove_extra_whitespaces
};

// Parses a serialized ModelProto. Throws lowbit::Error("tokenizer", origin + ": ...") if the
// bytes are not well-formed protobuf, a field has the wrong wire type, there are no pieces, or
// the trainer_spec/normalizer_spec that every trained model carries is missing (the usual sign
// of a truncated file: the pieces come first in the file, the specs after them).
SpmModelProto parse_sentencepiece_model(std::string_view bytes, std::string_view origin);

// Cheap sniff for file-type detection: true if bytes begin with a well-formed ModelProto.pieces
// entry (field 1, length-delimited, itself starting with a piece string).
bool looks_like_sentencepiece_model(std::string_view bytes);

}  // namespace lowbit
