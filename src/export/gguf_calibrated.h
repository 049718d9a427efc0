// Calibrated GGUF export: the codes of a float model's linear layers chosen with calibration
// data instead of plain rounding, in llama.cpp's own block types.
//
// Methods (GgufMethod):
//   Plain    every block fitted by the weighted-error search of export/ggml_blocks.h with
//            weights 1 (no calibration);
//   Imatrix  the same search weighted by diag(XᵀX)_j · sqrt(σ² + w_j²) (σ² = 2 · mean w² of
//            the block), diag(XᵀX) from the layer's calibration inputs: llama.cpp's
//            importance-matrix weighting (columns that carry large activations, and larger
//            weights, are rounded more carefully); Q4_0 / Q5_0 / Q8_0 then search their block
//            scale too (plain rounding otherwise);
//   Gptq     the block headers (scales, mins) of the Imatrix fit are kept, and every code is
//            then chosen by GPTQ's error feedback on that fixed grid (algo/gptq.h
//            gptq_grid_codes, act-order, 1% damping): the quantization error of each input
//            column is compensated in the columns not yet coded, minimising tr(ΔW H ΔWᵀ).
//            The result is never replaced by the Imatrix codes: GPTQ's proxy loss is usually
//            far lower (measured in the tests and docs/BENCHMARKS.md).
// Calibration runs as in `lowbit quantize` (pipeline/calibrated_layer.h): windows of the
// calibration text enter the embeddings and pass layer by layer; each layer's inputs come from
// the already-quantized earlier layers, and within a layer q/k/v, o, gate/up and down are
// quantized in turn ("true sequential"). Only one layer's fp32 weights are in memory at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "algo/gptq.h"
#include "export/ggml_blocks.h"
#include "io/model_source.h"
#include "pipeline/calibration.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

enum class GgufMethod { Plain, Imatrix, Gptq };

// "rtn" (Plain), "imatrix", "gptq". Throws lowbit::Error("export", ...) otherwise.
GgufMethod parse_gguf_method(std::string_view s);
const char* gguf_method_name(GgufMethod m);

// Encodes w [rows, cols] (row-major, rows = output channels) as rows of type t (a block type
// whose block divides cols; F32/F16 are written as such) given h = Σ x xᵀ [cols, cols] of the
// calibration inputs (unused and may be null for Plain). Returns rows * ggml_row_bytes(t, cols)
// bytes. Throws lowbit::Error("algo", ...) from GPTQ (non-finite input, H not positive definite
// after damping).
std::vector<uint8_t> encode_ggml_matrix(GgmlType t, const float* w, int64_t rows, int64_t cols,
                                        const float* h, GgufMethod method,
                                        const GptqOptions& gptq = {});

// The fp32 values of rows of type t (bytes as encode_ggml_matrix returns them).
std::vector<float> decode_ggml_matrix(GgmlType t, const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols);

struct CalibratedTensorReport {
  std::string canonical;
  GgmlType type = GgmlType::F32;
  double rel_output_error = -1;  // tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) on the calibration inputs
};

// Streams the calibrated linears of a float model in canonical order. Used by export_gguf.
class CalibratedGgufEncoder {
 public:
  using Progress = std::function<void(int64_t layer, int64_t layers, const std::string& what)>;

  // types: the GGUF type of every linear ("layers.N.q_proj" ... "lm_head"). Loads the
  // calibration windows (throws lowbit::Error("calibration", ...) when there are none).
  CalibratedGgufEncoder(const ModelSource& src, const Tokenizer& tok, GgufMethod method,
                        const CalibrationOptions& calibration, std::map<std::string, GgmlType> types,
                        Progress progress = nullptr);
  ~CalibratedGgufEncoder();

  // The bytes of linear `canonical` in source row order. Layers are computed on first use and
  // must be asked for in order (layer N before N + 1, lm_head last); each tensor once.
  std::vector<uint8_t> bytes(const std::string& canonical);

  int64_t calibration_windows() const;
  int64_t calibration_window_len() const;
  const std::vector<CalibratedTensorReport>& reports() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace lowbit
