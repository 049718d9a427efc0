#include "tokenizer/byte_level.h"

#include <unordered_map>

#include "tokenizer/utf8.h"

namespace lowbit {

namespace {

bool maps_to_itself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

std::array<std::string, 256> make_alphabet() {
  std::array<std::string, 256> a;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    a[b] = utf8_encode(maps_to_itself(b) ? static_cast<char32_t>(b) : next++);
  }
  return a;
}

const std::unordered_map<std::string, char>& inverse_alphabet() {
  static const std::unordered_map<std::string, char> inv = [] {
    std::unordered_map<std::string, char> m;
    const auto& a = byte_level_alphabet();
    for (int b = 0; b < 256; ++b) m.emplace(a[b], static_cast<char>(b));
    return m;
  }();
  return inv;
}

}  // namespace

const std::array<std::string, 256>& byte_level_alphabet() {
  static const std::array<std::string, 256> alphabet = make_alphabet();
  return alphabet;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& a = byte_level_alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += a[static_cast<unsigned char>(c)];
  return out;
}

std::string byte_level_to_bytes(std::string_view text) {
  const auto& inv = inverse_alphabet();
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = utf8_char_len(text.substr(i));
    const auto it = inv.find(std::string(text.substr(i, n)));
    if (it != inv.end())
      out += it->second;
    else
      out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace lowbit
