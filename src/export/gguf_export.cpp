#include "export/gguf_export.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "base/error.h"
#include "base/parallel.h"
#include "export/gguf_writer.h"
#include "tokenizer/blob_fields.h"
#include "tokenizer/llama2c_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/spm_vocab_json.h"

namespace lowbit {

namespace {

constexpr const char* kComp = "export";
constexpr uint32_t kQuantizationVersion = 2;  // general.quantization_version of quantized files
constexpr uint32_t kFileTypeQ4_K_M = 15;         // llama_ftype LLAMA_FTYPE_MOSTLY_Q4_K_M

// ---- names ----------------------------------------------------------------------------------

std::string gguf_tensor_name(const std::string& canonical) {
  static const std::map<std::string, std::string> layer = {
      {"attn_norm", "attn_norm"}, {"q_proj", "attn_q"},      {"k_proj", "attn_k"},
      {"v_proj", "attn_v"},       {"o_proj", "attn_output"}, {"ffn_norm", "ffn_norm"},
      {"gate_proj", "ffn_gate"},  {"up_proj", "ffn_up"},     {"down_proj", "ffn_down"},
  };
  if (canonical == "embed_tokens") return "token_embd.weight";
  if (canonical == "norm") return "output_norm.weight";
  if (canonical == "lm_head") return "output.weight";
  const size_t dot = canonical.rfind('.');
  LOWBIT_ASSERT(canonical.starts_with("layers.") && dot != std::string::npos);
  return "blk." + canonical.substr(7, dot - 7) + "." + layer.at(canonical.substr(dot + 1)) +
         ".weight";
}

// "q_proj" for "layers.3.q_proj", the name itself otherwise: the unit of warnings.
std::string tensor_kind(const std::string& canonical) {
  return canonical.starts_with("layers.") ? canonical.substr(canonical.rfind('.') + 1) : canonical;
}

std::string default_name(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string stem = p.stem().string();
  return stem.empty() ? "model" : stem;
}

// ---- RoPE row order -------------------------------------------------------------------------

// Rows of a q/k projection that must be reordered, with their head count; 0 when none.
int64_t rope_heads(const ModelSource& src, const std::string& canonical) {
  if (src.config.rope_style != RopeStyle::RotateHalf) return 0;
  if (canonical.ends_with(".q_proj")) return src.config.n_heads;
  if (canonical.ends_with(".k_proj")) return src.config.n_kv_heads;
  return 0;
}

// order[dst] = source row: within each head, dst 2i <- i and dst 2i+1 <- i + head_dim/2.
std::vector<int64_t> interleave_order(int64_t n_heads, int64_t head_dim) {
  std::vector<int64_t> order(static_cast<size_t>(n_heads * head_dim));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < half; ++i) {
      order[h * head_dim + 2 * i] = h * head_dim + i;
      order[h * head_dim + 2 * i + 1] = h * head_dim + i + half;
    }
  return order;
}

template <class T>
std::vector<T> permute_row_blocks(const std::vector<T>& v, int64_t row_len,
                                  const std::vector<int64_t>& order) {
  std::vector<T> out(v.size());
  for (size_t r = 0; r < order.size(); ++r)
    std::copy_n(v.begin() + order[r] * row_len, row_len, out.begin() + r * row_len);
  return out;
}

// A non-double-quantized matrix with its rows reordered (codes, scales and zeros together).
QuantizedMatrix permute_rows(const QuantizedMatrix& m, const std::vector<int64_t>& order) {
  LOWBIT_ASSERT(!m.spec.double_quant && static_cast<int64_t>(order.size()) == m.rows);
  QuantizedMatrix out = m;
  out.codes = permute_row_blocks(m.codes, m.row_code_bytes(), order);
  out.scales = permute_row_blocks(m.scales, m.groups_per_row(), order);
  if (!m.zeros.empty()) out.zeros = permute_row_blocks(m.zeros, m.groups_per_row(), order);
  return out;
}

// ---- tensor plan ----------------------------------------------------------------------------

struct Planned {
  GgufExportTensor out;
  std::string canonical;
};

struct Warner {
  const GgufExportOptions& opt;
  std::set<std::string> seen;
  void once(const std::string& kind, const std::string& msg) {
    if (!seen.insert(kind).second) return;
    if (opt.warn)
      opt.warn(msg);
    else
      std::fprintf(stderr, "[export] warning: %s\n", msg.c_str());
  }
};

// Q4_0 / Q8_0 for a plain view stored in that block type (a GGUF source), else nullopt.
std::optional<GgmlType> stored_block_type(const ModelSource& src, const std::string& canonical) {
  switch (src.tensor(canonical).dtype) {
    case DType::Q4_0: return GgmlType::Q4_0;
    case DType::Q5_0: return GgmlType::Q5_0;
    case DType::Q8_0: return GgmlType::Q8_0;
    case DType::Q4_K: return GgmlType::Q4_K;
    case DType::Q6_K: return GgmlType::Q6_K;
    default: return std::nullopt;
  }
}

// How a 2-D tensor is stored in the source: "int4:g32", "Q4_0", "F16", ...
std::string source_format(const ModelSource& src, const std::string& canonical) {
  auto q = src.quantized.find(canonical);
  return q != src.quantized.end() ? q->second.spec.to_string()
                                  : dtype_name(src.tensor(canonical).dtype);
}

// The block type whose bytes a 2-D tensor can be copied into without re-rounding, if any.
std::optional<GgmlType> exact_type(const ModelSource& src, const std::string& canonical) {
  auto q = src.quantized.find(canonical);
  return q != src.quantized.end() ? exact_block_type(q->second.spec, q->second.cols)
                                  : stored_block_type(src, canonical);
}

// The automatic type of a 2-D tensor (before the row-length fallback): its exact block type,
// Q8_0 for other quantized grids, F16 for float storage.
GgmlType auto_type(const ModelSource& src, const std::string& canonical) {
  if (const std::optional<GgmlType> exact = exact_type(src, canonical)) return *exact;
  return src.quantized.count(canonical) ? GgmlType::Q8_0 : GgmlType::F16;
}

bool is_k_quant(GgmlType t) { return t == GgmlType::Q4_K || t == GgmlType::Q6_K; }

// Layer index of "layers.N.x", -1 otherwise.
int64_t layer_index(const std::string& canonical) {
  if (!canonical.starts_with("layers.")) return -1;
  return std::stoll(canonical.substr(7, canonical.find('.', 7) - 7));
}

// The Q4_K_M mix's type for a 2-D tensor (see gguf_export.h).
GgmlType q4_k_m_type(const ModelSource& src, const std::string& canonical) {
  if (canonical == "lm_head") return GgmlType::Q6_K;
  const std::string kind = tensor_kind(canonical);
  if ((kind == "v_proj" || kind == "down_proj") &&
      q4_k_m_more_bits(layer_index(canonical), src.config.n_layers))
    return GgmlType::Q6_K;
  return GgmlType::Q4_K;
}

// llama.cpp's fallback for rows that are not whole blocks: Q6_K -> Q8_0, Q4_K -> Q5_0, then F16.
GgmlType row_fallback(GgmlType t, int64_t cols) {
  if (cols % ggml_block_elems(t) == 0) return t;
  if (t == GgmlType::Q6_K) return row_fallback(GgmlType::Q8_0, cols);
  if (t == GgmlType::Q4_K) return row_fallback(GgmlType::Q5_0, cols);
  return GgmlType::F16;
}

// The type a tensor gets under an explicit --type. As llama-quantize does for its 4/5-bit types,
// the output projection (the most sensitive matrix) is not pushed below 6 bits: Q6_K, or the
// source's exact Q8_0 codes when it has them.
GgmlType requested_type(GgmlType type, const std::string& canonical, std::optional<GgmlType> exact) {
  const bool low_bit = type == GgmlType::Q4_0 || type == GgmlType::Q5_0 || type == GgmlType::Q4_K;
  if (canonical != "lm_head" || !low_bit) return type;
  return exact == GgmlType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q6_K;
}

GgufExportTensor plan_tensor(const ModelSource& src, const std::string& canonical,
                             const GgufExportOptions& opt, Warner& warner) {
  GgufExportTensor t{gguf_tensor_name(canonical), GgmlType::F32, src.shape(canonical)};
  if (t.shape.size() == 1) return t;  // norms
  const std::optional<GgmlType> exact = exact_type(src, canonical);
  const GgmlType wanted = opt.q4_k_m ? q4_k_m_type(src, canonical)
                         : opt.type ? requested_type(*opt.type, canonical, exact)
                                    : auto_type(src, canonical);
  const std::string kind = tensor_kind(canonical);
  t.type = row_fallback(wanted, t.shape[1]);
  if (t.type != wanted)
    warner.once(kind + "/rows/" + ggml_type_label(wanted),
                kind + ": row length " + std::to_string(t.shape[1]) + " is not a multiple of " +
                    std::to_string(ggml_block_elems(wanted)) + "; written as " +
                    ggml_type_label(t.type) + " instead of " + ggml_type_label(wanted));
  if (exact && *exact == t.type) {
    t.codes_kept = true;
    return t;
  }
  t.requantized = (exact || src.quantized.count(canonical)) && t.type != GgmlType::F32;
  if (t.requantized)
    warner.once(kind + "/" + ggml_type_label(t.type),
                kind + ": " + source_format(src, canonical) + " is not exactly " +
                    ggml_type_label(t.type) + "; dequantized and re-quantized (" +
                    (is_k_quant(t.type) ? "K-quant codes and scales re-chosen" : "plain rounding") +
                    ")");
  return t;
}

void check_exportable(const ModelSource& src) {
  if (src.config.attention_bias)
    throw Error(kComp, src.path + ": q/k/v biases (" + src.config.architecture +
                           ") are not supported by the GGUF llama export yet");
  check_canonical_tensors(src);
}

std::vector<Planned> plan_all(const ModelSource& src, const GgufExportOptions& opt) {
  check_exportable(src);
  Warner warner{opt, {}};
  std::vector<Planned> plan;
  for (const auto& [canonical, shape] : canonical_tensor_shapes(src.config))
    plan.push_back({plan_tensor(src, canonical, opt, warner), canonical});
  return plan;
}

// ---- tensor bytes ---------------------------------------------------------------------------

std::vector<float> tensor_values(const ModelSource& src, const std::string& canonical) {
  auto q = src.quantized.find(canonical);
  return q != src.quantized.end() ? dequantize(q->second) : to_f32(src.tensor(canonical));
}

std::vector<uint8_t> encode_rows(int64_t rows, int64_t row_bytes,
                                 const std::function<void(int64_t, uint8_t*)>& encode_row) {
  std::vector<uint8_t> out(static_cast<size_t>(rows * row_bytes));
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) encode_row(r, out.data() + r * row_bytes);
  });
  return out;
}

std::vector<uint8_t> exact_bytes(const ModelSource& src, const Planned& p) {
  if (!src.quantized.count(p.canonical)) {  // GGUF Q4_0/Q8_0 view: already interleaved
    LOWBIT_ASSERT(rope_heads(src, p.canonical) == 0);
    const TensorView& v = src.tensor(p.canonical);
    return std::vector<uint8_t>(v.data, v.data + v.nbytes);
  }
  const QuantizedMatrix& m0 = src.quantized.at(p.canonical);
  const int64_t heads = rope_heads(src, p.canonical);
  const QuantizedMatrix m =
      heads ? permute_rows(m0, interleave_order(heads, src.config.head_dim)) : m0;
  return encode_rows(m.rows, ggml_row_bytes(p.out.type, m.cols),
                     [&](int64_t r, uint8_t* out) { encode_ggml_row_exact(m, r, out); });
}

std::vector<uint8_t> float_bytes(const ModelSource& src, const Planned& p) {
  std::vector<float> v = tensor_values(src, p.canonical);
  const int64_t cols = p.out.shape.back();
  const int64_t rows = static_cast<int64_t>(v.size()) / cols;
  if (const int64_t heads = rope_heads(src, p.canonical))
    v = permute_row_blocks(v, cols, interleave_order(heads, src.config.head_dim));
  if (p.out.type != GgmlType::F32 && p.out.type != GgmlType::F16)
    for (float x : v)
      if (!std::isfinite(x))
        throw Error(kComp, src.path + ": tensor '" + p.canonical + "' has a non-finite value");
  return encode_rows(rows, ggml_row_bytes(p.out.type, cols), [&](int64_t r, uint8_t* out) {
    encode_ggml_row(p.out.type, v.data() + r * cols, cols, out);
  });
}

// ---- metadata -------------------------------------------------------------------------------

void add_model_metadata(GgufWriter& w, const ModelSource& src, const GgufExportOptions& opt,
                        GgmlType file_type) {
  const bool quantized = file_type != GgmlType::F32 && file_type != GgmlType::F16;
  const LlamaConfig& c = src.config;
  auto u32 = [](int64_t v) { return GgufMeta::u32(static_cast<uint32_t>(v)); };
  w.add("general.architecture", GgufMeta::string("llama"));
  w.add("general.name", GgufMeta::string(opt.name.empty() ? default_name(src.path) : opt.name));
  w.add("general.file_type",
        GgufMeta::u32(opt.q4_k_m ? kFileTypeQ4_K_M : ggml_file_type(file_type)));
  if (quantized)
    w.add("general.quantization_version", GgufMeta::u32(kQuantizationVersion));
  w.add("llama.vocab_size", u32(c.vocab_size));
  w.add("llama.context_length", u32(c.max_seq_len));
  w.add("llama.embedding_length", u32(c.dim));
  w.add("llama.block_count", u32(c.n_layers));
  w.add("llama.feed_forward_length", u32(c.hidden_dim));
  w.add("llama.rope.dimension_count", u32(c.head_dim));
  w.add("llama.attention.head_count", u32(c.n_heads));
  w.add("llama.attention.head_count_kv", u32(c.n_kv_heads));
  w.add("llama.attention.key_length", u32(c.head_dim));
  w.add("llama.attention.value_length", u32(c.head_dim));
  w.add("llama.attention.layer_norm_rms_epsilon", GgufMeta::f32(c.norm_eps));
  w.add("llama.rope.freq_base", GgufMeta::f32(c.rope_theta));
}

void add_tokenizer_metadata(GgufWriter& w, const SpmVocab& v) {
  w.add("tokenizer.ggml.model", GgufMeta::string("llama"));
  w.add("tokenizer.ggml.tokens", GgufMeta::strings(v.pieces));
  w.add("tokenizer.ggml.scores", GgufMeta::f32s(v.scores));
  w.add("tokenizer.ggml.token_type", GgufMeta::i32s(v.types));
  if (v.bos_id >= 0) w.add("tokenizer.ggml.bos_token_id", GgufMeta::u32(v.bos_id));
  if (v.eos_id >= 0) w.add("tokenizer.ggml.eos_token_id", GgufMeta::u32(v.eos_id));
  if (v.unk_id >= 0) w.add("tokenizer.ggml.unknown_token_id", GgufMeta::u32(v.unk_id));
  w.add("tokenizer.ggml.add_bos_token", GgufMeta::boolean(v.bos_id >= 0));
  w.add("tokenizer.ggml.add_eos_token", GgufMeta::boolean(false));
  w.add("tokenizer.ggml.add_space_prefix", GgufMeta::boolean(v.add_dummy_prefix));
}

SpmVocab vocab_of_blob(const TokenizerBlob& blob, const std::string& origin) {
  if (blob.kind == "sentencepiece") return sentencepiece_vocab_from_bytes(blob.bytes, origin);
  if (blob.kind == "spm-vocab") return spm_vocab_from_json(blob.bytes, origin).vocab;
  if (blob.kind == "llama2c") {
    int32_t vocab_size = 0;
    const std::string_view file = split_blob_fields(blob.bytes, {&vocab_size, 1}, origin);
    return parse_llama2c_vocab(file, vocab_size, origin);
  }
  throw Error(kComp, origin + ": a '" + blob.kind +
                         "' tokenizer cannot be written to GGUF, not supported yet (only "
                         "SentencePiece-style vocabularies: sentencepiece, llama2c, gguf-llama); "
                         "pass --tokenizer with a SentencePiece tokenizer.model");
}

}  // namespace

void parse_export_type(std::string_view s, GgufExportOptions& opt) {
  std::string up(s);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "Q4_K_M") {
    opt.q4_k_m = true;
    opt.type.reset();
    return;
  }
  try {
    opt.type = parse_ggml_type(s);
    opt.q4_k_m = false;
  } catch (const Error&) {
    throw Error(kComp, "unknown --type '" + std::string(s) +
                           "' (expected F32, F16, Q8_0, Q5_0, Q4_0, Q6_K, Q4_K or Q4_K_M)");
  }
}

bool q4_k_m_more_bits(int64_t layer, int64_t n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

GgmlType default_export_type(const ModelSource& src) {
  std::map<GgmlType, int64_t> weights;  // automatic type -> weights of the blocks' linears
  for (const auto& [name, shape] : canonical_tensor_shapes(src.config))
    if (name.starts_with("layers.") && shape.size() == 2 && src.has(name))
      weights[auto_type(src, name)] += shape[0] * shape[1];
  GgmlType best = GgmlType::F16;
  int64_t most = 0;
  for (const auto& [type, n] : weights)
    if (n > most) most = n, best = type;
  return best;
}

SpmVocab export_vocab(const Tokenizer& tok, int64_t vocab_size, const std::string& origin) {
  SpmVocab v = vocab_of_blob(tok.to_blob(), origin + ": tokenizer");
  if (static_cast<int64_t>(v.pieces.size()) > vocab_size)
    throw Error(kComp, origin + ": the tokenizer has " + std::to_string(v.pieces.size()) +
                           " pieces but the model only " + std::to_string(vocab_size));
  for (int64_t i = static_cast<int64_t>(v.pieces.size()); i < vocab_size; ++i) {
    v.pieces.push_back("<unused" + std::to_string(i) + ">");
    v.scores.push_back(0.0f);
    v.types.push_back(kTokenUnused);
  }
  return v;
}

GgufExportReport plan_gguf_export(const ModelSource& src, const GgufExportOptions& opt) {
  GgufExportReport r;
  r.file_type = opt.q4_k_m ? GgmlType::Q4_K : opt.type ? *opt.type : default_export_type(src);
  r.file_type_name = opt.q4_k_m ? "Q4_K_M" : ggml_type_label(r.file_type);
  for (Planned& p : plan_all(src, opt)) r.tensors.push_back(std::move(p.out));
  return r;
}

GgufExportReport export_gguf(const ModelSource& src, const Tokenizer& tok,
                             const GgufExportOptions& opt, const std::string& out_path) {
  GgufExportReport r;
  r.file_type = opt.q4_k_m ? GgmlType::Q4_K : opt.type ? *opt.type : default_export_type(src);
  r.file_type_name = opt.q4_k_m ? "Q4_K_M" : ggml_type_label(r.file_type);
  const std::vector<Planned> plan = plan_all(src, opt);
  const SpmVocab vocab = export_vocab(tok, src.config.vocab_size, src.path);
  GgufWriter w;
  add_model_metadata(w, src, opt, r.file_type);
  add_tokenizer_metadata(w, vocab);
  for (const Planned& p : plan) {
    w.add_tensor(p.out.name, p.out.type, p.out.shape, [&src, &p] {
      return p.out.codes_kept ? exact_bytes(src, p) : float_bytes(src, p);
    });
    r.tensors.push_back(p.out);
  }
  w.write(out_path);
  return r;
}

}  // namespace lowbit
