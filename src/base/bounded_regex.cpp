#include "base/bounded_regex.h"

#include <algorithm>
#include <vector>

#include "base/error.h"

namespace lowbit {

namespace {

// The pattern shapes std::regex (a backtracking matcher) matches in exponential time even against
// short tensor names: a quantifier right after another ("a***": not ECMAScript, which allows one
// lazy '?', but libstdc++ accepts it and nests a loop per quantifier), and a quantified group that
// contains a quantifier or an alternation ("(a+)+", "(.*)*", "(.|.)*"); and many quantifiers in a
// row (".*.*.*.*.*.*.*.*.*.*x": polynomial of that degree). Returns why, or nullptr.
const char* exponential_shape(std::string_view p) {
  std::vector<bool> group_risky;  // per open group: it contains a quantifier or '|'
  bool after_quantifier = false, lazy_seen = false, after_risky_group = false;
  int quantifiers = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '*' || c == '+' || c == '?' || c == '{') {
      if (after_quantifier) {
        if (c == '?' && !lazy_seen) {
          lazy_seen = true;
          continue;
        }
        return "a quantifier follows another";
      }
      if (after_risky_group) return "a quantified group contains a quantifier or '|'";
      if (++quantifiers > kMaxRegexQuantifiers) return "more than 4 quantifiers";
      if (c == '{') i = std::min(p.find('}', i), p.size());
      if (!group_risky.empty()) group_risky.back() = true;
      after_quantifier = true, lazy_seen = false;
      continue;
    }
    after_quantifier = false, after_risky_group = false;
    if (c == '\\') {
      ++i;
    } else if (c == '[') {  // a class: skip to its closing ']' (a leading ']' or '^]' is literal)
      size_t j = i + 1 + (i + 1 < p.size() && p[i + 1] == '^');
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') j += p[j] == '\\' ? 2 : 1;
      i = j;
    } else if (c == '(') {
      group_risky.push_back(false);
      if (i + 1 < p.size() && p[i + 1] == '?') i += 2;  // (?: (?= (?!
    } else if (c == '|') {
      if (!group_risky.empty()) group_risky.back() = true;
    } else if (c == ')' && !group_risky.empty()) {
      after_risky_group = group_risky.back();
      group_risky.pop_back();
      if (after_risky_group && !group_risky.empty()) group_risky.back() = true;
    }
  }
  return nullptr;
}

}  // namespace

std::regex bounded_regex(std::string_view pattern, std::string_view component, const std::string& what) {
  if (pattern.size() > kMaxRegexLength)
    throw Error(component, what + ": regex longer than " + std::to_string(kMaxRegexLength) + " characters");
  if (std::count(pattern.begin(), pattern.end(), '(') > kMaxRegexGroups)
    throw Error(component, what + ": regex with more than " + std::to_string(kMaxRegexGroups) + " groups");
  if (const char* why = exponential_shape(pattern))
    throw Error(component, what + ": regex too costly to match (" + why + ")");
  try {
    return std::regex(pattern.begin(), pattern.end());
  } catch (const std::regex_error& e) {
    throw Error(component, what + ": bad regex: " + e.what());
  }
}

}  // namespace lowbit
