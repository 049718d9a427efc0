#include "io/hf_model.h"

#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"
#include "io/hf_quantized.h"
#include "io/safetensors.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

int64_t get_int(const json& j, const char* key, const std::string& where, int64_t fallback = -1) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback >= 0) return fallback;
    throw Error("config", where + ": missing '" + key + "'");
  }
  if (!j[key].is_number_integer()) throw Error("config", where + ": '" + key + "' is not an integer");
  return j[key].get<int64_t>();
}

double get_num(const json& j, const char* key, const std::string& where, double fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) throw Error("config", where + ": '" + key + "' is not a number");
  return j[key].get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return false;
  if (!j[key].is_boolean()) throw Error("config", where + ": '" + key + "' is not true or false");
  return j[key].get<bool>();
}

std::string architecture_of(const json& j, const std::string& where) {
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string())
    throw Error("config", where + ": missing 'architectures'");
  const std::string a = j["architectures"][0].get<std::string>();
  if (a == "LlamaForCausalLM") return "llama";
  if (a == "MistralForCausalLM") return "mistral";
  if (a == "Qwen2ForCausalLM") return "qwen2";
  throw Error("config", where + ": unsupported architecture '" + a +
                            "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
}

void reject_rope_scaling(const json& j, const std::string& where) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return;
  throw Error("config", where + ": rope_scaling " + j["rope_scaling"].dump() + " is not supported");
}

}  // namespace

LlamaConfig parse_hf_config(const std::string& text, const std::string& where) {
  check_json_depth(text, "config", where);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("config", where + ": not a valid JSON object");
  LlamaConfig c;
  c.architecture = architecture_of(j, where);
  reject_rope_scaling(j, where);
  c.dim = get_int(j, "hidden_size", where);
  c.hidden_dim = get_int(j, "intermediate_size", where);
  c.n_layers = get_int(j, "num_hidden_layers", where);
  c.n_heads = get_int(j, "num_attention_heads", where);
  c.n_kv_heads = get_int(j, "num_key_value_heads", where, c.n_heads);
  if (c.n_heads <= 0) throw Error("config", where + ": num_attention_heads must be positive");
  c.head_dim = get_int(j, "head_dim", where, c.dim / c.n_heads);
  c.vocab_size = get_int(j, "vocab_size", where);
  c.max_seq_len = get_int(j, "max_position_embeddings", where, 2048);
  c.norm_eps = static_cast<float>(get_num(j, "rms_norm_eps", where, 1e-6));
  c.rope_theta = static_cast<float>(get_num(j, "rope_theta", where, 10000.0));
  c.rope_style = RopeStyle::RotateHalf;
  c.tie_embeddings = get_bool(j, "tie_word_embeddings", where);
  c.attention_bias = c.architecture == "qwen2" || get_bool(j, "attention_bias", where);
  if (get_bool(j, "mlp_bias", where)) throw Error("config", where + ": mlp_bias is not supported");
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_id = j["bos_token_id"];
  if (j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) c.eos_id = j["eos_token_id"];
  validate_llama_config(c, where);
  return c;
}

namespace {

void add_hf(ModelSource& src, const SafetensorsSet& set, const std::string& hf_name,
            const std::string& canonical) {
  auto it = set.entries.find(hf_name);
  if (it == set.entries.end()) throw Error("model", src.path + ": missing tensor '" + hf_name + "'");
  if (!it->second->supported)
    throw Error("model", src.path + ": tensor '" + hf_name + "' has dtype " + it->second->dtype_name +
                             " (supported: F32, F16, BF16)");
  src.tensors[canonical] = it->second->view;
}

// A Linear of a quantized checkpoint (io/hf_quantized.h): packed ones become QuantizedMatrix (or
// fp32 values when lowbit's grids cannot hold them); unpacked ones (lm_head, ignored layers) are
// read like any other tensor. Returns the reason when the matrix had to be dequantized.
std::string add_hf_linear(ModelSource& src, const SafetensorsSet& set, const HfQuantConfig* q,
                          const std::map<std::string, std::vector<int64_t>>& shapes,
                          const std::string& hf_module, const std::string& canonical) {
  if (!q || !hf_linear_is_packed(*q, set, hf_module)) {
    add_hf(src, set, hf_module + ".weight", canonical);
    return "";
  }
  const std::vector<int64_t>& shape = shapes.at(canonical);
  HfLinear l;
  try {
    l = unpack_hf_linear(*q, set, hf_module, shape[0], shape[1]);
  } catch (const Error& e) {
    std::string msg = e.what();  // "[component] text": keep the text, name the directory
    if (msg.starts_with("[") && msg.find("] ") != std::string::npos) msg = msg.substr(msg.find("] ") + 2);
    throw Error("model", src.path + ": " + msg);
  }
  src.recipes[canonical] = q->summary;
  if (l.quantized) {
    src.quantized[canonical] = std::move(l.matrix);
    return "";
  }
  auto values = std::make_shared<std::vector<float>>(std::move(l.values));
  src.tensors[canonical] = TensorView{canonical, DType::F32, shape,
                                      reinterpret_cast<const uint8_t*>(values->data()), values->size() * 4};
  src.owners.push_back(values);
  return l.note;
}

void map_hf_tensors(ModelSource& src, const SafetensorsSet& set, const HfQuantConfig* q) {
  const LlamaConfig& c = src.config;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& [name, shape] : canonical_tensor_shapes(c)) shapes[name] = shape;
  std::map<std::string, int> dequantized;  // reason -> count
  add_hf(src, set, "model.embed_tokens.weight", "embed_tokens");
  add_hf(src, set, "model.norm.weight", "norm");
  if (!c.tie_embeddings) {
    const std::string why = add_hf_linear(src, set, q, shapes, "lm_head", "lm_head");
    if (!why.empty()) ++dequantized[why];
  }
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string hf = "model.layers." + std::to_string(i) + ".";
    const std::string lb = "layers." + std::to_string(i) + ".";
    add_hf(src, set, hf + "input_layernorm.weight", lb + "attn_norm");
    add_hf(src, set, hf + "post_attention_layernorm.weight", lb + "ffn_norm");
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
      const std::string module = hf + (p[1] == '_' ? "self_attn." : "mlp.") + p;
      const std::string why = add_hf_linear(src, set, q, shapes, module, lb + p);
      if (!why.empty()) ++dequantized[why];
    }
    if (c.attention_bias)
      for (const char* p : {"q", "k", "v"})
        add_hf(src, set, hf + "self_attn." + p + "_proj.bias", lb + p + "_bias");
  }
  if (!q) return;
  src.recipe = q->summary + " (" + hf_quant_format_name(q->format) + " checkpoint)";
  for (const auto& [why, n] : dequantized)
    src.recipe += "; " + std::to_string(n) + " linear(s) dequantized to f32: " + why;
}

}  // namespace

ModelSource load_hf_model(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(config_path)) throw Error("model", dir + ": no config.json");
  ModelSource src;
  src.format = "safetensors";
  src.path = dir;
  const std::string config_text = read_text_file(config_path);
  src.config = parse_hf_config(config_text, config_path);
  const std::optional<HfQuantConfig> quant = parse_hf_quant_config(config_text, config_path);
  SafetensorsSet set = open_safetensors_dir(dir);
  map_hf_tensors(src, set, quant ? &*quant : nullptr);
  for (auto& f : set.files) src.owners.push_back(f);
  check_canonical_tensors(src);
  return src;
}

}  // namespace lowbit
