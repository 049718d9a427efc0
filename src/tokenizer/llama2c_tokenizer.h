// llama2.c tokenizer.bin reader.
//
// File format (little-endian): int32 max_token_length, then vocab_size records of
// {float32 score, int32 len, len bytes of piece}. Pieces store spaces as plain ' ' (llama2.c's
// export replaced "▁"), BOS/EOS as "\n<s>\n" / "\n</s>\n". The file carries no vocab size and no
// token types, so the caller passes vocab_size (from the model header) and types are inferred:
// id 0 unknown, ids 1/2 control (BOS/EOS, fixed by llama2.c's run.c), "<0xNN>" pieces byte tokens,
// everything else normal. Pieces are normalised to SentencePiece form (' ' -> "▁").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/spm_vocab.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

// Parses the file's bytes into an SpmVocab (bos 1, eos 2, unk 0, dummy prefix on). Throws
// lowbit::Error("tokenizer", origin + ": ...") if vocab_size <= 0, the bytes are truncated, a
// length is negative or runs past the end, or bytes are left over after vocab_size records
// (a wrong vocab_size).
SpmVocab parse_llama2c_vocab(std::string_view bytes, int32_t vocab_size, std::string_view origin);

// Reads the file and parses it as above (errors name the path).
SpmVocab read_llama2c_vocab(const std::string& path, int32_t vocab_size);

// parse_llama2c_vocab + make_spm_bpe_tokenizer(kind "llama2c"); to_blob() gives kind "llama2c":
// vocab_size then the bytes (see TokenizerBlob).
std::unique_ptr<Tokenizer> llama2c_tokenizer_from_bytes(std::string_view bytes, int32_t vocab_size,
                                                        std::string_view origin);

// Reads the file, then llama2c_tokenizer_from_bytes.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int32_t vocab_size);

}  // namespace lowbit
