// GPT-2's byte-level alphabet (bytes_to_unicode): every byte 0..255 gets a printable Unicode
// character so BPE vocabularies can be stored as text. Printable Latin-1 bytes ('!'..'~',
// '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 bytes map, in increasing byte order, to
// U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace lowbit {

// UTF-8 text of the alphabet character for each byte.
const std::array<std::string, 256>& byte_level_alphabet();

// Maps raw bytes to their alphabet characters.
std::string bytes_to_byte_level(std::string_view bytes);

// Inverse mapping for a token's text. Characters outside the alphabet are copied unchanged
// (HF's decoder does the same for added tokens written in plain text).
std::string byte_level_to_bytes(std::string_view text);

}  // namespace lowbit
