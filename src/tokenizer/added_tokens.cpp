#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace lowbit {

namespace {
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (!tokens_[i].content.empty()) {
      by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(
          static_cast<int>(i));
    }
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int a, int b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t i) const {
  for (int t : by_first_byte_[static_cast<unsigned char>(text[i])]) {
    if (text.compare(i, tokens_[t].content.size(), tokens_[t].content) == 0) return t;
  }
  return -1;
}

std::vector<TextSegment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSegment> out;
  size_t plain_begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int t = longest_at(text, i);
    if (t < 0) continue;
    const AddedToken& tok = tokens_[t];
    size_t begin = i, end = i + tok.content.size();
    if (tok.lstrip) {
      while (begin > plain_begin && is_space(text[begin - 1])) --begin;
    }
    if (tok.rstrip) {
      while (end < text.size() && is_space(text[end])) ++end;
    }
    if (begin > plain_begin) out.push_back({text.substr(plain_begin, begin - plain_begin), -1});
    out.push_back({{}, tok.id});
    plain_begin = end;
    i = end - 1;
  }
  if (plain_begin < text.size()) out.push_back({text.substr(plain_begin), -1});
  return out;
}

}  // namespace lowbit
