// HF tokenizers pre-tokenizers: split text into the pieces BPE runs on (BPE never merges
// across pieces). Built from tokenizer.json's "pre_tokenizer" object.
//
// Supported: Sequence; Split {pattern: {Regex|String}, behavior: Removed|Isolated|
// MergedWithPrevious|MergedWithNext|Contiguous, invert}; Digits {individual_digits};
// ByteLevel {add_prefix_space, use_regex (the GPT-2 pattern)}. Anything else throws
// lowbit::Error naming the origin and the type. The byte-level character mapping itself is not
// done here (the BPE model applies it to every piece), so a Split placed after ByteLevel sees raw
// bytes, not mapped characters; tokenizers in the wild put ByteLevel last.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace lowbit {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece further; pieces are raw (UTF-8) text. Empty pieces are dropped.
  virtual std::vector<std::string> split(std::vector<std::string> pieces) const = 0;
  // True if this pre-tokenizer (or one inside a Sequence) is ByteLevel.
  virtual bool is_byte_level() const { return false; }
};

// j may be null (no pre-tokenizer: the whole text is one piece).
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, std::string_view origin);

// The GPT-2 pre-tokenizer regex (used by ByteLevel with use_regex).
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace lowbit
