// The default plan's edges before they followed the blocks' bits (pipeline/recipe.h): f16
// embeddings (f32 for an f32 recipe) and an int8 lm_head (an 8-bit or float recipe as it is).
// Tests that pin codes, sizes or exact round trips of those two tensors put these overrides in
// front of their own, so they test what they are about and not the default plan.
#pragma once

#include <string>
#include <vector>

namespace lowbit::test {

inline std::vector<std::string> with_legacy_edges(const std::string& recipe, std::vector<std::string> overrides = {}) {
  const bool is_float = recipe == "f32" || recipe == "f16" || recipe == "bf16";
  const bool eight_bit = recipe.find(":int8") != std::string::npos || recipe.find(":fp8") != std::string::npos;
  std::vector<std::string> out = {std::string("embed_tokens=") + (recipe == "f32" ? "f32" : "f16")};
  if (!is_float && !eight_bit) out.push_back("lm_head=rtn:int8:g128");
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

}  // namespace lowbit::test
