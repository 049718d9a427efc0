#include "export/gguf_export.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "base/error.h"
#include "base/parallel.h"
#include "export/gguf_vocab.h"
#include "export/gguf_writer.h"
#include "io/ggml_quants.h"

namespace lowbit {

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

namespace {

constexpr const char* kComp = "export";
constexpr uint32_t kQuantizationVersion = 2;  // general.quantization_version of quantized files

// ---- names ----------------------------------------------------------------------------------


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

// The block type a plain view is stored in (a GGUF source's quantized tensor), else nullopt.
std::optional<GgmlType> stored_block_type(const ModelSource& src, const std::string& canonical) {
  const DType d = src.tensor(canonical).dtype;
  return is_ggml_block_type(d) ? ggml_type_of(d) : std::nullopt;
}

// Whether the source already stores a tensor quantized: a .lowbit grid or any GGUF block type,
// including those lowbit reads but never writes (Q2_K, IQ4_XS, TQ1_0, TQ2_0), which have no
// exact export type.
bool source_quantized(const ModelSource& src, const std::string& canonical) {
  return src.quantized.count(canonical) || is_ggml_block_type(src.tensor(canonical).dtype);
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
  return source_quantized(src, canonical) ? GgmlType::Q8_0 : GgmlType::F16;
}

// Encoded by a search (not plain rounding) when re-quantized.
bool is_searched_type(GgmlType t) {
  return t == GgmlType::Q3_K || t == GgmlType::Q4_K || t == GgmlType::Q5_K || t == GgmlType::Q6_K ||
         t == GgmlType::IQ4_NL;
}

// Layer index of "layers.N.x", -1 otherwise.
int64_t layer_index(const std::string& canonical) {
  if (!canonical.starts_with("layers.")) return -1;
  return std::stoll(canonical.substr(7, canonical.find('.', 7) - 7));
}

GgmlType mix_base_type(GgufMix mix) {
  switch (mix) {
    case GgufMix::Q3_K_M: return GgmlType::Q3_K;
    case GgufMix::Q4_K_M: return GgmlType::Q4_K;
    case GgufMix::Q5_K_M: return GgmlType::Q5_K;
  }
  return GgmlType::Q4_K;
}

const char* mix_name(GgufMix mix) {
  switch (mix) {
    case GgufMix::Q3_K_M: return "Q3_K_M";
    case GgufMix::Q4_K_M: return "Q4_K_M";
    case GgufMix::Q5_K_M: return "Q5_K_M";
  }
  return "?";
}

// llama_ftype numbers of the mixes.
uint32_t mix_file_type(GgufMix mix) {
  switch (mix) {
    case GgufMix::Q3_K_M: return 12;
    case GgufMix::Q4_K_M: return 15;
    case GgufMix::Q5_K_M: return 17;
  }
  return 0;
}

// The tensor llama.cpp treats as the output projection: output.weight, or token_embd when the
// embeddings are tied (then it is both).
bool is_output(const ModelSource& src, const std::string& canonical) {
  return canonical == "lm_head" || (canonical == "embed_tokens" && src.config.tie_embeddings);
}

// A mix's type for a 2-D tensor (see gguf_export.h).
GgmlType mix_type(GgufMix mix, const ModelSource& src, const std::string& canonical) {
  if (is_output(src, canonical)) return GgmlType::Q6_K;
  const std::string kind = tensor_kind(canonical);
  const int64_t layer = layer_index(canonical), n = src.config.n_layers;
  if (mix == GgufMix::Q3_K_M) {
    if (kind == "v_proj") return layer < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
    if (kind == "down_proj") return layer < n / 16 ? GgmlType::Q5_K : GgmlType::Q4_K;
    if (kind == "o_proj") return GgmlType::Q4_K;
    return GgmlType::Q3_K;
  }
  if ((kind == "v_proj" || kind == "down_proj") && q4_k_m_more_bits(layer, n)) return GgmlType::Q6_K;
  return mix_base_type(mix);
}

// llama.cpp's fallback for rows that are not whole blocks: Q6_K -> Q8_0, Q5_K -> Q5_1,
// Q4_K -> Q5_0, Q3_K -> Q4_0, then F16.
GgmlType row_fallback(GgmlType t, int64_t cols) {
  if (cols % ggml_block_elems(t) == 0) return t;
  if (t == GgmlType::Q6_K) return row_fallback(GgmlType::Q8_0, cols);
  if (t == GgmlType::Q5_K) return row_fallback(GgmlType::Q5_1, cols);
  if (t == GgmlType::Q4_K) return row_fallback(GgmlType::Q5_0, cols);
  if (t == GgmlType::Q3_K) return row_fallback(GgmlType::Q4_0, cols);
  return GgmlType::F16;
}

// The type a tensor gets under an explicit --type. As llama-quantize does for its types below
// 6 bits, the output projection (the most sensitive matrix) is not pushed below 6 bits: Q6_K,
// or the source's exact Q8_0 codes when it has them.
GgmlType requested_type(GgmlType type, bool output, std::optional<GgmlType> exact) {
  const bool low_bit = is_block_type(type) && type != GgmlType::Q8_0 && type != GgmlType::Q6_K;
  if (!output || !low_bit) return type;
  return exact == GgmlType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q6_K;
}

GgufExportTensor plan_tensor(const ModelSource& src, const std::string& canonical,
                             const GgufExportOptions& opt, Warner& warner) {
  GgufExportTensor t{gguf_tensor_name(canonical), GgmlType::F32, src.shape(canonical)};
  if (t.shape.size() == 1) return t;  // norms
  const std::optional<GgmlType> exact = exact_type(src, canonical);
  const auto assigned = opt.tensor_types.find(canonical);
  const GgmlType wanted = assigned != opt.tensor_types.end() ? assigned->second
                          : opt.mix ? mix_type(*opt.mix, src, canonical)
                          : opt.type ? requested_type(*opt.type, is_output(src, canonical), exact)
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
  t.requantized = source_quantized(src, canonical) && t.type != GgmlType::F32;
  if (t.requantized)
    warner.once(kind + "/" + ggml_type_label(t.type),
                kind + ": " + source_format(src, canonical) + " is not exactly " +
                    ggml_type_label(t.type) + "; dequantized and re-quantized (" +
                    (is_searched_type(t.type) ? "codes and scales re-chosen by the block search" : "plain rounding") +
                    ")");
  return t;
}

void check_exportable(const ModelSource& src) {
  if (!src.corrections.empty())
    throw Error(kComp, src.path + ": '" + src.corrections.begin()->first + "' carries a low-rank error correction (recipe ':lr'), "
                                  "which llama.cpp's block types cannot hold; export a model quantized without ':lr'");
  if (!src.input_hadamard.empty())
    throw Error(kComp, src.path + ": its down_proj inputs are rotated at run time (recipe ':had'), which llama.cpp "
                                  "cannot do; export a model quantized without ':had'");
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
      heads ? permute_rows(m0, rope_interleave_order(heads, src.config.head_dim)) : m0;
  return encode_rows(m.rows, ggml_row_bytes(p.out.type, m.cols),
                     [&](int64_t r, uint8_t* out) { encode_ggml_row_exact(m, r, out); });
}

std::vector<uint8_t> float_bytes(const ModelSource& src, const Planned& p) {
  std::vector<float> v = tensor_values(src, p.canonical);
  const int64_t cols = p.out.shape.back();
  const int64_t rows = static_cast<int64_t>(v.size()) / cols;
  if (const int64_t heads = rope_heads(src, p.canonical))
    v = permute_row_blocks(v, cols, rope_interleave_order(heads, src.config.head_dim));
  if (is_block_type(p.out.type))
    for (float x : v)
      if (!std::isfinite(x))
        throw Error(kComp, src.path + ": tensor '" + p.canonical + "' has a non-finite value");
  return encode_rows(rows, ggml_row_bytes(p.out.type, cols), [&](int64_t r, uint8_t* out) {
    encode_ggml_row(p.out.type, v.data() + r * cols, cols, out);
  });
}

// The linears whose codes a calibrated method chooses (token_embd is a lookup table: its
// "inputs" are one-hot, so it keeps the plain search).
bool is_calibrated_linear(const std::string& canonical) {
  return canonical == "lm_head" || (canonical.starts_with("layers.") && canonical.ends_with("_proj"));
}

void check_float_source(const ModelSource& src, GgufMethod method) {
  for (const auto& [canonical, shape] : canonical_tensor_shapes(src.config)) {
    if (!is_calibrated_linear(canonical) || !src.has(canonical)) continue;
    const bool quantized = source_quantized(src, canonical);
    if (quantized)
      throw Error(kComp, src.path + ": --method " + gguf_method_name(method) +
                             " chooses codes from the original weights, but '" + canonical +
                             "' is already quantized (" + source_format(src, canonical) +
                             "); export from the float model");
  }
}

std::vector<uint8_t> calibrated_bytes(const ModelSource& src, const Planned& p, CalibratedGgufEncoder& enc) {
  std::vector<uint8_t> bytes = enc.bytes(p.canonical);
  if (const int64_t heads = rope_heads(src, p.canonical))
    bytes = permute_row_blocks(bytes, ggml_row_bytes(p.out.type, p.out.shape[1]),
                               rope_interleave_order(heads, src.config.head_dim));
  return bytes;
}

// The type covering most weights of the blocks' linears, each typed by type_of(canonical name).
GgmlType type_of_most_block_weights(const ModelSource& src, const std::function<GgmlType(const std::string&)>& type_of) {
  std::map<GgmlType, int64_t> weights;
  for (const auto& [name, shape] : canonical_tensor_shapes(src.config))
    if (name.starts_with("layers.") && shape.size() == 2 && src.has(name)) weights[type_of(name)] += shape[0] * shape[1];
  GgmlType best = GgmlType::F16;
  int64_t most = 0;
  for (const auto& [type, n] : weights)
    if (n > most) most = n, best = type;
  return best;
}

// general.file_type: the mix's base type, the explicit type, the type most block weights get from
// tensor_types (a bit allocation), or the automatic one.
GgmlType report_file_type(const ModelSource& src, const GgufExportOptions& opt) {
  if (opt.mix) return mix_base_type(*opt.mix);
  if (opt.type) return *opt.type;
  if (!opt.tensor_types.empty())
    return type_of_most_block_weights(src, [&](const std::string& name) {
      const auto t = opt.tensor_types.find(name);
      return t != opt.tensor_types.end() ? row_fallback(t->second, src.shape(name)[1]) : auto_type(src, name);
    });
  return default_export_type(src);
}

GgufExportReport report_header(const ModelSource& src, const GgufExportOptions& opt) {
  GgufExportReport r;
  r.file_type = report_file_type(src, opt);
  r.file_type_name = opt.mix ? mix_name(*opt.mix) : ggml_type_label(r.file_type);
  return r;
}

// ---- metadata -------------------------------------------------------------------------------

void add_model_metadata(GgufWriter& w, const ModelSource& src, const GgufExportOptions& opt,
                        GgmlType file_type) {
  const bool quantized = is_block_type(file_type);
  const LlamaConfig& c = src.config;
  auto u32 = [](int64_t v) { return GgufMeta::u32(static_cast<uint32_t>(v)); };
  w.add("general.architecture", GgufMeta::string("llama"));
  w.add("general.name", GgufMeta::string(opt.name.empty() ? default_name(src.path) : opt.name));
  w.add("general.file_type",
        GgufMeta::u32(opt.mix ? mix_file_type(*opt.mix) : ggml_file_type(file_type)));
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

}  // namespace

void parse_export_type(std::string_view s, GgufExportOptions& opt) {
  std::string up(s);
  for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (GgufMix mix : {GgufMix::Q3_K_M, GgufMix::Q4_K_M, GgufMix::Q5_K_M})
    if (up == mix_name(mix)) {
      opt.mix = mix;
      opt.type.reset();
      return;
    }
  try {
    opt.type = parse_ggml_type(s);
    opt.mix.reset();
  } catch (const Error&) {
    throw Error(kComp, "unknown --type '" + std::string(s) + "' (expected " +
                           ggml_type_list({"Q3_K_M", "Q4_K_M", "Q5_K_M"}) + ")");
  }
}

bool q4_k_m_more_bits(int64_t layer, int64_t n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

GgmlType default_export_type(const ModelSource& src) {
  return type_of_most_block_weights(src, [&](const std::string& name) { return auto_type(src, name); });
}

GgufExportReport plan_gguf_export(const ModelSource& src, const GgufExportOptions& opt) {
  GgufExportReport r = report_header(src, opt);
  for (Planned& p : plan_all(src, opt)) r.tensors.push_back(std::move(p.out));
  return r;
}

int64_t gguf_export_size(const ModelSource& src, const Tokenizer& tok, const GgufExportOptions& opt) {
  const GgufExportReport r = report_header(src, opt);
  GgufExportOptions quiet = opt;
  quiet.warn = [](const std::string&) {};
  const std::vector<Planned> plan = plan_all(src, quiet);
  GgufWriter w;
  add_model_metadata(w, src, opt, r.file_type);
  add_tokenizer_metadata(w, gguf_vocab_of(tok, src.config.vocab_size, src.path));
  for (const Planned& p : plan) w.add_tensor(p.out.name, p.out.type, p.out.shape, [] { return std::vector<uint8_t>{}; });
  return static_cast<int64_t>(w.file_size());
}

GgufExportReport export_gguf(const ModelSource& src, const Tokenizer& tok,
                             const GgufExportOptions& opt, const std::string& out_path) {
  GgufExportReport r = report_header(src, opt);
  const std::vector<Planned> plan = plan_all(src, opt);
  const GgufVocab vocab = gguf_vocab_of(tok, src.config.vocab_size, src.path);
  std::unique_ptr<CalibratedGgufEncoder> calibrated;
  if (opt.method != GgufMethod::Plain) {
    check_float_source(src, opt.method);
    std::map<std::string, GgmlType> types;
    bool any_block = false;
    for (const Planned& p : plan)
      if (is_calibrated_linear(p.canonical)) {
        types[p.canonical] = p.out.type;
        any_block |= is_block_type(p.out.type);
      }
    if (!any_block)
      throw Error(kComp, src.path + ": --method " + gguf_method_name(opt.method) +
                             " chooses quantized block codes, but every linear would be written as " +
                             r.file_type_name + "; give a block --type such as Q4_K_M");
    calibrated = std::make_unique<CalibratedGgufEncoder>(src, tok, opt.method, opt.calibration,
                                                         std::move(types), opt.progress);
    r.calib_windows = calibrated->calibration_windows();
    r.calib_window_len = calibrated->calibration_window_len();
  }
  GgufWriter w;
  add_model_metadata(w, src, opt, r.file_type);
  add_tokenizer_metadata(w, vocab);
  for (const Planned& p : plan) {
    CalibratedGgufEncoder* enc = is_calibrated_linear(p.canonical) ? calibrated.get() : nullptr;
    w.add_tensor(p.out.name, p.out.type, p.out.shape, [&src, &p, enc] {
      if (enc) return calibrated_bytes(src, p, *enc);
      return p.out.codes_kept ? exact_bytes(src, p) : float_bytes(src, p);
    });
    r.tensors.push_back(p.out);
  }
  w.write(out_path);
  if (calibrated) r.calibrated = calibrated->reports();
  return r;
}

}  // namespace lowbit
