// The little-endian int32 fields that the "llama2c" and "hf-bpe" tokenizer blobs put in front
// of the file they carry (TokenizerBlob in tokenizer.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace lowbit {

// The fields, 4 bytes each, then body.
std::string join_blob_fields(std::initializer_list<int32_t> fields, std::string_view body);

// Reads fields.size() int32 fields from the front of bytes and returns what follows them.
// Throws lowbit::Error("tokenizer", origin + ": ...") if bytes is too short.
std::string_view split_blob_fields(std::string_view bytes, std::span<int32_t> fields,
                                   std::string_view origin);

}  // namespace lowbit
