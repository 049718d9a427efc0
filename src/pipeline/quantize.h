// The quantize driver: reads every tensor of a source model, applies the recipe plan
// tensor by tensor (RTN for now; calibrated algorithms come later), and writes a .lowbit file
// that carries the config, the tokenizer and every tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/model_source.h"
#include "pipeline/recipe.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

struct TensorReport {
  std::string name, recipe, format;
  std::vector<int64_t> shape;
  int64_t params = 0, bytes = 0;
  double bits_per_weight = 0;
  double rel_rmse = 0;  // ‖W − Ŵ‖ / ‖W‖ (0 for float storage)
  double seconds = 0;
};

struct QuantizeReport {
  std::string recipe;
  std::vector<TensorReport> tensors;
  int64_t total_params = 0, total_bytes = 0;
  int64_t linear_params = 0, linear_bytes = 0;  // the blocks' linear layers + lm_head
  double bpw_all() const { return total_params ? 8.0 * total_bytes / total_params : 0; }
  double bpw_linear() const { return linear_params ? 8.0 * linear_bytes / linear_params : 0; }
  double seconds = 0;
};

struct QuantizeOptions {
  std::string recipe = "rtn:int4:g128";
  std::vector<std::string> overrides;  // "REGEX=RECIPE"
  std::function<void(int64_t done, int64_t total, const std::string& name)> progress;
};

// Quantizes `src` to `out_path` (written atomically; nothing is left behind on error).
QuantizeReport quantize_model(const ModelSource& src, const Tokenizer& tokenizer,
                              const QuantizeOptions& opt, const std::string& out_path);

}  // namespace lowbit
