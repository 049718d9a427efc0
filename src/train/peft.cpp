#include "train/peft.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool is_attention(const std::string& proj) { return proj[0] == 'q' || proj[0] == 'k' || proj[0] == 'v' || proj[0] == 'o'; }

json config_json(const LoraAdapter& a, const std::string& base_model) {
  const LoraConfig& c = a.config();
  return json{{"peft_type", "LORA"},
              {"task_type", "CAUSAL_LM"},
              {"r", c.rank},
              {"lora_alpha", c.alpha},
              {"lora_dropout", c.dropout},
              {"use_rslora", c.rslora},
              {"use_dora", false},
              {"target_modules", c.targets},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"inference_mode", true},
              {"init_lora_weights", true},
              {"modules_to_save", nullptr},
              {"layers_to_transform", nullptr},
              {"rank_pattern", json::object()},
              {"alpha_pattern", json::object()},
              {"base_model_name_or_path", base_model},
              {"revision", nullptr},
              {"library_name", "lowbit"}};
}

// Refuses adapter_config.json settings lowbit cannot apply exactly; fills rank, alpha, dropout,
// rslora.
LoraConfig parse_config(const json& j, const std::string& where) {
  auto get = [&](const char* k) { return j.contains(k) ? j.at(k) : json(); };
  if (get("peft_type") != "LORA") throw Error("lora", where + ": peft_type must be \"LORA\"");
  if (get("use_dora").is_boolean() && get("use_dora").get<bool>()) throw Error("lora", where + ": DoRA adapters are not supported");
  if (get("fan_in_fan_out").is_boolean() && get("fan_in_fan_out").get<bool>())
    throw Error("lora", where + ": fan_in_fan_out adapters (GPT-2 style Conv1D) are not supported");
  if (!get("bias").is_null() && get("bias") != "none") throw Error("lora", where + ": LoRA biases are not supported (bias must be \"none\")");
  for (const char* k : {"rank_pattern", "alpha_pattern"})
    if (!get(k).is_null() && !(get(k).is_object() && get(k).empty()))
      throw Error("lora", where + ": per-module " + k + " is not supported");
  if (!get("modules_to_save").is_null() && !(get("modules_to_save").is_array() && get("modules_to_save").empty()))
    throw Error("lora", where + ": modules_to_save is not supported");
  LoraConfig c;
  if (!get("r").is_number_integer()) throw Error("lora", where + ": \"r\" must be an integer");
  c.rank = get("r").get<int64_t>();
  if (!get("lora_alpha").is_number()) throw Error("lora", where + ": \"lora_alpha\" must be a number");
  c.alpha = get("lora_alpha").get<double>();
  if (get("lora_dropout").is_number()) c.dropout = get("lora_dropout").get<double>();
  if (get("use_rslora").is_boolean()) c.rslora = get("use_rslora").get<bool>();
  return c;
}

struct ParsedName {
  int64_t layer = -1;
  std::string proj;
  char which = 0;
};

// "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight" → {3, "q_proj", 'A'}.
bool parse_tensor_name(const std::string& name, ParsedName* out) {
  static const std::regex re(
      R"(base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.lora_(A|B)\.weight)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  if (m[1].length() > 6) return false;
  out->layer = std::stoll(m[1].str());
  out->proj = m[3].str() + "_proj";
  out->which = m[4].str()[0];
  return (m[2] == "self_attn") == is_attention(out->proj);
}

void check_shape(const TensorView& t, int64_t rows, int64_t cols, const std::string& where) {
  if (t.shape != std::vector<int64_t>{rows, cols})
    throw Error("lora", where + ": " + t.name + " has the wrong shape (expected [" + std::to_string(rows) + ", " +
                            std::to_string(cols) + "])");
}

}  // namespace

std::string peft_tensor_name(const LoraParam& p, char which) {
  return "base_model.model.model.layers." + std::to_string(p.layer) + (is_attention(p.proj) ? ".self_attn." : ".mlp.") +
         p.proj + ".lora_" + which + ".weight";
}

void save_peft_adapter(const LoraAdapter& a, const LlamaConfig& mc, const std::string& dir, const std::string& base_model) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) throw Error("lora", "cannot create directory " + dir);
  SafetensorsWriter w(4);  // F32 sizes are multiples of 4: no padding entries, readable by any loader
  w.spill_beside(dir + "/adapter_model.safetensors");
  for (const LoraParam& p : a.params()) {
    w.add(peft_tensor_name(p, 'A'), "F32", {p.rank, p.cols}, p.a.data(), p.a.size() * sizeof(float));
    const std::vector<float> b = reorder_lora_b(p, p.b, mc.head_dim, mc.rope_style, RopeStyle::RotateHalf);
    w.add(peft_tensor_name(p, 'B'), "F32", {p.rows, p.rank}, b.data(), b.size() * sizeof(float));
  }
  w.add_metadata("format", "pt");
  w.write(dir + "/adapter_model.safetensors");
  AtomicFile cfg(dir + "/adapter_config.json");
  cfg.write(config_json(a, base_model).dump(2) + "\n");
  cfg.commit();
}

LoraAdapter load_peft_adapter(const std::string& dir, const LlamaConfig& mc) {
  const std::string cfg_path = dir + "/adapter_config.json", st_path = dir + "/adapter_model.safetensors";
  if (!fs::exists(cfg_path)) throw Error("lora", dir + ": no adapter_config.json (not a PEFT LoRA adapter directory)");
  json j;
  const std::string cfg_text = read_text_file(cfg_path);
  check_json_depth(cfg_text, "lora", cfg_path);
  try {
    j = json::parse(cfg_text);
  } catch (const json::exception&) {
    throw Error("lora", cfg_path + ": not valid JSON");
  }
  if (!j.is_object()) throw Error("lora", cfg_path + ": expected a JSON object");
  LoraConfig lc = parse_config(j, cfg_path);
  if (lc.rank < 1 || lc.rank > 4096) throw Error("lora", cfg_path + ": r must be in [1, 4096]");
  if (!(lc.alpha > 0)) throw Error("lora", cfg_path + ": lora_alpha must be positive");
  if (!(lc.dropout >= 0 && lc.dropout < 1)) lc.dropout = 0;  // inference ignores dropout
  if (!fs::exists(st_path)) throw Error("lora", dir + ": no adapter_model.safetensors");
  const SafetensorsFile f(st_path);
  std::map<std::pair<int64_t, std::string>, LoraParam> found;
  for (const auto& [name, e] : f.entries()) {
    if (name.rfind("__pad.", 0) == 0) continue;  // alignment filler of lowbit's writer
    ParsedName pn;
    if (!parse_tensor_name(name, &pn)) throw Error("lora", st_path + ": unexpected tensor '" + name + "'");
    if (pn.layer >= mc.n_layers) throw Error("lora", st_path + ": " + name + " is past the model's " + std::to_string(mc.n_layers) + " layers");
    LoraParam& p = found[{pn.layer, pn.proj}];
    p.layer = pn.layer;
    p.proj = pn.proj;
    p.module = "layers." + std::to_string(pn.layer) + "." + pn.proj;
    std::tie(p.rows, p.cols) = lora_target_shape(mc, pn.proj);
    p.rank = lc.rank;
    const TensorView& t = f.tensor(name);
    if (pn.which == 'A') {
      check_shape(t, p.rank, p.cols, st_path);
      p.a = to_f32(t);
    } else {
      check_shape(t, p.rows, p.rank, st_path);
      p.b = to_f32(t);
    }
  }
  if (found.empty()) throw Error("lora", st_path + ": no LoRA tensors");
  std::vector<LoraParam> params;
  std::set<std::string> targets;
  for (int64_t l = 0; l < mc.n_layers; ++l)  // layer-major, projections in lora_target_names() order
    for (const std::string& proj : lora_target_names()) {
      const auto it = found.find({l, proj});
      if (it == found.end()) continue;
      if (it->second.a.empty() || it->second.b.empty())
        throw Error("lora", st_path + ": " + it->second.module + " has lora_A without lora_B or the reverse");
      targets.insert(proj);
      it->second.b = reorder_lora_b(it->second, it->second.b, mc.head_dim, RopeStyle::RotateHalf, mc.rope_style);
      params.push_back(std::move(it->second));
    }
  lc.targets.clear();
  for (const std::string& proj : lora_target_names())
    if (targets.count(proj)) lc.targets.push_back(proj);
  return LoraAdapter::from_params(lc, std::move(params));
}

}  // namespace lowbit
