// Small UTF-8 helpers shared by the tokenizers (splitting text into characters).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lowbit {

// Byte length (1..4) of the well-formed UTF-8 character at the start of s. An ill-formed or
// truncated sequence (bad lead byte, missing continuation, overlong form, surrogate, > U+10FFFF)
// counts as a 1-byte "character", so callers handle bad bytes one at a time and never read past
// the end. Returns 0 only for an empty s.
size_t utf8_char_len(std::string_view s);

// True if s is entirely well-formed UTF-8 (in the sense of utf8_char_len).
bool is_valid_utf8(std::string_view s);

// UTF-8 encoding of code point cp (cp must be <= 0x10FFFF).
std::string utf8_encode(char32_t cp);

}  // namespace lowbit
