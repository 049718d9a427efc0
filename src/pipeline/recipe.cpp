#include "pipeline/recipe.h"

#include <regex>

#include "base/error.h"

namespace lowbit {

std::string Recipe::to_string() const {
  if (algorithm == "none") return spec.to_string();
  return algorithm + ":" + spec.to_string() + (clip ? ":clip" : "");
}

Recipe parse_recipe(std::string_view s) {
  Recipe r;
  const std::string text(s);
  if (text == "f32" || text == "f16" || text == "bf16") {
    r.algorithm = "none";
    r.spec = parse_quant_spec(text);
    return r;
  }
  const size_t colon = text.find(':');
  r.algorithm = text.substr(0, colon);
  if (r.algorithm != "rtn")
    throw Error("recipe", "'" + text + "': unknown algorithm '" + r.algorithm + "' (known: rtn; or f32/f16/bf16)");
  if (colon == std::string::npos) throw Error("recipe", "'" + text + "': missing format, e.g. rtn:int4:g128");
  std::string spec = text.substr(colon + 1);
  for (const std::string opt : {":clip"}) {
    const size_t at = spec.find(opt);
    if (at != std::string::npos && at + opt.size() == spec.size()) {
      r.clip = true;
      spec.erase(at);
    }
  }
  try {
    r.spec = parse_quant_spec(spec);
  } catch (const Error& e) {
    throw Error("recipe", "'" + text + "': " + e.what());
  }
  if (!r.spec.quantized()) throw Error("recipe", "'" + text + "': rtn needs a quantized format");
  return r;
}

RecipePlan::RecipePlan(const std::string& model_recipe, const std::vector<std::string>& overrides)
    : model_(parse_recipe(model_recipe)) {
  for (const std::string& o : overrides) {
    const size_t eq = o.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("recipe", "--tensor '" + o + "': expected REGEX=RECIPE");
    try {
      std::regex check(o.substr(0, eq));
    } catch (const std::regex_error& e) {
      throw Error("recipe", "--tensor '" + o + "': bad regex: " + e.what());
    }
    overrides_.emplace_back(o.substr(0, eq), parse_recipe(o.substr(eq + 1)));
  }
}

Recipe RecipePlan::for_tensor(const std::string& name, bool is_matrix) const {
  Recipe r = parse_recipe("f32");
  if (name == "embed_tokens") {
    r = parse_recipe(model_.spec.kind == FormatKind::F32 ? "f32" : "f16");
  } else if (name == "lm_head") {
    const bool keep = model_.algorithm == "none" || model_.spec.bits >= 8;
    r = keep ? model_ : parse_recipe("rtn:int8:g128");
  } else if (is_matrix) {
    r = model_;
  }
  for (const auto& [pattern, recipe] : overrides_)
    if (std::regex_match(name, std::regex(pattern))) r = recipe;
  if (!is_matrix && r.algorithm != "none") r = parse_recipe("f32");  // 1-D tensors stay float
  return r;
}

}  // namespace lowbit
