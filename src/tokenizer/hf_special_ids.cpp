#include "tokenizer/hf_special_ids.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_depth.h"
#include "base/mapped_file.h"

namespace lowbit {

namespace {

using json = nlohmann::json;

// id of a token text: an added token's content, else a vocab entry; -1 if unknown.
int32_t token_id(const json& root, const std::string& text) {
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& t : root["added_tokens"]) {
      if (t.value("content", std::string()) == text) return t.value("id", -1);
    }
  }
  if (!root.contains("model") || !root["model"].contains("vocab")) return -1;
  const json& vocab = root["model"]["vocab"];
  const auto it = vocab.find(text);
  return it != vocab.end() && it->is_number_integer() ? it->get<int32_t>() : -1;
}

json read_side_file(const std::filesystem::path& p) {
  if (!std::filesystem::exists(p)) return json();
  const std::string text = read_text_file(p.string());
  check_json_depth(text, "tokenizer", p.string());
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error("tokenizer", p.string() + ": not valid JSON: " + e.what());
  }
}

int32_t id_field(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return -1;
  const json& v = cfg[key];
  if (v.is_number_integer()) return v.get<int32_t>();
  if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int32_t>();
  return -1;
}

int32_t token_field(const json& root, const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return -1;
  const json& v = cfg[key];
  if (v.is_string()) return token_id(root, v.get<std::string>());
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return token_id(root, v["content"].get<std::string>());
  }
  return -1;
}

int32_t first_known(const json& root, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (const int32_t id = token_id(root, n); id >= 0) return id;
  }
  return -1;
}

}  // namespace

HfSpecialIds find_hf_special_ids(const std::string& path, const json& root) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const json config = read_side_file(dir / "config.json");
  const json tok_config = read_side_file(dir / "tokenizer_config.json");
  HfSpecialIds ids;
  ids.bos = id_field(config, "bos_token_id");
  ids.eos = id_field(config, "eos_token_id");
  if (ids.bos < 0) ids.bos = token_field(root, tok_config, "bos_token");
  if (ids.eos < 0) ids.eos = token_field(root, tok_config, "eos_token");
  if (ids.bos < 0) ids.bos = first_known(root, {"<|begin_of_text|>", "<s>", "<bos>"});
  if (ids.eos < 0)
    ids.eos = first_known(root, {"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>"});
  return ids;
}

}  // namespace lowbit
