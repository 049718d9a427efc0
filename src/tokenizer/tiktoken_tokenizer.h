// tiktoken BPE files (Llama-3's tokenizer.model): one "base64(token bytes) rank" per line, the
// rank being the token id. BPE over raw bytes where a pair's merge priority is the rank of the
// concatenated bytes (lowest first, leftmost on ties), after splitting the text with the
// Llama-3 pre-tokenizer regex; a piece that is itself a token is emitted whole (as tiktoken
// does). Bytes are the alphabet, so any text, even ill-formed UTF-8, round-trips.
//
// Special tokens are not in the file. With exactly 128000 ranks (Llama 3/3.1/3.2) the 256
// Llama-3 specials are appended as ids 128000..128255 ("<|begin_of_text|>" = BOS 128000,
// "<|end_of_text|>" = EOS 128001, "<|eot_id|>" = 128009, ...); otherwise there are none and
// bos/eos are -1. Specials are not matched in text (plain-text contract) and their
// token_bytes is "".
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lowbit {

// Throws lowbit::Error naming the path and line for malformed lines (bad base64, bad or
// duplicate rank, ranks not exactly 0..n-1, duplicate token bytes).
std::unique_ptr<Tokenizer> load_tiktoken_tokenizer(const std::string& path);

// The same from the file's text; errors name origin (and the line). to_blob() gives back
// exactly this text, kind "tiktoken".
std::unique_ptr<Tokenizer> tiktoken_tokenizer_from_bytes(std::string text, std::string_view origin);

// The token bytes of a tiktoken rank file, indexed by rank (= id), checked as
// tiktoken_tokenizer_from_bytes does (same errors).
std::vector<std::string> parse_tiktoken_ranks(std::string_view text, std::string_view origin);

// The 256 Llama-3 special tokens, ids 128000.. (Meta's Llama 3 tokenizer.py):
// <|begin_of_text|>, <|end_of_text|>, <|reserved_special_token_0..3|>, <|start_header_id|>,
// <|end_header_id|>, <|reserved_special_token_4|>, <|eot_id|>, <|reserved_special_token_5..250|>.
const std::vector<std::string>& llama3_special_tokens();

// The Llama-3 pre-tokenizer pattern.
inline constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace lowbit
