#include "base/json_depth.h"

#include <algorithm>

#include "base/error.h"

namespace lowbit {

int json_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

void check_json_depth(std::string_view text, std::string_view component, const std::string& what) {
  if (json_depth(text) > kMaxJsonDepth)
    throw Error(component, what + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
}

}  // namespace lowbit
