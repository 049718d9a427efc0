// A compiled PCRE2 regex in UTF + Unicode-property mode (\p{L}, \s etc. are Unicode-aware, as
// in HF tokenizers' Oniguruma and tiktoken's fancy-regex), JIT-compiled when available.
// Ill-formed UTF-8 in the subject is allowed (PCRE2_MATCH_INVALID_UTF): it simply never matches.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lowbit {

class Regex {
 public:
  // Throws lowbit::Error("tokenizer", origin + ": bad regex ...") if the pattern does not compile.
  // literal: match the pattern text verbatim (HF Split's {"String": ...}).
  Regex(const std::string& pattern, std::string_view origin, bool literal = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All non-overlapping, non-empty matches, left to right, as [begin, end) byte offsets.
  // Thread-safe (match data is per call).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view subject) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
