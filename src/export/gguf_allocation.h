// Bit allocation for GGUF export (`lowbit export --format gguf --target-bpw B | --target-size S`):
// the measurement and knapsack of pipeline/bit_allocation.h with llama.cpp's block types as the
// candidates, so a llama.cpp user gets a per-tensor type plan (as EvoPress or llama.cpp's
// pending --target-bpw aim for) whose codes are chosen by --method (gptq by default).
//
// Candidates are type labels ("Q4_K", "IQ4_NL", "F16", ...). A type applies to a tensor when
// its block divides the row length (the K-quants need rows of 256). Linears are coded with
// encode_ggml_matrix(type, ..., method) and their calibration statistics; token_embd with the
// plain block search (as export_gguf writes it). A candidate's bytes are its row bytes plus an
// upper bound of its header entry and alignment; the final plan is then checked against the
// exact file size (gguf_export_size) and re-solved with a smaller budget until it fits.
#pragma once

#include <string>
#include <vector>

#include "export/gguf_export.h"
#include "pipeline/bit_allocation.h"

namespace lowbit {

// Q3_K, Q4_0, IQ4_NL, Q4_K, Q5_0, Q5_K, Q6_K, Q8_0 (and F16 for the embeddings).
std::vector<std::string> default_gguf_linear_candidates();
std::vector<std::string> default_gguf_embed_candidates();

// Throws lowbit::Error("export", ...) for an unknown type label.
CandidateCoder gguf_coder(GgufMethod method);

// Measurement options for a GGUF allocation with `method` (its recipe spelling names the method,
// so a .lowbit measurement is never reused for GGUF): candidates default as above.
MeasureOptions gguf_measure_options(GgufMethod method, std::vector<std::string> linear_candidates,
                                    std::vector<std::string> embed_candidates);

// Sets opt.tensor_types to the allocation for a file of at most target_bytes (exact size).
// Throws lowbit::Error("allocate", ...) when nothing fits.
Allocation allocate_gguf(const Measurement& m, const ModelSource& src, const Tokenizer& tok, int64_t target_bytes,
                         GgufExportOptions& opt);

}  // namespace lowbit
