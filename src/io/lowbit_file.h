// The .lowbit model file: a valid safetensors file (any safetensors reader lists it) holding a
// whole runnable model — config, tokenizer, and every tensor in its own storage format.
// Layout and metadata keys are specified in docs/FORMAT.md ("The .lowbit container"); in short:
//   - plain tensors under their canonical name, dtype F32/F16/BF16;
//   - a quantized matrix NAME as parts NAME.codes (U8), NAME.scales (F16/BF16), NAME.zeros (U8),
//     NAME.scale_codes (U8), NAME.dq_scale / NAME.dq_offset (F32), exactly the arrays of
//     QuantizedMatrix, byte for byte, and NAME.lr_b / NAME.lr_a (F16) when it has a low-rank
//     correction;
//   - the tokenizer's serialized bytes as tensor "tokenizer.blob" (U8);
//   - __metadata__: lowbit.version ("1"), lowbit.config, lowbit.tensors, lowbit.tokenizer,
//     lowbit.recipe, lowbit.source (JSON strings), and lowbit.rotation when the weights were
//     rotated before quantization (pipeline/model_rotation.h).
// Every tensor starts 64-byte aligned (explicit "__pad.N" U8 entries fill the gaps). The file is
// written atomically and deterministically: the same inputs give identical bytes.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/model_source.h"

namespace lowbit {

inline constexpr const char* kLowbitVersion = "1";

// One tensor to store: plain (view into fp data, stored in `plain_dtype`) or quantized.
struct LowbitTensorIn {
  std::string name;  // canonical
  std::string recipe;
  bool quantized = false;
  const QuantizedMatrix* matrix = nullptr;    // when quantized
  std::vector<float> values;                  // when plain: [shape] fp32 values
  std::vector<int64_t> shape;                 // when plain
  std::string plain_dtype = "F32";            // F32, F16 or BF16
  // >= 0: the stored matrix is W·H with H = Rotation::random_hadamard(cols, seed), and readers
  // must multiply its input by H first (the index entry's "input_hadamard": seed).
  int64_t input_hadamard = -1;
  // Quantized only, optional: a low-rank correction (the weight is Ŵ + B·A), stored as parts
  // NAME.lr_b [rows, rank] and NAME.lr_a [rank, cols] in F16 (the index entry's "low_rank": rank).
  // Its values must be fp16-representable (they are stored exactly).
  const LowRankFactors* correction = nullptr;
};

struct LowbitModelIn {
  LlamaConfig config;
  std::string recipe, source;
  std::string rotation;  // JSON object describing a folded rotation, or empty (no metadata key)
  EmbeddedTokenizer tokenizer;
  std::vector<LowbitTensorIn> tensors;
};

// Writes a whole model at once (all tensors in memory).
void write_lowbit(const std::string& path, const LowbitModelIn& model);

// Writes a model tensor by tensor, for pipelines that produce one layer at a time: each add()
// serializes the tensor at once (into a temp file beside `path`), so the caller can free it.
// commit() writes `path` atomically; destroying the writer without commit() leaves nothing
// behind. The same tensors in the same order give the same bytes as write_lowbit.
class LowbitWriter {
 public:
  // `model.tensors` is ignored (add them one by one).
  LowbitWriter(std::string path, const LowbitModelIn& model);
  ~LowbitWriter();
  LowbitWriter(const LowbitWriter&) = delete;
  LowbitWriter& operator=(const LowbitWriter&) = delete;

  void add(const LowbitTensorIn& t);
  void commit();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Loads a .lowbit file as a ModelSource (format "lowbit"): plain tensors are views into the
// mapping; quantized ones are copied into QuantizedMatrix and validated. Malformed files
// (missing parts, sizes that disagree with shape and spec, unknown version) throw lowbit::Error.
ModelSource load_lowbit_model(const std::string& path);

// Writes `out_path` (atomically; it may equal in_path) as a copy of the .lowbit file `in_path`
// with the parts of the given quantized matrices (NAME.codes, NAME.zeros when asymmetric, and
// NAME.scales or for double-quantized specs NAME.scale_codes, NAME.dq_scale and NAME.dq_offset)
// replaced by theirs; every other byte is copied unchanged, so metadata and the file's size stay
// as they were (for matrices re-derived in the same spec: train/kd_tune.h, train/loftq.h).
// Throws lowbit::Error if a name has no such parts of exactly the matrix's sizes.
void rewrite_lowbit_quantized(const std::string& in_path, const std::map<std::string, QuantizedMatrix>& matrices,
                              const std::string& out_path);

// True if the file is a safetensors file whose metadata says lowbit.version.
bool is_lowbit_file(const std::string& path);

}  // namespace lowbit
