// Model -> GGUF "llama" file that llama.cpp (and lowbit's own GGUF loader) runs.
// Layout and metadata: docs/FORMAT.md "GGUF export".
//
// Tensors (GGUF names; canonical names in io/model_source.h):
//   token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
//   ffn_up, ffn_down}, output_norm, output (absent when the embeddings are tied), all ".weight".
//
// Tensor types. Norms are always F32. With an explicit type T every other tensor is written as
// T, except that for the types below 6 bits (Q3_K, Q4_0, Q4_K, IQ4_NL, Q5_0, Q5_1, Q5_K) the
// output projection (output, or token_embd when the embeddings are tied) gets Q6_K (or its exact
// Q8_0 codes), as llama-quantize does. A quantized (.lowbit) tensor whose grid is exactly T
// (exact_block_type in ggml_blocks.h) keeps its codes and fp16 scale bits; any other one is
// dequantized and encoded again (one warning per tensor kind). Without a type (automatic):
//   - quantized tensors keep their codes in their exact block type when they have one (so an
//     int4:g32 model with an int8:g32 lm_head gives Q4_0 blocks and a Q8_0 output); otherwise
//     they are re-quantized to Q8_0 (nearly lossless for grids of up to 8 bits), with a warning;
//   - block tensors of a GGUF source (any type in ggml_blocks.h) are copied byte for byte
//     (likewise with an explicit type equal to theirs);
//   - float tensors are written as F16.
// The default (general.file_type) is the automatic type covering most weights of the blocks'
// linear layers: Q4_0 for int4:g32 models, Q8_0 for int8:g32 or other quantized grids, the
// stored type for GGUF sources, F16 for float models. Block types need a
// row length that is a multiple of their block (32, or 256 for the K-quants); other rows fall
// back as llama.cpp's quantizer does (with a warning): Q6_K -> Q8_0, Q5_K -> Q5_1,
// Q4_K -> Q5_0, Q3_K -> Q4_0, and a row that is not a multiple of 32 either -> F16.
//
// Encoding from fp32: Q4_0 / Q5_0 / Q8_0 / Q5_1 by plain rounding, K-quants and IQ4_NL by the
// block search (ggml_blocks.h), all of them weighted by calibration statistics with
// --method imatrix|gptq.
// Mixes (opt.mix), llama.cpp's "_M" file types for the llama architecture, with
// use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (integer division):
//   Q4_K_M (file type 15): Q4_K, except output (Q6_K) and attn_v / ffn_down of the layers
//     where use_more_bits (Q6_K);
//   Q5_K_M (17): the same with Q5_K in place of Q4_K;
//   Q3_K_M (12): Q3_K, except output (Q6_K), attn_v (Q5_K in layers 0 and 1, else Q4_K),
//     attn_output (Q4_K) and ffn_down (Q5_K in layers i < n/16, else Q4_K).
// token_embd gets the base type. opt.tensor_types (a bit allocation's plan, export/
// gguf_allocation.h) sets the wanted type of the tensors it names above all of these rules. (llama-quantize's "Q4_K" / "Q3_K" names are aliases of its _M
// mixes; here a plain type name means that type everywhere, as listed above.)
//
// Calibrated codes (opt.method imatrix / gptq, float sources only): the block codes of every
// linear (not token_embd) are chosen against calibration data, export/gguf_calibrated.h. It is
// an error when no linear gets a block type (nothing to calibrate) or a weight is not finite.
//
// RoPE: a RotateHalf source (HF) has the rows of q_proj and k_proj permuted within each head to
// the interleaved pairing GGUF llama files use: new row 2i <- old row i, new row 2i+1 <- old row
// i + head_dim/2 (i < head_dim/2). Quantized rows move with their scales (groups run along
// rows). Interleaved sources (llama2.c, GGUF) are written unpermuted.
//
// Tokenizer: tokenizer.ggml.* as export/gguf_vocab.h makes them: SentencePiece-style kinds as a
// "llama" vocabulary, byte-level BPE kinds (hf-bpe, tiktoken) as "gpt2" with llama.cpp's
// pre-tokenizer name and merges; a vocabulary shorter than the model's is padded with unused
// tokens. One llama.cpp would tokenize differently throws lowbit::Error("export", ...). Models
// with q/k/v biases are rejected ("... not supported yet"). All checks run before the file is
// opened; the file is written atomically (nothing is left behind on error).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/ggml_blocks.h"
#include "export/gguf_calibrated.h"
#include "io/model_source.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

// llama.cpp's mixed file types (see above).
enum class GgufMix { Q3_K_M, Q4_K_M, Q5_K_M };

struct GgufExportOptions {
  std::optional<GgmlType> type;  // nullopt: automatic (see above)
  std::optional<GgufMix> mix;    // a mix (see above); `type` is then ignored
  // Canonical name -> type, above the type / mix / automatic rule (a bit allocation's choices,
  // export/gguf_allocation.h); rows that are not whole blocks still fall back as above.
  std::map<std::string, GgmlType> tensor_types;
  std::string name;              // general.name; empty: the source path's file/directory name
  // Receives each warning line (without "\n"); default: printed on stderr.
  std::function<void(const std::string&)> warn;
  // How block codes are chosen for a float source (export/gguf_calibrated.h).
  GgufMethod method = GgufMethod::Plain;
  CalibrationOptions calibration;  // imatrix / gptq only
  CalibratedGgufEncoder::Progress progress;  // imatrix / gptq only: per layer step
};

struct GgufExportTensor {
  std::string name;  // GGUF name
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> shape;  // outermost first
  bool codes_kept = false;     // written from the source's codes without re-rounding
  bool requantized = false;    // a quantized source tensor dequantized and re-quantized
};

struct GgufExportReport {
  GgmlType file_type = GgmlType::F16;  // the mix's base type for a mix (Q4_K for Q4_K_M)
  std::string file_type_name;          // "F16", ..., "Q4_K_M"
  std::vector<GgufExportTensor> tensors;  // file order
  // Calibrated methods only: the calibration used and each linear's relative output error.
  int64_t calib_windows = 0, calib_window_len = 0;
  std::vector<CalibratedTensorReport> calibrated;
};

// Sets opt.type, or opt.mix for "Q3_K_M" / "Q4_K_M" / "Q5_K_M", from a --type value
// (case-insensitive). Throws lowbit::Error("export", "unknown --type '...' (expected ...)").
void parse_export_type(std::string_view s, GgufExportOptions& opt);

// The GGUF tensor name of a canonical one: "layers.3.q_proj" -> "blk.3.attn_q.weight",
// "embed_tokens" -> "token_embd.weight", "norm" -> "output_norm.weight", "lm_head" -> "output.weight".
std::string gguf_tensor_name(const std::string& canonical);

// llama.cpp's use_more_bits: the layers whose attn_v / ffn_down Q4_K_M stores as Q6_K.
bool q4_k_m_more_bits(int64_t layer, int64_t n_layers);

// The default type for `src` (see above).
GgmlType default_export_type(const ModelSource& src);

// The tensor plan (names, types, shapes) export_gguf would write, without writing anything.
GgufExportReport plan_gguf_export(const ModelSource& src, const GgufExportOptions& opt);

// The exact size of the file export_gguf would write (nothing is encoded). Throws as
// plan_gguf_export and for a vocabulary the export refuses.
int64_t gguf_export_size(const ModelSource& src, const Tokenizer& tok, const GgufExportOptions& opt);

// Writes `src` with tokenizer `tok` to out_path. Throws lowbit::Error("export", ...) on
// unsupported input (see above; a calibrated method needs a float source), before anything is
// written.
GgufExportReport export_gguf(const ModelSource& src, const Tokenizer& tok,
                             const GgufExportOptions& opt, const std::string& out_path);

}  // namespace lowbit
