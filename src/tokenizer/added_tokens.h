// HF "added_tokens": strings matched in the input text before pre-tokenization and emitted as
// their own id (HF tokenizers does this for special and non-special added tokens alike, so
// "<|im_start|>" in text becomes id 1 for SmolLM2). Matching is leftmost-longest. lstrip/rstrip
// extend a match over the whitespace to its left/right (which then belongs to the token).
// single_word and normalized are not interpreted (there is no normalizer here).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false;
};

struct TextSegment {
  std::string_view text;  // plain text to tokenize when id < 0
  int32_t id = -1;        // added token id
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  std::vector<TextSegment> split(std::string_view text) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Longest token starting at text[i], or -1 (index into tokens_).
  int longest_at(std::string_view text, size_t i) const;

  std::vector<AddedToken> tokens_;
  std::array<std::vector<int>, 256> by_first_byte_;  // token indices, longest content first
};

}  // namespace lowbit
