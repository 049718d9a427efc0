// Model -> GGUF "llama" file that llama.cpp (and lowbit's own GGUF loader) runs.
// Layout and metadata: docs/FORMAT.md "GGUF export".
//
// Tensors (GGUF names; canonical names in io/model_source.h):
//   token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
//   ffn_up, ffn_down}, output_norm, output (absent when the embeddings are tied), all ".weight".
//
// Tensor types. Norms are always F32. With an explicit type T every other tensor is written as
// T, except that for the 4/5-bit types (Q4_0, Q5_0, Q4_K) the output projection gets Q6_K (or
// its exact Q8_0 codes), as llama-quantize does; a quantized (.lowbit) tensor whose grid is exactly T (exact_block_type in ggml_blocks.h)
// keeps its codes and fp16 scale bits, any other one is dequantized and re-quantized with plain
// rounding (one warning per tensor kind). Without a type (automatic):
//   - quantized tensors keep their codes in their exact block type when they have one (so an
//     int4:g32 model with an int8:g32 lm_head gives Q4_0 blocks and a Q8_0 output); otherwise
//     they are re-quantized to Q8_0 (nearly lossless for grids of up to 8 bits), with a warning;
//   - Q4_0 / Q8_0 tensors of a GGUF source are copied byte for byte (likewise with an explicit
//     type equal to theirs);
//   - float tensors are written as F16.
// The default (general.file_type) is the automatic type covering most weights of the blocks'
// linear layers: Q4_0 for int4:g32 models, Q8_0 for int8:g32 or other quantized grids, the
// stored type for Q4_0/Q8_0 GGUF sources, F16 for float models. Block types need a
// row length that is a multiple of their block (32, or 256 for the K-quants); other rows fall
// back as llama.cpp's quantizer does (with a warning): Q6_K -> Q8_0, Q4_K -> Q5_0, and a row
// that is not a multiple of 32 either -> F16.
//
// K-quants (Q6_K, Q4_K) are always encoded from fp32 (a .lowbit tensor is dequantized and its
// codes re-chosen by the K-quant search, ggml_blocks.h); a GGUF source's Q4_K/Q6_K/Q5_0 tensors
// of the same type are copied byte for byte.
//
// Q4_K_M (opt.q4_k_m): llama.cpp's "Q4_K - Medium" mix. Every 2-D tensor is Q4_K except
// output.weight (Q6_K) and attn_v / ffn_down of the layers i where use_more_bits(i, n_layers)
// (i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2; integer division) (Q6_K); token_embd is Q4_K.
// general.file_type 15 (MOSTLY_Q4_K_M).
//
// RoPE: a RotateHalf source (HF) has the rows of q_proj and k_proj permuted within each head to
// the interleaved pairing GGUF llama files use: new row 2i <- old row i, new row 2i+1 <- old row
// i + head_dim/2 (i < head_dim/2). Quantized rows move with their scales (groups run along
// rows). Interleaved sources (llama2.c, GGUF) are written unpermuted.
//
// Tokenizer: SentencePiece-style vocabularies (kinds sentencepiece, llama2c, gguf-llama) become
// tokenizer.ggml.* arrays; a vocabulary shorter than the model's is padded with unused pieces.
// Other kinds (HF byte-level BPE, tiktoken) throw lowbit::Error("export", "... not supported
// yet"). Models with q/k/v biases are rejected likewise. All checks run before the file is
// opened; the file is written atomically (nothing is left behind on error).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/ggml_blocks.h"
#include "io/model_source.h"
#include "tokenizer/spm_vocab.h"
#include "tokenizer/tokenizer.h"

namespace lowbit {

struct GgufExportOptions {
  std::optional<GgmlType> type;  // nullopt: automatic (see above)
  bool q4_k_m = false;           // llama.cpp's Q4_K_M mix (see above); `type` is then ignored
  std::string name;              // general.name; empty: the source path's file/directory name
  // Receives each warning line (without "\n"); default: printed on stderr.
  std::function<void(const std::string&)> warn;
};

struct GgufExportTensor {
  std::string name;  // GGUF name
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> shape;  // outermost first
  bool codes_kept = false;     // written from the source's codes without re-rounding
  bool requantized = false;    // a quantized source tensor dequantized and re-quantized
};

struct GgufExportReport {
  GgmlType file_type = GgmlType::F16;  // Q4_K for the Q4_K_M mix
  std::string file_type_name;          // "F16", ..., "Q4_K_M"
  std::vector<GgufExportTensor> tensors;  // file order
};

// Sets opt.type, or opt.q4_k_m for "Q4_K_M", from a --type value (case-insensitive). Throws
// lowbit::Error("export", "unknown --type '...' (expected ...)").
void parse_export_type(std::string_view s, GgufExportOptions& opt);

// llama.cpp's use_more_bits: the layers whose attn_v / ffn_down Q4_K_M stores as Q6_K.
bool q4_k_m_more_bits(int64_t layer, int64_t n_layers);

// The default type for `src` (see above).
GgmlType default_export_type(const ModelSource& src);

// The SentencePiece-style vocabulary of `tok`, padded with unused pieces to vocab_size. Throws
// lowbit::Error("export", ...) for tokenizer kinds that have none (origin names the model).
SpmVocab export_vocab(const Tokenizer& tok, int64_t vocab_size, const std::string& origin);

// The tensor plan (names, types, shapes) export_gguf would write, without writing anything.
GgufExportReport plan_gguf_export(const ModelSource& src, const GgufExportOptions& opt);

// Writes `src` with tokenizer `tok` to out_path. Throws lowbit::Error("export", ...) on
// unsupported input (see above), before anything is written.
GgufExportReport export_gguf(const ModelSource& src, const Tokenizer& tok,
                             const GgufExportOptions& opt, const std::string& out_path);

}  // namespace lowbit
