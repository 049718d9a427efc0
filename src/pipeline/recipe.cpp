#include "pipeline/recipe.h"

#include <algorithm>
#include <regex>

#include "base/bounded_regex.h"
#include "base/error.h"
#include "formats/registry.h"

namespace lowbit {

std::string Recipe::to_string() const {
  if (algorithm == "none") return spec.to_string();
  return algorithm + ":" + spec.to_string() + (clip ? ":clip" : "") + (act_order ? "" : ":noact") +
         (low_rank > 0 ? ":lr" + std::to_string(low_rank) : "");
}

namespace {

constexpr int64_t kMaxLowRank = 4096;

// Removes a trailing ":lr<digits>" from spec and returns the rank (0 when there is none).
int64_t take_low_rank(std::string& spec, const std::string& text) {
  const size_t at = spec.rfind(":lr");
  if (at == std::string::npos) return 0;
  const std::string digits = spec.substr(at + 3);
  if (digits.empty() || digits.size() > 4 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return 0;  // not an ":lr<r>" option: the format parser reports it
  const int64_t r = std::stoll(digits);
  if (r < 1 || r > kMaxLowRank)
    throw Error("recipe", "'" + text + "': low-rank correction rank must be in [1, " + std::to_string(kMaxLowRank) + "]");
  spec.erase(at);
  return r;
}

}  // namespace

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
  if (r.algorithm != "rtn" && r.algorithm != "imatrix" && r.algorithm != "gptq" && r.algorithm != "awq")
    throw Error("recipe", "'" + text + "': unknown algorithm '" + r.algorithm +
                              "' (known: rtn, imatrix, gptq, awq; or f32/f16/bf16)");
  if (colon == std::string::npos) throw Error("recipe", "'" + text + "': missing format, e.g. " + r.algorithm + ":int4:g128");
  std::string spec = text.substr(colon + 1);
  // Trailing algorithm options, each at most once, in the order to_string() prints them.
  auto take = [&](const std::string& opt) {
    if (spec.size() > opt.size() && spec.compare(spec.size() - opt.size(), opt.size(), opt) == 0) {
      spec.erase(spec.size() - opt.size());
      return true;
    }
    return false;
  };
  r.low_rank = take_low_rank(spec, text);
  if (r.algorithm == "gptq") r.act_order = !take(":noact");
  if (r.algorithm == "rtn" || r.algorithm == "gptq") r.clip = take(":clip");
  try {
    r.spec = parse_quant_spec(spec);
  } catch (const Error& e) {
    throw Error("recipe", "'" + text + "': " + e.what());
  }
  if (!r.spec.quantized()) throw Error("recipe", "'" + text + "': " + r.algorithm + " needs a quantized format");
  return r;
}

namespace {

constexpr std::string_view kRotSuffix = ":rot", kHadSuffix = ":had";

bool has_suffix(std::string_view s, std::string_view suffix) { return s.size() > suffix.size() && s.ends_with(suffix); }
bool has_model_suffix(std::string_view s) { return has_suffix(s, kRotSuffix) || has_suffix(s, kHadSuffix); }

}  // namespace

RecipePlan::RecipePlan(const std::string& model_recipe, const std::vector<std::string>& overrides) {
  std::string_view rest = model_recipe;
  while (has_model_suffix(rest)) {  // ":rot" and ":had" at the end, in either order, once each
    bool& flag = has_suffix(rest, kRotSuffix) ? rotate_ : hadamard_down_;
    if (flag) throw Error("recipe", "'" + model_recipe + "': repeated option");
    flag = true;
    rest.remove_suffix(kRotSuffix.size());
  }
  model_ = parse_recipe(rest);
  for (const std::string& o : overrides) {
    const size_t eq = o.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("recipe", "--tensor '" + o + "': expected REGEX=RECIPE");
    if (has_model_suffix(o))
      throw Error("recipe", "--tensor '" + o + "': ':rot' and ':had' apply to the whole model; put them on the model recipe");
    overrides_.push_back({bounded_regex(o.substr(0, eq), "recipe", "--tensor '" + o + "'"),
                          parse_recipe(o.substr(eq + 1))});
  }
}

bool RecipePlan::needs_calibration(const std::vector<std::string>& names) const {
  for (const std::string& n : names)
    if (for_tensor(n, n != "embed_tokens" && !n.ends_with("norm") && !n.ends_with("_bias")).calibrated()) return true;
  return false;
}

Recipe RecipePlan::edge_recipe(bool embedding) const {
  if (model_.algorithm == "none") {
    if (embedding) return parse_recipe(model_.spec.kind == FormatKind::F32 ? "f32" : "f16");
    return model_;
  }
  if (!embedding && model_.spec.bits >= 8) return model_;
  const int bits = std::clamp(model_.spec.bits + 2, 4, 8);
  const std::string grid = "int" + std::to_string(bits) + (embedding && bits < 8 ? ":g64" : ":g128");
  if (embedding) return parse_recipe("rtn:" + grid + ":clip");
  return parse_recipe(model_.algorithm + ":" + grid + (model_.algorithm == "rtn" ? ":clip" : ""));
}

Recipe shape_fallback(const Recipe& r, int64_t cols) {
  if (cols % vector_dim(r.spec) == 0) return r;
  Recipe f = r;
  f.spec = QuantSpec{FormatKind::Int, 3, r.spec.group, false, false, r.spec.scale_type};
  return f;
}

Recipe RecipePlan::for_tensor(const std::string& name, bool is_matrix) const {
  const auto fit = [&](const Recipe& r) {
    const auto c = cols_.find(name);
    return c == cols_.end() ? r : shape_fallback(r, c->second);
  };
  if (auto a = assigned_.find(name); a != assigned_.end() && is_matrix) return fit(a->second);
  Recipe r = parse_recipe("f32");
  if (name == "embed_tokens" || name == "lm_head") {
    r = edge_recipe(name == "embed_tokens");
  } else if (is_matrix) {
    r = model_;
  }
  for (const auto& [pattern, recipe] : overrides_)
    if (std::regex_match(name, pattern)) r = recipe;
  if (!is_matrix && r.algorithm != "none") r = parse_recipe("f32");  // 1-D tensors stay float
  return is_matrix ? fit(r) : r;
}

}  // namespace lowbit
