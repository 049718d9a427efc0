#include "base/bounded_regex.h"

#include <algorithm>

#include "base/error.h"

namespace lowbit {

std::regex bounded_regex(std::string_view pattern, std::string_view component, const std::string& what) {
  if (pattern.size() > kMaxRegexLength)
    throw Error(component, what + ": regex longer than " + std::to_string(kMaxRegexLength) + " characters");
  if (std::count(pattern.begin(), pattern.end(), '(') > kMaxRegexGroups)
    throw Error(component, what + ": regex with more than " + std::to_string(kMaxRegexGroups) + " groups");
  try {
    return std::regex(pattern.begin(), pattern.end());
  } catch (const std::regex_error& e) {
    throw Error(component, what + ": bad regex: " + e.what());
  }
}

}  // namespace lowbit
