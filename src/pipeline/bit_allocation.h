// Bit allocation to a budget (`lowbit quantize --target-bpw / --target-size`): measure what each
// tensor costs under each candidate recipe, then choose one recipe per tensor that minimizes the
// predicted KL-divergence of the whole model under a byte budget.
//
// The loss model (a KLD proxy, additive over tensors):
//   error_t(c)  the tensor's relative output error under candidate c on the calibration inputs of
//               the float model: tr(ΔW H ΔWᵀ) / tr(W H Wᵀ) for a linear (H = Σ x xᵀ of its
//               inputs); for embed_tokens, Σ_tok ‖Δe_tok‖² / Σ_tok ‖e_tok‖² over the calibration
//               tokens (each row weighted by how often it is read).
//   probe_kld_t the measured mean KL(P_float ‖ P) on `kld_windows` calibration windows of the float
//               model with only tensor t replaced by its probe candidate (the one with the fewest
//               bytes).
//   predicted_t(c) = probe_kld_t · error_t(c) / error_t(probe).
// Why: output errors rank candidates of one tensor well but are not comparable across tensors
// (a unit of error in layer 0's down_proj and in lm_head move the logits very differently); one
// real KLD per tensor converts each tensor's errors to the common unit, and to second order a
// small weight perturbation's KLD is proportional to its output error. Summing over tensors
// assumes the tensors' errors do not interact (the measured total is reported beside it).
// Cost: every candidate of every linear is quantized once (GPTQ/AWQ/... with the float model's
// statistics), plus one forward of `kld_windows` windows per tensor.
//
// The measurement can be saved and reused (`--measurement FILE`, as EXL2 does): it is valid for
// one model, rotation, calibration setting and candidate list, and is checked against them.
//
// The allocation is a multiple-choice knapsack solved exactly by dynamic programming over the
// budget in units of ceil(budget / 16384) bytes, each candidate's size rounded up to whole units
// (so the chosen sizes never exceed the budget).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <optional>

#include "formats/quantized_matrix.h"
#include "io/model_source.h"
#include "pipeline/calibrated_layer.h"
#include "pipeline/calibration.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

struct CandidateCost {
  std::string recipe;  // Recipe::to_string() spelling (or the coder's candidate name)
  int64_t bytes = 0;   // what the tensor adds to the file: storage + header entries/alignment
  double error = 0;    // relative output error (see above)
};

struct TensorMeasurement {
  std::string name;
  int64_t rows = 0, cols = 0, params = 0;
  std::vector<CandidateCost> candidates;
  int probe = 0;         // index of the probe candidate
  double probe_kld = 0;  // measured KLD with only this tensor at the probe candidate
  double predicted_kld(size_t candidate) const;
};

struct Measurement {
  std::string model, rotation;  // source path; rotation JSON or "" (provenance, checked on reuse)
  std::string recipe;           // the base recipe (its algorithm and ":rot")
  CalibrationOptions calibration;
  int64_t kld_windows = 0;
  std::vector<std::string> linear_candidates, embed_candidates;
  std::vector<TensorMeasurement> tensors;  // every matrix (embed_tokens, layer linears, lm_head)
  int64_t fixed_bytes = 0;    // tensors outside the allocation (norms, biases: f32)
  int64_t fixed_tensors = 0;  // how many
  double seconds = 0;

  std::string to_json() const;
  // Throws lowbit::Error("allocate", ...) naming `path` for malformed JSON.
  static Measurement from_json(const std::string& text, const std::string& path);
};

// One tensor coded under one candidate: what it costs in the file and what a reader gets back.
struct CodedTensor {
  int64_t bytes = 0;                     // storage + the container's per-tensor overhead
  std::vector<float> values;             // the decoded weights [rows, cols]
  std::optional<QuantizedMatrix> matrix;  // a .lowbit matrix (the KLD probe runs it packed)
  std::optional<LowRankFactors> correction;  // with matrix: its ":lr<r>" correction
};
// Codes tensor `name` (w [rows, cols]; h = Σ x xᵀ of its inputs, null for embed_tokens) under
// `candidate`; nullopt when the candidate does not apply to this shape. Throws lowbit::Error
// for a bad candidate.
using CandidateCoder = std::function<std::optional<CodedTensor>(
    const std::string& name, const std::string& candidate, const DenseWeight& w, const float* h)>;

// The coder of .lowbit recipes (quantize_linear; bytes include container_bytes).
CandidateCoder lowbit_coder();

struct MeasureOptions {
  std::string recipe = "gptq:int4:g128";   // the algorithm of the default candidates; ":rot"
  std::vector<std::string> linear_candidates;  // empty: default_linear_candidates(algorithm)
  std::vector<std::string> embed_candidates;   // empty: default_embed_candidates()
  // Another container's coder (e.g. GGUF block types, export/gguf_allocation.h); then both
  // candidate lists are required and `recipe` only names the algorithm and rotation.
  CandidateCoder coder;
  CalibrationOptions calibration;
  int64_t kld_windows = 4;  // ref-m at 2.94 MB: 4, 8 and 16 windows give KLD 0.0088, 0.0088, 0.0091
  std::function<void(int64_t done, int64_t total, const std::string& what)> progress;
};

// ALG:e8p:g128, ALG:e8p:g64, ALG:int3:g128, ALG:int3:g64, ALG:int4:g128, ALG:int4:g64, ALG:int5:g128,
// ALG:int6:g128, ALG:int8:g128 (ALG = rtn: the int grids get :clip).
std::vector<std::string> default_linear_candidates(const std::string& algorithm);
// rtn:e8p:g128, rtn:e8p:g64, rtn:int<b>:...:clip for int3..int8, and f16.
std::vector<std::string> default_embed_candidates();

// Measures every matrix of `src` (a float model). Throws lowbit::Error for a quantized source,
// bad candidates (an embed candidate needing calibration, a non-matrix recipe) or calibration
// errors.
Measurement measure_model(const ModelSource& src, const Tokenizer& tokenizer, const MeasureOptions& opt);

// Throws lowbit::Error("allocate", ...) if `m` was not made for this source and options.
void check_measurement_matches(const Measurement& m, const ModelSource& src, const MeasureOptions& opt);

struct AllocationRow {
  std::string name, recipe;
  int64_t params = 0;
  int64_t bytes = 0;  // what the tensor adds to the file: storage + container_bytes(recipe)
  double predicted_kld = 0;
};

struct Allocation {
  std::vector<AllocationRow> rows;  // in the measurement's tensor order
  int64_t budget_bytes = 0, tensor_bytes = 0;
  double predicted_kld = 0;
};

// The recipes minimizing Σ predicted KLD with Σ bytes <= budget_bytes (the allocated tensors
// only). Throws lowbit::Error("allocate", ...) naming the smallest possible size when even the
// smallest candidates do not fit.
Allocation allocate_bits(const Measurement& m, int64_t budget_bytes);

// Bytes a .lowbit file spends beyond the allocated tensors: the fixed tensors, the tokenizer
// blob and the metadata (an upper estimate, so a file planned for a target size stays within it).
int64_t lowbit_file_overhead(const Measurement& m, int64_t tokenizer_bytes);
// The measurement saved at `path` if that file exists (checked with check_measurement_matches),
// else a new one, then saved there atomically when `path` is non-empty. *reused says which.
Measurement load_or_measure(const std::string& path, const ModelSource& src, const Tokenizer& tokenizer,
                            const MeasureOptions& opt, bool* reused = nullptr);

// Bytes of a file with `bpw` bits per weight over all weights of a model with config `c` (lm_head
// counted even when tied: .lowbit files store it).
int64_t target_bytes_for_bpw(const LlamaConfig& c, double bpw);

// The allocation for a .lowbit file of at most `target_bytes` (lowbit_file_overhead taken off).
// Throws lowbit::Error("allocate", ...) when the target leaves nothing for the weights or the
// smallest candidates do not fit.
Allocation allocate_for_file(const Measurement& m, const Tokenizer& tokenizer, int64_t target_bytes);

// Upper estimate of the header entries and alignment that tensor `name` [rows, cols] stored with
// `recipe` adds to a .lowbit file beyond its storage bytes.
int64_t container_bytes(const std::string& name, const std::string& recipe, int64_t rows, int64_t cols);

}  // namespace lowbit
