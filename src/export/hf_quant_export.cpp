#include "export/hf_quant_export.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/half.h"
#include "base/mapped_file.h"
#include "io/lowbit_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* kLinears[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                    "gate_proj", "up_proj", "down_proj"};

std::string hf_module(int64_t layer, const std::string& p) {
  return "model.layers." + std::to_string(layer) +
         (p == "gate_proj" || p == "up_proj" || p == "down_proj" ? ".mlp." : ".self_attn.") + p;
}

// Row permutation that brings interleaved q/k rows into HF's rotate-half order (identity when
// the source already is rotate-half or the tensor is not q/k).
std::vector<int64_t> hf_row_order(const ModelSource& src, const std::string& canonical,
                                  int64_t rows) {
  std::vector<int64_t> perm(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) perm[r] = r;
  const bool qk = canonical.ends_with("q_proj") || canonical.ends_with("k_proj");
  if (!qk || src.config.rope_style == RopeStyle::RotateHalf) return perm;
  const int64_t hd = src.config.head_dim, half = hd / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r - r % hd, j = r % hd;
    perm[r] = base + (j < half ? 2 * j : 2 * (j - half) + 1);
  }
  return perm;
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

QuantizedMatrix permute_rows(const QuantizedMatrix& m, const std::vector<int64_t>& perm) {
  QuantizedMatrix out = m;
  const int64_t cb = m.row_code_bytes(), g = m.groups_per_row();
  for (int64_t r = 0; r < m.rows; ++r) {
    const int64_t s = perm[r];
    std::memcpy(&out.codes[r * cb], &m.codes[s * cb], static_cast<size_t>(cb));
    std::memcpy(&out.scales[r * g], &m.scales[s * g], static_cast<size_t>(g) * 2);
    if (m.spec.asym) std::memcpy(&out.zeros[r * g], &m.zeros[s * g], static_cast<size_t>(g));
  }
  return out;
}

bool is_compressed_tensors(HfQuantFormat f) {
  return f == HfQuantFormat::CompressedTensors || f == HfQuantFormat::CompressedTensorsW8A8;
}

// The Linears of the blocks and how they are written.
struct LinearPlan {
  std::string canonical, module;
  const QuantizedMatrix* matrix = nullptr;  // null: float (compressed-tensors "ignore")
};

std::vector<LinearPlan> plan_linears(const ModelSource& src, HfQuantFormat f) {
  std::vector<LinearPlan> out;
  const std::string fmt = hf_quant_format_name(f);
  for (int64_t i = 0; i < src.config.n_layers; ++i)
    for (const char* p : kLinears) {
      LinearPlan l{"layers." + std::to_string(i) + "." + p, hf_module(i, p)};
      auto q = src.quantized.find(l.canonical);
      if (q == src.quantized.end()) {
        if (!is_compressed_tensors(f))
          throw Error("export",
                      src.path + ": " + l.canonical + " is not quantized; " + fmt +
                          " checkpoints need every block Linear quantized (a .lowbit model)");
      } else {
        const std::string why = hf_quant_unsupported_reason(f, q->second);
        if (!why.empty()) throw Error("export", src.path + ": " + l.canonical + ": " + why);
        l.matrix = &q->second;
      }
      out.push_back(l);
    }
  if (is_compressed_tensors(f)) {
    for (const LinearPlan& l : out)
      if (l.matrix) return out;
    throw Error("export", src.path + ": no block Linear is quantized; nothing to write as " + fmt +
                              " (quantize first: lowbit quantize)");
  }
  const QuantSpec& first = out.front().matrix->spec;
  for (const LinearPlan& l : out) {
    const QuantSpec& s = l.matrix->spec;
    if (s.bits != first.bits || s.group != first.group)
      throw Error(
          "export",
          src.path + ": " + l.canonical + " is " + s.to_string() + " but " + out.front().canonical +
              " is " + first.to_string() + "; " + fmt +
              " has one bit width and group size per model (use --format compressed-tensors)");
  }
  return out;
}

// Shortest decimal that reads back as the same float (1e-05, not 9.99999974737875e-06).
double clean_float(float v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::stod(std::string(buf, r.ptr));
}

json ct_scheme_json(const QuantSpec& s) {
  json w = {{"num_bits", s.bits},
            {"type", "int"},
            {"symmetric", !s.asym},
            {"group_size", s.group > 0 ? json(s.group) : json(nullptr)},
            {"strategy", s.group > 0 ? "group" : "channel"},
            {"dynamic", false},
            {"actorder", nullptr},
            {"observer", "minmax"},
            {"block_structure", nullptr}};
  return w;
}

json quantization_config(HfQuantFormat f, const std::vector<LinearPlan>& lin) {
  bool all_sym = true;
  for (const LinearPlan& l : lin) all_sym = all_sym && (!l.matrix || !l.matrix->spec.asym);
  if (f == HfQuantFormat::Gptq) {
    const QuantSpec& s = lin.front().matrix->spec;
    return {{"quant_method", "gptq"},
            {"bits", s.bits},
            {"group_size", s.group > 0 ? s.group : -1},
            {"desc_act", false},
            {"sym", all_sym},
            {"static_groups", false},
            {"true_sequential", true},
            {"lm_head", false},
            {"checkpoint_format", "gptq"},
            {"meta", {{"quantizer", {"lowbit"}}}}};
  }
  if (f == HfQuantFormat::Awq) {
    const QuantSpec& s = lin.front().matrix->spec;
    return {{"quant_method", "awq"}, {"bits", 4},         {"group_size", s.group},
            {"zero_point", true},    {"version", "gemm"}, {"modules_to_not_convert", nullptr}};
  }
  // compressed-tensors: one group per distinct spec, targets by exact module name unless one
  // spec covers every Linear ("Linear"); lm_head and float Linears ignored.
  std::map<std::string, std::vector<std::string>> by_spec;
  std::map<std::string, QuantSpec> specs;
  json ignore = json::array({"lm_head"});
  for (const LinearPlan& l : lin) {
    if (!l.matrix) {
      ignore.push_back(l.module);
      continue;
    }
    const std::string key = l.matrix->spec.to_string();
    by_spec[key].push_back(l.module);
    specs[key] = l.matrix->spec;
  }
  // W8A8: int-quantized weights, activations rounded to int8 per token at run time (dynamic).
  const bool w8a8 = f == HfQuantFormat::CompressedTensorsW8A8;
  const char* format = w8a8 ? "int-quantized" : "pack-quantized";
  const json activations = w8a8 ? json{{"num_bits", 8},        {"type", "int"},      {"symmetric", true},
                                       {"group_size", nullptr}, {"strategy", "token"}, {"dynamic", true},
                                       {"actorder", nullptr},   {"observer", nullptr}, {"block_structure", nullptr}}
                                : json(nullptr);
  json groups = json::object();
  int n = 0;
  for (const auto& [key, modules] : by_spec) {
    const bool all = by_spec.size() == 1 && ignore.size() == 1;
    groups["group_" + std::to_string(n++)] = {
        {"targets", all ? json::array({"Linear"}) : json(modules)},
        {"weights", ct_scheme_json(specs[key])},
        {"input_activations", activations},
        {"output_activations", nullptr},
        {"format", format}};
  }
  return {{"quant_method", "compressed-tensors"},
          {"format", format},
          {"quantization_status", "compressed"},
          {"config_groups", groups},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"sparsity_config", json::object()},
          {"global_compression_ratio", nullptr}};
}

json hf_config(const LlamaConfig& c, const json& qcfg) {
  const std::string arch = c.architecture == "mistral" ? "MistralForCausalLM"
                           : c.architecture == "qwen2" ? "Qwen2ForCausalLM"
                                                       : "LlamaForCausalLM";
  const std::string type =
      c.architecture == "mistral" || c.architecture == "qwen2" ? c.architecture : "llama";
  return {{"architectures", {arch}},
          {"model_type", type},
          {"hidden_size", c.dim},
          {"intermediate_size", c.hidden_dim},
          {"num_attention_heads", c.n_heads},
          {"num_key_value_heads", c.n_kv_heads},
          {"num_hidden_layers", c.n_layers},
          {"head_dim", c.head_dim},
          {"hidden_act", "silu"},
          {"rms_norm_eps", clean_float(c.norm_eps)},
          {"rope_theta", clean_float(c.rope_theta)},
          {"rope_scaling", nullptr},
          {"vocab_size", c.vocab_size},
          {"max_position_embeddings", c.max_seq_len},
          {"tie_word_embeddings", false},
          {"attention_bias", c.attention_bias},
          {"mlp_bias", false},
          {"bos_token_id", c.bos_id},
          {"eos_token_id", c.eos_id},
          {"torch_dtype", "float16"},
          {"quantization_config", qcfg}};
}

// Adds a non-Linear tensor (or an ignored float Linear) under its HF name: float views in their
// stored dtype (rows permuted when `perm` is not the identity), quantized ones dequantized to F16.
void add_plain(SafetensorsWriter& w, const ModelSource& src, const std::string& canonical,
               const std::string& hf_name, HfQuantExportReport& rep) {
  const std::vector<int64_t> shape = src.shape(canonical);
  const int64_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1;
  const std::vector<int64_t> perm = hf_row_order(src, canonical, shape.size() > 1 ? rows : 1);
  auto q = src.quantized.find(canonical);
  if (q != src.quantized.end() ||
      (src.tensor(canonical).dtype != DType::F32 && src.tensor(canonical).dtype != DType::F16 &&
       src.tensor(canonical).dtype != DType::BF16)) {
    const std::vector<float> v =
        q != src.quantized.end() ? dequantize(q->second) : to_f32(src.tensor(canonical));
    std::vector<uint16_t> h(v.size());
    for (int64_t r = 0; r < static_cast<int64_t>(perm.size()); ++r)
      for (int64_t c = 0; c < cols; ++c) h[r * cols + c] = f32_to_f16(v[perm[r] * cols + c]);
    w.add(hf_name, "F16", shape, h.data(), h.size() * 2);
    rep.dequantized += q != src.quantized.end();
    return;
  }
  const TensorView& t = src.tensor(canonical);
  const char* dtype = t.dtype == DType::F32 ? "F32" : t.dtype == DType::F16 ? "F16" : "BF16";
  if (is_identity(perm)) {
    w.add(hf_name, dtype, shape, t.data, t.nbytes);
    return;
  }
  const size_t row_bytes = t.nbytes / static_cast<size_t>(rows);
  std::vector<uint8_t> b(t.nbytes);
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(&b[r * row_bytes], t.data + perm[r] * row_bytes, row_bytes);
  w.add(hf_name, dtype, shape, std::move(b));
}

void add_linear(SafetensorsWriter& w, const ModelSource& src, HfQuantFormat f, const LinearPlan& l,
                HfQuantExportReport& rep) {
  if (!l.matrix) {
    add_plain(w, src, l.canonical, l.module + ".weight", rep);
    return;
  }
  const std::vector<int64_t> perm = hf_row_order(src, l.canonical, l.matrix->rows);
  const QuantizedMatrix* m = l.matrix;
  QuantizedMatrix permuted;
  if (!is_identity(perm)) {
    permuted = permute_rows(*m, perm);
    m = &permuted;
  }
  int64_t flipped = 0;
  for (HfPackedTensor& t : pack_hf_linear(f, *m, &flipped))
    w.add(l.module + "." + t.suffix, t.dtype, t.shape, std::move(t.bytes));
  rep.flipped_groups += flipped;
  ++rep.packed;
}

// The directory the .lowbit was quantized from (its tokenizer files live there), or "".
std::string source_dir(const ModelSource& src) {
  std::string from = src.path;
  if (src.format == "lowbit") {
    const SafetensorsFile f(src.path);
    auto it = f.metadata().find("lowbit.source");
    from = it == f.metadata().end() ? "" : it->second;
  }
  if (from.empty() || !fs::exists(from)) return "";
  return fs::is_directory(from) ? from : fs::path(from).parent_path().string();
}

void write_file(const std::string& path, const void* data, size_t n) {
  AtomicFile f(path);
  f.write(data, n);
  f.commit();
}

void write_tokenizer(const ModelSource& src, const std::string& dir, HfQuantExportReport& rep,
                     const std::function<void(const std::string&)>& warn) {
  const std::string from = source_dir(src);
  bool have_tokenizer = false;
  for (const char* name :
       {"tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "generation_config.json", "added_tokens.json"}) {
    if (from.empty() || !fs::is_regular_file(fs::path(from) / name)) continue;
    fs::copy_file(fs::path(from) / name, fs::path(dir) / name);
    fs::permissions(fs::path(dir) / name, fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::add);
    rep.files.push_back(name);
    have_tokenizer = have_tokenizer || std::string(name) == "tokenizer.model" ||
                     std::string(name) == "tokenizer.json";
  }
  if (have_tokenizer) return;
  const EmbeddedTokenizer& t = src.embedded_tokenizer;
  if (t.kind == "sentencepiece") {
    write_file(dir + "/tokenizer.model", t.bytes.data(), t.bytes.size());
    rep.files.push_back("tokenizer.model");
  } else if (t.kind == "hf-bpe" && t.bytes.size() > 8) {
    write_file(dir + "/tokenizer.json", t.bytes.data() + 8, t.bytes.size() - 8);
    rep.files.push_back("tokenizer.json");
  } else {
    warn("no tokenizer.model or tokenizer.json found for " + src.path +
         (from.empty() ? "" : " (looked in " + from + ")") + "; the checkpoint has no tokenizer");
  }
}

// Removes the temporary directory unless released.
struct TempDir {
  std::string path;
  bool keep = false;
  ~TempDir() {
    std::error_code ec;
    if (!keep && !path.empty()) fs::remove_all(path, ec);
  }
};

void check_out_dir(const std::string& out) {
  if (!fs::exists(out)) return;
  if (!fs::is_directory(out) || !fs::is_empty(out))
    throw Error("export", out + ": already exists (the output directory must be new or empty)");
}

}  // namespace

HfQuantExportReport export_hf_quant(const ModelSource& src, const HfQuantExportOptions& opt,
                                    const std::string& out_dir) {
  auto warn = opt.warn ? opt.warn : [](const std::string& s) {
    std::fprintf(stderr, "warning: %s\n", s.c_str());
  };
  if (out_dir.empty()) throw Error("export", "no output directory");
  if (!src.corrections.empty())
    throw Error("export", src.path + ": '" + src.corrections.begin()->first + "' carries a low-rank error correction "
                                    "(recipe ':lr'), which the HF loaders cannot apply; export a model quantized without ':lr'");
  if (!src.input_hadamard.empty())
    throw Error("export", src.path + ": its down_proj inputs are rotated at run time (recipe ':had'), which the HF "
                                    "loaders cannot do; export a model quantized without ':had'");
  check_out_dir(out_dir);
  const std::vector<LinearPlan> linears = plan_linears(src, opt.format);
  const std::string out = fs::path(out_dir).lexically_normal().string();
  const std::string parent =
      fs::path(out).has_parent_path() ? fs::path(out).parent_path().string() : ".";
  if (!fs::is_directory(parent))
    throw Error("export", out_dir + ": parent directory " + parent + " does not exist");

  HfQuantExportReport rep;
  const json qcfg = quantization_config(opt.format, linears);
  rep.quantization_config = qcfg.dump();
  TempDir tmp{out + ".tmp-" + std::to_string(::getpid())};
  std::error_code ec;
  fs::remove_all(tmp.path, ec);
  if (!fs::create_directory(tmp.path, ec))
    throw Error("export", tmp.path + ": cannot create: " + ec.message());

  SafetensorsWriter w;
  w.spill_beside(tmp.path + "/model.safetensors");
  w.add_metadata("format", "pt");
  add_plain(w, src, "embed_tokens", "model.embed_tokens.weight", rep);
  for (int64_t i = 0; i < src.config.n_layers; ++i) {
    const std::string lb = "layers." + std::to_string(i) + ".",
                      hf = "model.layers." + std::to_string(i) + ".";
    add_plain(w, src, lb + "attn_norm", hf + "input_layernorm.weight", rep);
    add_plain(w, src, lb + "ffn_norm", hf + "post_attention_layernorm.weight", rep);
    for (size_t k = 0; k < std::size(kLinears); ++k)
      add_linear(w, src, opt.format, linears[i * std::size(kLinears) + k], rep);
    if (src.config.attention_bias)
      for (const char* p : {"q", "k", "v"})
        add_plain(w, src, lb + p + "_bias", hf + "self_attn." + p + "_proj.bias", rep);
  }
  add_plain(w, src, "norm", "model.norm.weight", rep);
  add_plain(w, src, src.config.tie_embeddings ? "embed_tokens" : "lm_head", "lm_head.weight", rep);
  w.write(tmp.path + "/model.safetensors");
  rep.files.push_back("model.safetensors");

  const std::string config = hf_config(src.config, qcfg).dump(2) + "\n";
  write_file(tmp.path + "/config.json", config.data(), config.size());
  rep.files.push_back("config.json");
  write_tokenizer(src, tmp.path, rep, warn);

  if (fs::exists(out)) fs::remove(out, ec);  // an empty directory (checked above)
  fs::rename(tmp.path, out, ec);
  if (ec)
    throw Error("export", out + ": cannot rename " + tmp.path + " into place: " + ec.message());
  tmp.keep = true;
  return rep;
}

}  // namespace lowbit
