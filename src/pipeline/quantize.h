// The quantize driver: reads the source model tensor by tensor (weights stay memory-mapped),
// applies the recipe plan, and streams a .lowbit file that carries the config, the tokenizer and
// every tensor (io/lowbit_file.h LowbitWriter: each tensor is written out, then freed).
//
// When any tensor's recipe is calibrated (imatrix, gptq, awq), the driver runs the calibration
// windows through the model layer by layer (pipeline/calibrated_layer.h): the embeddings of the
// windows enter layer 0; each layer is quantized against inputs computed by the already
// quantized earlier layers and passes its outputs on; lm_head sees the final norm's output.
// Only one layer's fp32 weights are in memory at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/model_source.h"
#include "pipeline/calibration.h"
#include "pipeline/recipe.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

struct TensorReport {
  std::string name, recipe, format;
  std::vector<int64_t> shape;
  int64_t params = 0, bytes = 0;
  double bits_per_weight = 0;
  double rel_rmse = 0;  // ‖W − Ŵ‖ / ‖W‖ (0 for float storage)
  double rel_output_error = -1;  // ‖(W − Ŵ)X‖² / ‖WX‖² on the calibration inputs; -1 if not run
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
  // Calibrated runs only (windows == 0 otherwise).
  int64_t calib_windows = 0, calib_window_len = 0;
  double calib_seconds = 0;      // tokenizing the calibration text
  double calib_nll = 0;          // mean NLL of the quantized model on the windows (if asked)
  int64_t peak_rss_bytes = 0;    // the process's peak resident memory when the file was written
};

struct QuantizeOptions {
  std::string recipe = "rtn:int4:g128";
  std::vector<std::string> overrides;  // "REGEX=RECIPE"
  std::map<std::string, std::string> assigned;  // canonical name -> recipe, above all else
                                                // (a bit allocation's choices)
  CalibrationOptions calibration;      // used only by calibrated recipes; window_len is
                                       // clamped to the model's max_seq_len
  bool calib_nll = false;              // also compute QuantizeReport::calib_nll (costs one
                                       // lm_head pass over all calibration tokens)
  // Called before each tensor (plain runs: done/total count tensors) or each step of a layer
  // (calibrated runs: done/total count layers, name says the step).
  std::function<void(int64_t done, int64_t total, const std::string& name)> progress;
};

// Quantizes `src` to `out_path` (written atomically; nothing is left behind on error).
QuantizeReport quantize_model(const ModelSource& src, const Tokenizer& tokenizer,
                              const QuantizeOptions& opt, const std::string& out_path);

}  // namespace lowbit
