// Recipe strings and --tensor rules: line 1 is the model recipe, each further line a
// "<regex>=<recipe>" override; also parse_recipe / parse_quant_spec on each line alone, with the
// round trip parse(to_string(x)) == x checked.
#include "formats/quant_spec.h"
#include "fuzz_util.h"
#include "pipeline/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lowbit;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  for (std::string_view rest = text; !rest.empty() && lines.size() < 8;) {
    auto [line, tail] = fuzz::split_once(rest, "\n");
    lines.emplace_back(line);
    rest = tail;
  }
  if (lines.empty()) return 0;
  for (const std::string& l : lines) {
    fuzz::run_parser([&] {
      const Recipe r = parse_recipe(l);
      if (parse_recipe(r.to_string()).to_string() != r.to_string()) __builtin_trap();
    });
    fuzz::run_parser([&] {
      const QuantSpec s = parse_quant_spec(l);
      if (!(parse_quant_spec(s.to_string()) == s)) __builtin_trap();
    });
  }
  fuzz::run_parser([&] {
    const RecipePlan plan(lines[0], std::vector<std::string>(lines.begin() + 1, lines.end()));
    for (const char* name : {"layers.0.attn.q_proj", "layers.3.mlp.down_proj", "embed_tokens", "lm_head"})
      (void)plan.for_tensor(name, true);
    (void)plan.to_string();
  });
  return 0;
}
