#include "pipeline/recipe.h"

#include <algorithm>
#include <charconv>
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

constexpr double kDefaultSmoothAlpha = 0.5;

std::string format_shortest(double v) {  // the shortest text that reads back as v
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// The last ":"-separated part of s (empty when s has no ':' or nothing before it).
std::string_view last_part(std::string_view s) {
  const size_t colon = s.rfind(':');
  return colon == std::string_view::npos || colon == 0 ? std::string_view{} : s.substr(colon + 1);
}

bool is_model_option(std::string_view part) { return part == "rot" || part == "had" || part.starts_with("smooth"); }

// "smooth" -> 0.5, "smooth0.8" -> 0.8; alpha must be in (0, 1].
double parse_smooth_alpha(std::string_view part, const std::string& recipe) {
  const std::string_view digits = part.substr(std::string_view("smooth").size());
  if (digits.empty()) return kDefaultSmoothAlpha;
  double alpha = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), alpha);
  if (ec != std::errc{} || end != digits.data() + digits.size() || !(alpha > 0.0 && alpha <= 1.0))
    throw Error("recipe", "'" + recipe + "': ':smooth<alpha>' needs alpha in (0, 1], e.g. :smooth0.5");
  return alpha;
}

}  // namespace

RecipePlan::RecipePlan(const std::string& model_recipe, const std::vector<std::string>& overrides) {
  std::string_view rest = model_recipe;
  bool had_smooth = false;
  // ":rot", ":had" and ":smooth[<alpha>]" at the end, in any order, once each.
  for (std::string_view part = last_part(rest); is_model_option(part); part = last_part(rest)) {
    bool& seen = part == "rot" ? rotate_ : part == "had" ? hadamard_down_ : had_smooth;
    if (seen) throw Error("recipe", "'" + model_recipe + "': repeated option");
    seen = true;
    if (part.starts_with("smooth")) smooth_alpha_ = parse_smooth_alpha(part, model_recipe);
    rest.remove_suffix(part.size() + 1);
  }
  model_ = parse_recipe(rest);
  for (const std::string& o : overrides) {
    const size_t eq = o.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("recipe", "--tensor '" + o + "': expected REGEX=RECIPE");
    if (is_model_option(last_part(o)))
      throw Error("recipe", "--tensor '" + o + "': ':rot', ':had' and ':smooth' apply to the whole model; put them on the model recipe");
    overrides_.push_back({bounded_regex(o.substr(0, eq), "recipe", "--tensor '" + o + "'"),
                          parse_recipe(o.substr(eq + 1))});
  }
}

std::string RecipePlan::to_string() const {
  std::string s = model_.to_string() + (rotate_ ? ":rot" : "") + (hadamard_down_ ? ":had" : "");
  if (smooth_alpha_ == kDefaultSmoothAlpha) s += ":smooth";
  else if (smooth_alpha_ > 0) s += ":smooth" + format_shortest(smooth_alpha_);
  return s;
}

bool RecipePlan::needs_calibration(const std::vector<std::string>& names) const {
  if (smooth_alpha_ > 0) return true;
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
