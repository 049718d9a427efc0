// Standard base64 (RFC 4648, '+' '/', '=' padding), as used by tiktoken files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lowbit {

// Decoded bytes, or std::nullopt if s is not canonical padded base64 (length % 4 != 0, bad
// characters, misplaced '=').
std::optional<std::string> base64_decode(std::string_view s);

// Canonical padded base64 of bytes (base64_decode inverts it).
std::string base64_encode(std::string_view bytes);

// True if every character of s is in the base64 alphabet or '=' (a cheap sniff).
bool is_base64_text(std::string_view s);

}  // namespace lowbit
